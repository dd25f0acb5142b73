/* Shared small types: errors, capped buffers, string fields, allocation. */
#ifndef CFWATCHD_COMMON_H
#define CFWATCHD_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define CFW_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define CFW_ERR_MAX 1024

/* An error: a code (errno-like or module-specific, 0 when unset) and a readable message. */
struct cfw_err {
    int code;
    char msg[CFW_ERR_MAX];
};

/* Fills err (which may be NULL) printf-style; the message is truncated to fit. */
void cfw_err_set(struct cfw_err *err, const char *fmt, ...) CFW_PRINTF(2, 3);
/* Same with a code. */
void cfw_err_setc(struct cfw_err *err, int code, const char *fmt, ...) CFW_PRINTF(3, 4);
void cfw_err_clear(struct cfw_err *err);

/* Allocation that aborts on exhaustion (an invariant, not input: there is no sane recovery). */
void *cfw_xmalloc(size_t n);
void *cfw_xcalloc(size_t n, size_t size);
void *cfw_xrealloc(void *p, size_t n);
char *cfw_xstrdup(const char *s);
char *cfw_xstrndup(const char *s, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *cfw_xasprintf(const char *fmt, ...) CFW_PRINTF(1, 2);

/*
 * A growable byte buffer with a hard cap (curl's dynbuf); data is always NUL-terminated when
 * non-NULL. The cap is set when the buffer is made, with cfw_buf_init or, in a declaration,
 * CFW_BUF_INIT, and kept by cfw_buf_reset, cfw_buf_take and cfw_buf_free, so a buffer can be
 * used again after them. A buffer that never got a cap (max 0, e.g. zeroed) refuses to grow:
 * every append fails, and a build with assertions stops at the first one.
 */
struct cfw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* the cap: len never exceeds it (0: never initialised, nothing fits) */
};

/* An empty buffer of at most m bytes, for a declaration: struct cfw_buf b = CFW_BUF_INIT(m); */
/* clang-format off */
#define CFW_BUF_INIT(m) {.max = (m)}
/* clang-format on */

/*
 * The cap of a buffer holding text that cfwatchd builds itself from parts that are already
 * bounded (a list of configuration keys, a path, a message): no outside input decides its size,
 * so the cap only stops a runaway loop.
 */
#define CFW_BUF_MAX_BUILT ((size_t)64 << 20)

/* Makes b an empty buffer of at most max bytes (max > 0; see CFW_BUF_MAX_BUILT). */
void cfw_buf_init(struct cfw_buf *b, size_t max);

/* Appends n bytes; returns -1 (buffer unchanged) when the cap would be exceeded. */
int cfw_buf_append(struct cfw_buf *b, const void *p, size_t n);
int cfw_buf_puts(struct cfw_buf *b, const char *s);
int cfw_buf_putc(struct cfw_buf *b, char c);
int cfw_buf_printf(struct cfw_buf *b, const char *fmt, ...) CFW_PRINTF(2, 3);
/* Empties b, keeping its memory and its cap. */
void cfw_buf_reset(struct cfw_buf *b);
/*
 * Hands the data over to the caller (never NULL: an empty string for an empty buffer); b is
 * left empty, with its cap.
 */
char *cfw_buf_take(struct cfw_buf *b);
/* Frees b's memory (b may be NULL); b is left empty, with its cap. */
void cfw_buf_free(struct cfw_buf *b);

/*
 * The one way to free an object from inside a callback it is running (tmux's client references):
 * the object brackets its own calls out with cfw_busy_enter and cfw_busy_leave; its free
 * function, called meanwhile, only marks it (cfw_busy_defer_free), and the outermost leave tells
 * its caller to destroy it then, before anything else touches it.
 */
struct cfw_busy {
    unsigned depth; /* calls out in progress */
    bool doomed;    /* freed during one of them */
};

void cfw_busy_enter(struct cfw_busy *b);
/* False when the object was freed meanwhile: the caller destroys it now and touches it no more. */
bool cfw_busy_leave(struct cfw_busy *b);
/* True (and b marked) when the free must wait for the outermost leave; false: destroy it now. */
bool cfw_busy_defer_free(struct cfw_busy *b);

/*
 * An ordered set of string fields (key -> value); small, linear lookup. The strings live in
 * blocks the set owns ("key\0value\0" each), so that an event's fields cost an allocation or
 * two instead of one per field; a block never moves, so a value stays where it is until its key
 * is set again or the set is cleared.
 */
struct cfw_field {
    char *key;
    char *value;
    size_t room; /* bytes value can hold before a new place is needed (its terminator excluded) */
};

struct cfw_fields_block;

struct cfw_fields {
    struct cfw_field *v;
    size_t n;
    size_t cap;
    struct cfw_fields_block *blk; /* newest first */
};

