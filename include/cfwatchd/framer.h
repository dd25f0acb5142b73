/*
 * Framer: cuts a byte stream into records. Incremental (bytes may arrive split anywhere),
 * bounded (every buffer has a cap; an over-long line is skipped and counted, never a stop),
 * and never blocking. One framer per input stream.
 *
 * Lines end at LF (CRLF too). An input with no LF in its first max_line + 1 bytes (or before
 * its end, when shorter) and a CR among them is CR-only (classic Mac line ends): from there on
 * CR, LF and CRLF each end a line, and what was held is split again. The same bytes give the
 * same records however they are fed. (A tailed CR-only file shorter than max_line is framed
 * only when it grows past it or is finished.)
 *
 * Text handling, in order, for every line: CRLF -> LF, ANSI CSI/OSC escape sequences removed,
 * a known line prefix removed and remembered as the record time (`HH:MM:SS.mmm | ` as copied
 * from the Workers Builds UI, `<ISO 8601 time><TAB or space>` from Workers Builds downloads and
 * GitHub Actions logs). NUL bytes are replaced by a space and counted.
 *
 * Block assembly turns several lines into one record:
 *   - a wrangler `✘ [ERROR]` / `X [ERROR]` / `▲ [WARNING]` message with its blank and indented
 *     continuation lines, up to and including a line that holds `[code: N]`; ends before the next
 *     non-indented line;
 *   - a Python traceback from `Traceback (most recent call last):` (anywhere in the line) or from
 *     a first `File "...", line N` frame when the header is missing, through its frames, source
 *     lines and caret lines, to the exception line and up to three note lines after it (PEP 678
 *     notes such as "If your main module is inside the 'src' directory ..."); also when indented
 *     inside a wrangler error (then it is part of that record);
 *   - a flattened one-line traceback (dashboard copy ending in `(Code: N)`) is one record as is.
 * A block still open at end of input, or idle for the caller's timeout (cfw_framer_flush), is
 * emitted as it is.
 *
 * Formats: LINES (text only), JSON (a stream of JSON values, one per line or pretty-printed over
 * many lines and concatenated; garbage between values is skipped, counted, and the framer
 * resynchronises on the next '{' or '['), WRANGLER_LOG (wrangler debug log files: records
 * `--- <ISO time> <level>` ... `---`, whose content is framed as LINES with that time), and
 * AUTO: decided from the first non-blank bytes of the input (`--- <digit>` -> WRANGLER_LOG,
 * otherwise MIXED: text lines where a line starting with '{' at column 0 begins a JSON value
 * that is framed as JSON; if it does not parse, its lines are text).
 */
#ifndef CFWATCHD_FRAMER_H
#define CFWATCHD_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfw_input_format {
    CFW_FMT_AUTO = 0,
    CFW_FMT_LINES,
    CFW_FMT_JSON,
    CFW_FMT_WRANGLER_LOG,
};

/* Parses auto|lines|json|wrangler-log; returns -1 on anything else. */
int cfw_input_format_parse(const char *s, enum cfw_input_format *out);
const char *cfw_input_format_name(enum cfw_input_format f);

enum cfw_record_kind {
    CFW_REC_TEXT, /* one line or an assembled block, lines joined by '\n' */
    CFW_REC_JSON, /* the exact bytes of one complete JSON value */
};

struct cfw_record {
    enum cfw_record_kind kind;
    const char *text; /* NUL-terminated unless unterminated; valid only during the callback */
    size_t len;
    const char *input; /* input name, e.g. a path or "<stdin>" */
    uint64_t line;     /* 1-based line of the first byte in the input */
    uint64_t line_end; /* 1-based line of the last byte */
    const char *time;  /* prefix or wrangler-log timestamp of the first line, or NULL */
    /* set by callers that looked at the record already (Logpush), else zero: */
    const void *parsed; /* a struct cfw_json holding the parse of text (borrowed): the decoder
                         * reads it and may decode strings into it */
    bool wanted;        /* the prefilter let it through already (it is asked again only to
                         * select the rules to run) */
    bool unterminated;  /* text[len] is not NUL (a framer with opts.unterminated): text is
                         * only len bytes, to be copied before it is used as a string */
};

