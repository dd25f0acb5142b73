/* Logging to stderr: syslog priorities, <N> prefixes when journald reads stderr. */
#include "cfwatchd/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cfwatchd/secrets.h"

/* A line longer than the log's buffer is formatted up to this size to be scrubbed whole. */
#define CFW_LOG_SCRUB_MAX (1024u * 1024u)

static enum cfw_log_level log_level = CFW_LOG_NOTICE;
static bool log_journal;

/* JOURNAL_STREAM is "dev:inode" of the stream journald reads; it must be our stderr. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2) {
        return false;
    }
    if (fstat(2, &st) != 0) {
        return false;
    }
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cfw_log_init(enum cfw_log_level level)
{
    log_level = level;
    log_journal = stderr_is_journal();
}

int cfw_log_parse_level(const char *s, enum cfw_log_level *out)
{
    static const struct {
        const char *name;
        enum cfw_log_level level;
    } names[] = {
        {"error", CFW_LOG_ERR},   {"err", CFW_LOG_ERR},   {"warning", CFW_LOG_WARNING},
        {"warn", CFW_LOG_WARNING}, {"notice", CFW_LOG_NOTICE}, {"info", CFW_LOG_INFO},
        {"debug", CFW_LOG_DEBUG},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

enum cfw_log_level cfw_log_get_level(void)
{
    return log_level;
}

void cfw_logv(enum cfw_log_level level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"", "", "", "error", "warning", "notice", "info", "debug"};
    char line[4096];
    size_t n;
    va_list again;
    int full;

    if (level > log_level) {
        return;
    }
    va_copy(again, ap);
    full = vsnprintf(line, sizeof(line), fmt, ap);
    /*
     * Every line is scrubbed of the registered secrets (the catch-all behind the scrubbing at
     * the sources of outside text). A line longer than the buffer is scrubbed whole and then
     * cut: cut first, a secret at the cut would survive as a prefix that no form matches.
     */
    if (full >= (int)sizeof(line) && cfw_secrets_count() > 0) {
        size_t cap = (size_t)full + 1 < CFW_LOG_SCRUB_MAX ? (size_t)full + 1 : CFW_LOG_SCRUB_MAX;
        char *whole = cfw_xmalloc(cap);
        vsnprintf(whole, cap, fmt, again);
        n = cfw_secrets_scrub_inplace(whole, strnlen(whole, cap));
        n = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        memcpy(line, whole, n);
        line[n] = '\0';
        free(whole);
    } else {
        cfw_secrets_scrub_inplace(line, strlen(line));
    }
    va_end(again);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    if (log_journal) {
        fprintf(stderr, "<%d>%s\n", (int)level, line);
    } else {
        fprintf(stderr, "cfwatchd: %s: %s\n", names[level], line);
    }
}

void cfw_log(enum cfw_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfw_logv(level, fmt, ap);
    va_end(ap);
}

bool cfw_ratelog_ok(struct cfw_ratelog *r, int64_t now_ms, int64_t interval_ms, unsigned burst,
                    uint64_t *skipped)
{
    *skipped = 0;
    if (!r->started || now_ms - r->start_ms >= interval_ms) {
        *skipped = r->skipped;
        r->started = true;
        r->start_ms = now_ms;
        r->n = 0;
        r->skipped = 0;
    }
    if (r->n >= burst) {
        r->skipped++;
        return false;
    }
    r->n++;
    return true;
}

void cfw_log_escape(const char *s, size_t len, size_t max, char *out, size_t outlen)
{
    size_t o = 0;
    size_t i;

    if (outlen == 0) {
        return;
    }
    for (i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 5 >= outlen) {
            break;
        }
        if (c == '\\' || c == '"') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (i < len && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}