/* Sets (copies) key to value, replacing an existing value. */
void cfw_fields_set(struct cfw_fields *f, const char *key, const char *value);
void cfw_fields_setn(struct cfw_fields *f, const char *key, const char *value, size_t len);
/* Sets key only when it is not present yet or empty. */
void cfw_fields_set_default(struct cfw_fields *f, const char *key, const char *value);
/*
 * Appends key with the first len bytes of value (up to a NUL) without looking key up: for a
 * caller that knows key is not in the set (cfw_fields_setn otherwise).
 */
void cfw_fields_add(struct cfw_fields *f, const char *key, const char *value, size_t len);
/* Returns the value or NULL (borrowed). */
const char *cfw_fields_get(const struct cfw_fields *f, const char *key);
void cfw_fields_copy(struct cfw_fields *dst, const struct cfw_fields *src);
/* Appends src's fields to dst in order, for a caller that knows no key of src is in dst. */
void cfw_fields_append(struct cfw_fields *dst, const struct cfw_fields *src);
void cfw_fields_clear(struct cfw_fields *f);
/*
 * Empties the set as cfw_fields_clear does (its values are gone) but keeps its memory for the
 * next fields: for a set filled and emptied again and again, as the decoder's events.
 */
void cfw_fields_reset(struct cfw_fields *f);

/* Parses an unsigned decimal with no sign, no spaces; returns -1 on anything else or overflow. */
int cfw_parse_u64(const char *s, uint64_t *out);
/* The value of a hexadecimal digit (0-9, a-f, A-F), or -1 for any other character. */
int cfw_hex_value(int ch);
/*
 * Percent-decodes len bytes of s into out (room for len bytes; out may be s); returns the
 * decoded length. Lenient: a '%' not followed by two hex digits stays as it is (as curl reads
 * URLs). Strict: such a '%', or an escape of NUL, makes it return -1.
 */
long cfw_percent_decode(const char *s, size_t len, char *out, bool strict);
/* Parses a duration such as 30s, 5m, 4h, 1d, 250ms, or a bare number of seconds. */
int cfw_parse_duration_ms(const char *s, int64_t *out_ms);
/* A delay of ms milliseconds as a struct timeval (for evtimer_add); a negative delay is 0. */
struct timeval cfw_ms_timeval(int64_t ms);
/* Monotonic milliseconds (CLOCK_MONOTONIC) and wall-clock milliseconds since the epoch. */
int64_t cfw_now_mono_ms(void);
int64_t cfw_now_wall_ms(void);

/*
 * A moment that keeps its meaning across restarts: wall time to show, and CLOCK_BOOTTIME with
 * the kernel's boot id to measure ages that a wall-clock jump must not move.
 */
#define CFW_BOOT_ID_LEN 36
struct cfw_stamp {
    int64_t wall_ms;
    int64_t boot_ms;                   /* CLOCK_BOOTTIME; 0 when unknown */
    char boot_id[CFW_BOOT_ID_LEN + 1]; /* empty when unknown */
};
/* Fills s with the current wall time, boot time and boot id. */
void cfw_stamp_now(struct cfw_stamp *s);
/* Milliseconds from since to now: boot clock within one boot, else wall clock; never negative. */
int64_t cfw_stamp_elapsed_ms(const struct cfw_stamp *since, const struct cfw_stamp *now);
/* The kernel's boot id (36 characters), or "" when /proc does not tell it. */
const char *cfw_boot_id(void);

/* Parses an RFC 3339 time ("2026-08-21T01:58:58.948Z", offsets allowed) to epoch ms; -1 if not. */
int64_t cfw_parse_rfc3339_ms(const char *s);

/* Length of the valid UTF-8 sequence at p (1..4) of the n bytes there, or 0 when none starts
 * there (overlongs, surrogates and code points above U+10FFFF are invalid). */
size_t cfw_utf8_len(const unsigned char *p, size_t n);

/* Writes the UTF-8 encoding of code point cp (at most U+10FFFF) to out; returns its length (1..4). */
size_t cfw_utf8_put(uint32_t cp, char out[4]);

/*
 * The length of the longest prefix of the n bytes at s that holds at most max bytes and does not
 * end inside a UTF-8 sequence: n when n <= max, else max stepped back over continuation bytes.
 */
size_t cfw_utf8_prefix(const char *s, size_t n, size_t max);

/* True when s[0..n) is valid UTF-8, NUL bytes allowed only when nul_ok. */
bool cfw_utf8_valid(const char *s, size_t n, bool nul_ok);

/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds into out (at least 32 bytes). */
void cfw_format_time_ms(int64_t ms, char *out, size_t outlen);

/* Checks whether s matches a shell glob (fnmatch without flags). */
bool cfw_glob_match(const char *pattern, const char *s);

/*
 * memmem for the short texts of log lines and events: memchr of the needle's first byte, then
 * a compare. glibc's memmem prepares a two-way search at each call, which costs more than the
 * search itself in a line of a hundred bytes. NULL when the needle is not there.
 */
const char *cfw_find(const char *h, size_t hn, const char *nd, size_t nn);

#endif