typedef void (*cfw_record_cb)(const struct cfw_record *rec, void *arg);

#define CFW_FRAMER_MAX_LINE_DEFAULT (64u * 1024u)
#define CFW_FRAMER_MAX_RECORD_DEFAULT (256u * 1024u)
#define CFW_FRAMER_MAX_BLOCK_LINES_DEFAULT 400u
#define CFW_FRAMER_MAX_JSON_DEFAULT (1024u * 1024u)
#define CFW_FRAMER_MAX_DEPTH_DEFAULT 64u

struct cfw_framer_opts {
    enum cfw_input_format format;
    size_t max_line;        /* longer lines are skipped and counted (0: default) */
    size_t max_record;      /* a block reaching this is emitted as it is (0: default) */
    size_t max_block_lines; /* likewise for its number of lines (0: default) */
    size_t max_json;        /* a JSON value larger than this is skipped and counted (0: default) */
    size_t max_depth;       /* JSON nesting deeper than this is garbage (0: default) */
    bool unterminated;      /* a record may point at the bytes fed, not NUL-terminated (see
                             * cfw_record): no copy of every line to terminate it */
};

struct cfw_framer_stats {
    uint64_t bytes;
    uint64_t lines;
    uint64_t records;
    uint64_t json_values;
    uint64_t long_lines;    /* lines skipped for length */
    uint64_t garbage_bytes; /* bytes skipped while resynchronising a JSON stream */
    uint64_t json_errors;   /* JSON values abandoned (too large, too deep, malformed) */
    uint64_t nul_bytes;
};

struct cfw_framer;

/* Creates a framer for one input; opts may be NULL for defaults. input is copied. */
struct cfw_framer *cfw_framer_new(const char *input, const struct cfw_framer_opts *opts,
                                  cfw_record_cb cb, void *arg);
/* Feeds bytes; calls cb for every record completed by them. */
void cfw_framer_feed(struct cfw_framer *f, const char *buf, size_t len);
/* Emits a held block (idle timeout); a partial line without its newline is kept. */
void cfw_framer_flush(struct cfw_framer *f);
/* True when a block or partial line is held (the caller arms its idle timer on this). */
bool cfw_framer_pending(const struct cfw_framer *f);
/* End of input: emits everything held, including a last line without a newline. */
void cfw_framer_finish(struct cfw_framer *f);
/* The format in use (AUTO is resolved after the first non-blank bytes). */
enum cfw_input_format cfw_framer_format(const struct cfw_framer *f);
const struct cfw_framer_stats *cfw_framer_stats(const struct cfw_framer *f);
void cfw_framer_free(struct cfw_framer *f);

/*
 * One file scanned in parts (--once -j on a large file). A framer made with cfw_framer_new_mid
 * at a line start in the middle of an input frames what follows as the framer that read the
 * input from its start does, from every line end where that one is at rest
 * (cfw_framer_at_rest). All it needs of the input's start is mid, taken from a framer that read
 * the start; its lines are counted from the point (the first line after it is line 1).
 */
struct cfw_framer_mid {
    int mode; /* the framer's own */
};
/* True when f's input can be framed in parts (text lines that end in LF), with *mid filled. */
bool cfw_framer_mid_of(const struct cfw_framer *f, struct cfw_framer_mid *mid);
struct cfw_framer *cfw_framer_new_mid(const char *input, const struct cfw_framer_opts *opts,
                                      cfw_record_cb cb, void *arg,
                                      const struct cfw_framer_mid *mid);
/* True when f has taken whole lines and holds nothing (no line, block or JSON value). */
bool cfw_framer_at_rest(const struct cfw_framer *f);

#endif
