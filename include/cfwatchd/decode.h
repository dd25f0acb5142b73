/*
 * Decoder: turns one record into one or more events.
 *
 * JSON records are recognised by their keys:
 *   - wrangler tail event (TailEventMessage: `outcome`, `exceptions`, `logs`, `eventTimestamp`,
 *     `scriptName`, `scriptVersion.id`, `event.request.url`);
 *   - Logpush Workers Trace Event (`Outcome`, `Exceptions`, `Logs`, `ScriptName`,
 *     `ScriptVersion.ID`, `EventTimestampMs`, `Event.Request.URL`, `Event.RayID`; keys matched
 *     case-insensitively);
 *   - Workers Observability event (`$metadata`, `$workers`);
 *   - Logpush validation body `{"content": ...}`: no event.
 * Each exception becomes an event (kind=exception, text "<name>: <message>\n<stack>"), each log
 * message an event (kind=log, level, text = the message array joined by spaces, strings bare,
 * other values as compact JSON), and an outcome other than ok/canceled an event of its own
 * (kind=outcome, text "outcome: <outcome>"). All carry the shared context fields.
 * Any other JSON value is one event of kind=json with the value's text.
 *
 * Text records become one event (kind=text) with the record's text.
 *
 * Fields (all strings; absent when unknown), set on every event:
 *   kind      text | json | exception | log | outcome
 *   source    the input name;  time  the record time when known
 *   script    event script name, or the API path `/workers/scripts/<name>` in a wrangler error
 *   version   scriptVersion.id / ScriptVersion.ID
 *   outcome   tail/Logpush outcome;  url  request URL;  ray  Logpush RayID;  level  log level
 *   exception the exception class of the exception line (e.g. ModuleNotFoundError): in a
 *             traceback the line that ends it (pytb.h, the framer's grammar: `StopIteration`,
 *             a user's `Boom: x`); elsewhere the last `<Name>Error|Exception|...: ` line
 *   message   that line's message (absent when it has none)
 *   code      `[code: N]` or `(Code: N)`
 *   module    from `No module named '<m>'` (as printed, e.g. src or src.core)
 *   name      from `cannot import name '<n>'`
 *   file, line  the last `/session/metadata/...` frame before the exception
 *   import    that frame's source line, trimmed
 *   startup_ms  `Worker Startup Time: N ms` or `startup exceeded CPU limit N<=L`
 *   upload_kib, gzip_kib  `Total Upload: X KiB / gzip: Y KiB`
 *   file_name  the base name of file (main.py)
 *   import_fixed  import without its `src.` prefix (`from core.x import Y`), when it has one
 */
#ifndef CFWATCHD_DECODE_H
#define CFWATCHD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"
#include "cfwatchd/framer.h"

struct cfw_event {
    const char *text; /* NUL-terminated; valid only during the callback */
    size_t len;
    struct cfw_fields fields;
    const char *input;
    uint64_t line;     /* first line of the record */
    uint64_t line_end; /* last line of the record */
};

typedef void (*cfw_event_cb)(const struct cfw_event *ev, void *arg);

struct cfw_decode_stats {
    uint64_t events;
    uint64_t json_records;
    uint64_t json_invalid; /* JSON records the parser rejected (passed on as text) */
    uint64_t tail_events;
    uint64_t logpush_events;
    uint64_t observability_events;
};

/* Decodes one record, calling cb for each event. Returns the number of events. */
size_t cfw_decode_record(const struct cfw_record *rec, cfw_event_cb cb, void *arg,
                         struct cfw_decode_stats *stats);

/*
 * Adds the text-derived fields listed above (script, code, exception, message, module, name,
 * file, line, import, startup_ms, upload_kib, gzip_kib) found in text; existing non-empty
 * fields are kept.
 */
void cfw_extract_fields(const char *text, size_t len, struct cfw_fields *fields);

#endif
