/*
 * Streaming gzip decoder: compressed bytes in, in pieces of any size, decompressed bytes out
 * through a callback, in bounded memory (zlib's 32 KiB window and one output buffer), so a
 * multi-gigabyte archive is never held whole.
 *
 * A gzip file is a series of members (RFC 1952 2.2: what `cat a.gz b.gz`, pigz or a Logpush
 * batch writes); every member is read, as zcat does. After a member may come another member,
 * or zero bytes of padding to the end (tape and block-device padding, tolerated like gzip -d
 * does); anything else is an error. Output already handed to the callback stays delivered when
 * a later error is found: the caller reports what came before a corrupt point.
 *
 * Contract: create with cfw_gzip_new when the input begins with the gzip magic bytes (1f 8b),
 * feed every byte in order with cfw_gzip_feed, then call cfw_gzip_finish at end of input (a
 * member cut short is only an error then: a growing file simply waits for more). After an error
 * every call fails with the same error. No cap on the output: a caller with a size or ratio
 * limit checks it in the callback (cfw_gzip_total_in/out) and returns -1.
 */
#ifndef CFWATCHD_GZIP_H
#define CFWATCHD_GZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

/* err->code of a failed call. */
enum cfw_gzip_error {
    CFW_GZIP_E_CORRUPT = 1, /* zlib rejected the data (bad header, block, checksum, length) */
    CFW_GZIP_E_TRUNCATED,   /* the input ended inside a member */
    CFW_GZIP_E_TRAILING,    /* bytes after a member that are neither a member nor zero padding */
    CFW_GZIP_E_STOPPED,     /* the output callback returned -1 (its err is kept) */
    CFW_GZIP_E_ZLIB,        /* zlib could not start (memory) */
};

/*
 * Receives each piece of decompressed output (len > 0). Returns 0 to go on, or -1 to stop
 * decoding with err set by the callback.
 */
typedef int (*cfw_gzip_out_fn)(void *arg, const char *buf, size_t len, struct cfw_err *err);

struct cfw_gzip;

/* True when buf (len bytes, the start of an input) begins with the gzip magic bytes. */
bool cfw_gzip_magic(const void *buf, size_t len);
/* Creates a decoder that hands its output to out(arg, ...); NULL with err set. */
struct cfw_gzip *cfw_gzip_new(cfw_gzip_out_fn out, void *arg, struct cfw_err *err);
/* Frees the decoder; accepts NULL. */
void cfw_gzip_free(struct cfw_gzip *gz);
/*
 * Decodes len more bytes of the compressed input; 0, or -1 with err set ("corrupt gzip data at
 * byte N (zlib's reason)", "N bytes of trailing garbage after gzip member M at byte N", or the
 * callback's error).
 */
int cfw_gzip_feed(struct cfw_gzip *gz, const void *buf, size_t len, struct cfw_err *err);
/* The input has ended: 0, or -1 with err set when it ended inside a member ("truncated"). */
int cfw_gzip_finish(struct cfw_gzip *gz, struct cfw_err *err);
/* Compressed bytes accepted so far (the offset of the next byte to feed). */
uint64_t cfw_gzip_total_in(const struct cfw_gzip *gz);
/* Decompressed bytes handed to the callback so far. */
uint64_t cfw_gzip_total_out(const struct cfw_gzip *gz);
/* Members read to their end so far. */
uint64_t cfw_gzip_members(const struct cfw_gzip *gz);

#endif
