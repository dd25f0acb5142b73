/*
 * The grammar of a Python traceback, one copy for the framer (which joins a traceback's lines
 * into one record) and the decoder (which takes the exception, its message, the frame and the
 * source line from that record), so that both agree on what each line is. CPython prints
 * (Lib/traceback.py, TracebackException.format):
 *
 *     Traceback (most recent call last):
 *       File "<path>", line <N>, in <name>
 *         <source line>
 *         ~~~~^^^^^^                     (3.11 and later: marks under the failing part)
 *     <dotted.ClassName>: <message>     (the bare name when the message is empty)
 *
 * The functions look at one line (no '\n' in it), after its indentation unless said otherwise.
 */
#ifndef CFWATCHD_PYTB_H
#define CFWATCHD_PYTB_H

#include <stdbool.h>
#include <stddef.h>

#define CFW_TB_HEADER "Traceback (most recent call last):"
#define CFW_TB_MAX_PATH 512u  /* bytes of a frame's file name; a longer one is no frame */
#define CFW_TB_MAX_DIGITS 18u /* digits of a frame's line number */

struct cfw_tb_frame {
    const char *path;
    size_t path_n;
    const char *num;
    size_t num_n;
};

/* Offset just past the header anywhere in s[0..n), or (size_t)-1 when the line holds none. */
size_t cfw_tb_header(const char *s, size_t n);

/*
 * A frame at s: `File "<path>", line <N>` (path of 1 to CFW_TB_MAX_PATH bytes without '"',
 * N of 1 to CFW_TB_MAX_DIGITS digits). Returns the offset just past N with fr filled (fr may
 * be NULL), or 0.
 */
size_t cfw_tb_frame(const char *s, size_t n, struct cfw_tb_frame *fr);

/* A line of only '^' and '~' (at least one of them) and blanks, wherever it is indented. */
bool cfw_tb_caret(const char *s, size_t n);

/*
 * An exception line at s, as a traceback ends: a dotted name whose last part starts with a
 * capital letter (a class: ModuleNotFoundError, pyodide.ffi.JsException, StopIteration, a
 * user's Boom), then `: <message>`, a lone ':' or nothing but blanks. Returns the length of
 * the name (a message starts 2 bytes after it), or 0. Where a traceback's structure says a
 * line is its exception line (after its frames, no deeper than they are), this is the test.
 */
size_t cfw_tb_exception(const char *s, size_t n);

/*
 * The stricter test for text that is not laid out as a traceback (an exception named inside
 * a line, a traceback flattened onto one line, an error block without frames): the name also
 * ends in Error, Exception, Exit, Interrupt, Warning, Iteration or Group (Python's own classes
 * and PEP 8's convention) and a `: ` follows it. Returns the length of the name, or 0.
 */
size_t cfw_tb_exception_named(const char *s, size_t n);

#endif
