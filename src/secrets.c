/* The secret registry: configured secrets and their wire forms, scrubbed from text. */
#include "cfwatchd/secrets.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/common.h"
#include "cfwatchd/log.h"

#define MASK_LEN (sizeof(CFW_SECRETS_MASK) - 1)
/* the in-place scrub relies on it: a covered stretch is longer than its mask */
_Static_assert(MASK_LEN < CFW_SECRETS_MIN_LEN, "the mask must be shorter than any form");
_Static_assert(CFW_SECRETS_MIN_LEN >= 2, "the pair filter reads two bytes");

/* One registered form. */
struct form {
    char *s;
    size_t len;
    uint64_t id;    /* unique: what holders remember */
    uint64_t gen;   /* the configuration load that registered it last */
    unsigned holds; /* holders that have it */
};

struct cfw_secret_hold {
    uint64_t *ids;
    size_t n;
    size_t cap;
};

/*
 * The registry, and the index the scrubber reads: forms sorted by first byte, then longest
 * first, so the first form that matches at a position is the longest there; and a bitmap of
 * the byte pairs forms start with, which rejects most positions with one lookup (every form
 * has at least CFW_SECRETS_MIN_LEN >= 2 bytes).
 */
static struct {
    struct form **v;
    size_t n;
    size_t cap;
    size_t bytes;
    uint64_t serial;
    uint64_t gen;
    uint64_t refused;
    bool warned;
    bool dirty;
    struct form **sorted;
    size_t first_at[257];
    uint64_t pairs[65536 / 64];
} reg;

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void wipe_free(char *s, size_t n)
{
    if (s != NULL) {
        explicit_bzero(s, n);
        free(s);
    }
}

static void form_free(struct form *f)
{
    if (f != NULL) {
        wipe_free(f->s, f->len);
        free(f);
    }
}

static struct form *find(const char *s, size_t len)
{
    for (size_t i = 0; i < reg.n; i++) {
        if (reg.v[i]->len == len && memcmp(reg.v[i]->s, s, len) == 0) {
            return reg.v[i];
        }
    }
    return NULL;
}

static struct form *find_id(uint64_t id)
{
    for (size_t i = 0; i < reg.n; i++) {
        if (reg.v[i]->id == id) {
            return reg.v[i];
        }
    }
    return NULL;
}

static void refuse(size_t len)
{
    reg.refused++;
    if (!reg.warned) {
        reg.warned = true;
        /* the form itself is never logged; its length says which limit it hit */
        cfw_log_err("secrets: a secret form of %zu bytes was not registered (at most %u forms, "
                    "%u bytes each, %u in all; %zu registered): it is not scrubbed from what "
                    "cfwatchd writes",
                    len, CFW_SECRETS_MAX, CFW_SECRETS_MAX_LEN, CFW_SECRETS_MAX_BYTES, reg.n);
    }
}

static bool hold_has(const struct cfw_secret_hold *h, uint64_t id)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* Registers one form exactly as given: 0 (also when too short to keep), -1 refused. */
static int add_form(struct cfw_secret_hold *h, const char *s, size_t len)
{
    struct form *f;

    if (len < CFW_SECRETS_MIN_LEN) {
        return 0;
    }
    f = find(s, len);
    if (f == NULL) {
        if (len > CFW_SECRETS_MAX_LEN || reg.n >= CFW_SECRETS_MAX ||
            reg.bytes + len > CFW_SECRETS_MAX_BYTES) {
            refuse(len);
            return -1;
        }
        f = cfw_xcalloc(1, sizeof(*f));
        f->s = cfw_xmalloc(len + 1);
        memcpy(f->s, s, len);
        f->s[len] = '\0';
        f->len = len;
        f->id = ++reg.serial;
        if (reg.n == reg.cap) {
            reg.cap = reg.cap == 0 ? 32 : reg.cap * 2;
            reg.v = cfw_xrealloc(reg.v, reg.cap * sizeof(*reg.v));
        }
        reg.v[reg.n++] = f;
        reg.bytes += len;
        reg.dirty = true;
    }
    f->gen = reg.gen;
    if (h != NULL && !hold_has(h, f->id)) {
        if (h->n == h->cap) {
            h->cap = h->cap == 0 ? 16 : h->cap * 2;
            h->ids = cfw_xrealloc(h->ids, h->cap * sizeof(*h->ids));
        }
        h->ids[h->n++] = f->id;
        f->holds++;
    }
    return 0;
}

/* Removes the forms that nobody holds and that no recent configuration load registered. */
static void prune(void)
{
    size_t k = 0;

    for (size_t i = 0; i < reg.n; i++) {
        struct form *f = reg.v[i];
        if (f->holds == 0 && f->gen + 1 < reg.gen) {
            reg.bytes -= f->len;
            form_free(f);
            reg.dirty = true;
            continue;
        }
        reg.v[k++] = f;
    }
    reg.n = k;
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static size_t pct_encode(const unsigned char *v, size_t len, bool lower, char *out)
{
    const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (unreserved(v[i])) {
            out[o++] = (char)v[i];
        } else {
            out[o++] = '%';
            out[o++] = hex[v[i] >> 4];
            out[o++] = hex[v[i] & 15];
        }
    }
    return o;
}

static size_t escape(const char *v, size_t len, bool slash, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (v[i] == '"' || v[i] == '\\' || (slash && v[i] == '/')) {
            out[o++] = '\\';
        }
        out[o++] = v[i];
    }
    return o;
}

static size_t b64_encode(const unsigned char *v, size_t len, const char *alpha, bool pad, char *out)
{
    size_t o = 0;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t x = (uint32_t)v[i] << 16 | (uint32_t)v[i + 1] << 8 | v[i + 2];
        out[o++] = alpha[x >> 18 & 63];
        out[o++] = alpha[x >> 12 & 63];
        out[o++] = alpha[x >> 6 & 63];
        out[o++] = alpha[x & 63];
    }
    if (len - i == 1) {
        uint32_t x = (uint32_t)v[i] << 16;
        out[o++] = alpha[x >> 18 & 63];
        out[o++] = alpha[x >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t x = (uint32_t)v[i] << 16 | (uint32_t)v[i + 1] << 8;
        out[o++] = alpha[x >> 18 & 63];
        out[o++] = alpha[x >> 12 & 63];
        out[o++] = alpha[x >> 6 & 63];
        if (pad) {
            out[o++] = '=';
        }
    }
    return o;
}

/* Decodes standard or URL-safe base64 (padding optional); -1 on anything else. */
static long b64_decode(const char *s, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    while (len > 0 && s[len - 1] == '=') {
        len--;
    }
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(b64_std, s[i]);
        int v;
        if (s[i] == '-' || s[i] == '_') {
            p = strchr(b64_url, s[i]);
            v = (int)(p - b64_url);
        } else if (p == NULL || s[i] == '\0') {
            return -1;
        } else {
            v = (int)(p - b64_std);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    return (long)o;
}

/* Registers value and every derived form (see secrets.h); -1 when any form was refused. */
static int add_forms(struct cfw_secret_hold *h, const char *value, size_t len)
{
    const unsigned char *v = (const unsigned char *)value;
    size_t cap;
    char *tmp;
    size_t n;
    int rc = 0;

    if (len == 0) {
        return 0;
    }
    if (len > CFW_SECRETS_MAX_LEN) {
        refuse(len);
        return -1;
    }
    cap = len * 3 + 8;
    tmp = cfw_xmalloc(cap);
    rc |= add_form(h, value, len);
    n = pct_encode(v, len, false, tmp);
    rc |= add_form(h, tmp, n);
    n = pct_encode(v, len, true, tmp);
    rc |= add_form(h, tmp, n);
    n = escape(value, len, false, tmp);
    rc |= add_form(h, tmp, n);
    n = escape(value, len, true, tmp);
    rc |= add_form(h, tmp, n);
    n = b64_encode(v, len, b64_std, true, tmp);
    rc |= add_form(h, tmp, n);
    n = b64_encode(v, len, b64_std, false, tmp);
    rc |= add_form(h, tmp, n);
    n = b64_encode(v, len, b64_url, true, tmp);
    rc |= add_form(h, tmp, n);
    n = b64_encode(v, len, b64_url, false, tmp);
    rc |= add_form(h, tmp, n);
    wipe_free(tmp, cap);
    return rc != 0 ? -1 : 0;
}

struct cfw_secret_hold *cfw_secret_hold_new(void)
{
    return cfw_xcalloc(1, sizeof(struct cfw_secret_hold));
}

void cfw_secret_hold_free(struct cfw_secret_hold *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        /* gone after a cfw_secrets_clear: nothing to release */
        struct form *f = find_id(h->ids[i]);
        if (f != NULL && f->holds > 0) {
            f->holds--;
        }
    }
    free(h->ids);
    free(h);
    prune();
}

int cfw_secret_hold_add(struct cfw_secret_hold *h, const char *value, size_t len)
{
    if (value == NULL) {
        return 0;
    }
    return add_forms(h, value, len);
}

int cfw_secret_hold_add_basic(struct cfw_secret_hold *h, const char *user, const char *pass)
{
    size_t ul = user != NULL ? strlen(user) : 0;
    size_t pl = pass != NULL ? strlen(pass) : 0;
    char *pair;
    int rc = 0;

    if (ul + pl + 1 > CFW_SECRETS_MAX_LEN) {
        refuse(ul + pl + 1);
        return -1;
    }
    pair = cfw_xmalloc(ul + pl + 2);
    memcpy(pair, user != NULL ? user : "", ul);
    pair[ul] = ':';
    memcpy(pair + ul + 1, pass != NULL ? pass : "", pl);
    pair[ul + 1 + pl] = '\0';
    rc |= add_forms(h, pass, pl);
    rc |= add_forms(h, pair, ul + 1 + pl);
    wipe_free(pair, ul + pl + 2);
    return rc != 0 ? -1 : 0;
}

int cfw_secret_hold_add_header(struct cfw_secret_hold *h, const char *line)
{
    const char *colon;
    const char *v;
    const char *last;
    size_t len;
    int rc = 0;

    if (line == NULL) {
        return 0;
    }
    colon = strchr(line, ':');
    v = colon != NULL ? colon + 1 : line;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    len = strlen(v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }
    rc |= add_forms(h, v, len);
    /* "Bearer <token>", "Token <token>": the credential alone is hidden too */
    last = v + len;
    while (last > v && last[-1] != ' ' && last[-1] != '\t') {
        last--;
    }
    if (last > v) {
        rc |= add_forms(h, last, (size_t)(v + len - last));
    }
    /* "Basic <base64 of user:password>": the pair and the password, in every form */
    if (len > 6 && strncasecmp(v, "Basic ", 6) == 0) {
        size_t bl = (size_t)(v + len - last);
        unsigned char *dec = cfw_xmalloc(bl + 1);
        long dl = b64_decode(last, bl, dec);
        if (dl > 0 && memchr(dec, '\0', (size_t)dl) == NULL) {
            char *sep;
            dec[dl] = '\0';
            sep = strchr((char *)dec, ':');
            if (sep != NULL) {
                *sep = '\0';
                rc |= cfw_secret_hold_add_basic(h, (char *)dec, sep + 1);
            }
        }
        wipe_free((char *)dec, bl + 1);
    }
    return rc != 0 ? -1 : 0;
}

/*
 * A URL's path segment or query value is registered only when it looks like a token: a word
 * such as "alerts" or "json" in a webhook URL would turn into stars wherever it is written.
 */
static bool token_like(const char *s, size_t len)
{
    bool alpha = false;
    bool digit = false;

    for (size_t i = 0; i < len; i++) {
        alpha = alpha || isalpha((unsigned char)s[i]);
        digit = digit || isdigit((unsigned char)s[i]);
    }
    return len >= CFW_SECRETS_TOKEN_LEN || (len >= CFW_SECRETS_TOKEN_MIN && alpha && digit);
}

/* Registers a URL part raw and, when it holds escapes, percent-decoded. */
static int add_part(struct cfw_secret_hold *h, const char *s, size_t len)
{
    int rc = add_forms(h, s, len);

    if (memchr(s, '%', len) != NULL) {
        char *dec = cfw_xmalloc(len + 1);
        size_t dl = (size_t)cfw_percent_decode(s, len, dec, false);
        rc |= add_forms(h, dec, dl);
        wipe_free(dec, len + 1);
    }
    return rc;
}

int cfw_secret_hold_add_url(struct cfw_secret_hold *h, const char *url, bool secret_path)
{
    const char *scheme;
    const char *host;
    const char *path;
    const char *q;
    const char *end;
    const char *at = NULL;
    int rc = 0;

    if (url == NULL || url[0] == '\0') {
        return 0;
    }
    scheme = strstr(url, "://");
    if (scheme == NULL) {
        return secret_path ? add_forms(h, url, strlen(url)) : 0;
    }
    host = scheme + 3;
    path = host + strcspn(host, "/?#");
    end = path + strlen(path);
    q = path + strcspn(path, "?#");
    for (const char *p = host; p < path; p++) {
        if (*p == '@') {
            at = p; /* the last '@' ends the userinfo, as in curl */
        }
    }
    if (at != NULL) {
        /* curl decodes user and password and sends base64("user:password") */
        const char *colon = memchr(host, ':', (size_t)(at - host));
        size_t ulen = (size_t)((colon != NULL ? colon : at) - host);
        char *user = cfw_xmalloc(ulen + 1);
        char *pass = NULL;
        size_t plen = 0;

        user[cfw_percent_decode(host, ulen, user, false)] = '\0';
        rc |= add_forms(h, host, (size_t)(at - host));
        if (colon != NULL) {
            plen = (size_t)(at - colon - 1);
            pass = cfw_xmalloc(plen + 1);
            pass[cfw_percent_decode(colon + 1, plen, pass, false)] = '\0';
            rc |= add_forms(h, colon + 1, plen);
        }
        rc |= cfw_secret_hold_add_basic(h, user, pass != NULL ? pass : "");
        wipe_free(user, ulen + 1);
        wipe_free(pass, plen + 1);
    }
    if (*q == '?') {
        const char *qs = q + 1;
        const char *qe = qs + strcspn(qs, "#");
        rc |= add_part(h, qs, (size_t)(qe - qs));
        for (const char *item = qs; item < qe;) {
            const char *ie = item + strcspn(item, "&#");
            const char *eq = memchr(item, '=', (size_t)(ie - item));
            const char *val = eq != NULL ? eq + 1 : item;
            if (ie > val && token_like(val, (size_t)(ie - val))) {
                rc |= add_part(h, val, (size_t)(ie - val));
            }
            item = *ie == '&' ? ie + 1 : qe;
        }
    }
    if (secret_path) {
        const char *se = q;
        const char *last;
        rc |= add_forms(h, url, strlen(url));
        /* the last non-empty segment: the token of Slack, Discord and most webhook URLs */
        while (se > path && se[-1] == '/') {
            se--;
        }
        last = se;
        while (last > path && last[-1] != '/') {
            last--;
        }
        if (se > last && token_like(last, (size_t)(se - last))) {
            rc |= add_part(h, last, (size_t)(se - last));
            rc |= add_forms(h, path, (size_t)(end - path));
            rc |= add_forms(h, path, (size_t)(q - path));
        }
    }
    return rc != 0 ? -1 : 0;
}

bool cfw_secret_env_name(const char *name)
{
    static const char *const words[] = {"TOKEN",    "TOKENS", "SECRET",     "SECRETS",
                                        "PASSWORD", "PASSWD", "PASSPHRASE", "APIKEY"};
    static const char *const key_after[] = {"API",     "ACCESS", "PRIVATE",    "ROUTING",
                                            "SIGNING", "SECRET", "INTEGRATION"};
    char prev[32] = "";
    const char *p = name;

    if (name == NULL) {
        return false;
    }
    while (*p != '\0') {
        char word[32];
        size_t n = strcspn(p, "_-");
        if (n > 0 && n < sizeof(word)) {
            for (size_t i = 0; i < n; i++) {
                word[i] = (char)toupper((unsigned char)p[i]);
            }
            word[n] = '\0';
            for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                if (strcmp(word, words[i]) == 0) {
                    return true;
                }
            }
            if (strcmp(word, "KEY") == 0) {
                for (size_t i = 0; i < sizeof(key_after) / sizeof(key_after[0]); i++) {
                    if (strcmp(prev, key_after[i]) == 0) {
                        return true;
                    }
                }
            }
            memcpy(prev, word, n + 1);
        } else {
            prev[0] = '\0';
        }
        p += n;
        if (*p != '\0') {
            p++;
        }
    }
    return false;
}

int cfw_secret_hold_add_env(struct cfw_secret_hold *h, const char *name, const char *value)
{
    if (value == NULL || !cfw_secret_env_name(name)) {
        return 0;
    }
    return add_forms(h, value, strlen(value));
}

int cfw_secret_register(const char *value, size_t len)
{
    return cfw_secret_hold_add(NULL, value, len);
}

int cfw_secret_register_basic(const char *user, const char *pass)
{
    return cfw_secret_hold_add_basic(NULL, user, pass);
}

void cfw_secrets_loading(void)
{
    reg.gen++;
    prune();
}

void cfw_secrets_clear(void)
{
    /* ids stay unique across a clear: a holder made before it must not release a newer form */
    uint64_t serial = reg.serial;

    for (size_t i = 0; i < reg.n; i++) {
        form_free(reg.v[i]);
    }
    free(reg.v);
    free(reg.sorted);
    memset(&reg, 0, sizeof(reg));
    reg.serial = serial;
}

size_t cfw_secrets_count(void)
{
    return reg.n;
}

uint64_t cfw_secrets_refused(void)
{
    return reg.refused;
}

static int by_first_then_longest(const void *a, const void *b)
{
    const struct form *x = *(const struct form *const *)a;
    const struct form *y = *(const struct form *const *)b;
    unsigned char fx = (unsigned char)x->s[0];
    unsigned char fy = (unsigned char)y->s[0];

    if (fx != fy) {
        return fx < fy ? -1 : 1;
    }
    if (x->len != y->len) {
        return x->len > y->len ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

static void index_build(void)
{
    size_t k = 0;

    free(reg.sorted);
    reg.sorted = cfw_xcalloc(reg.n + 1, sizeof(*reg.sorted));
    memcpy(reg.sorted, reg.v, reg.n * sizeof(*reg.sorted));
    qsort(reg.sorted, reg.n, sizeof(*reg.sorted), by_first_then_longest);
    memset(reg.pairs, 0, sizeof(reg.pairs));
    for (unsigned b = 0; b < 256; b++) {
        reg.first_at[b] = k;
        while (k < reg.n && (unsigned char)reg.sorted[k]->s[0] == b) {
            unsigned pair = b << 8 | (unsigned char)reg.sorted[k]->s[1];
            reg.pairs[pair >> 6] |= 1ULL << (pair & 63);
            k++;
        }
    }
    reg.first_at[256] = k;
    reg.dirty = false;
}

/* Length of the longest form at text[i], or 0. */
static size_t match_at(const char *text, size_t len, size_t i)
{
    unsigned b0;
    unsigned pair;

    if (len - i < CFW_SECRETS_MIN_LEN) {
        return 0;
    }
    b0 = (unsigned char)text[i];
    pair = b0 << 8 | (unsigned char)text[i + 1];
    if ((reg.pairs[pair >> 6] >> (pair & 63) & 1) == 0) {
        return 0;
    }
    for (size_t k = reg.first_at[b0]; k < reg.first_at[b0 + 1]; k++) {
        const struct form *f = reg.sorted[k];
        if (f->len <= len - i && memcmp(text + i, f->s, f->len) == 0) {
            return f->len;
        }
    }
    return 0;
}

bool cfw_secrets_found(const char *text, size_t len)
{
    if (reg.n == 0 || text == NULL) {
        return false;
    }
    if (reg.dirty) {
        index_build();
    }
    for (size_t i = 0; i < len; i++) {
        if (match_at(text, len, i) > 0) {
            return true;
        }
    }
    return false;
}

/*
 * Why the mask is written only when a covered stretch ends: forms may overlap ("abcdef" and
 * "defgh" cover "abcdefgh" together), so a stretch grows while later positions match, and those
 * positions must still be read. Every form is at least CFW_SECRETS_MIN_LEN (> 3) bytes, so a
 * stretch is longer than the mask, the output never overtakes the input and the scrub can work
 * in place.
 */
size_t cfw_secrets_scrub_inplace(char *buf, size_t len)
{
    size_t w = 0;
    size_t run_end = 0;
    bool in_run = false;

    if (reg.n == 0 || buf == NULL || len == 0) {
        return len;
    }
    if (reg.dirty) {
        index_build();
    }
    for (size_t i = 0; i < len; i++) {
        size_t m;
        if (in_run && i >= run_end) {
            memcpy(buf + w, CFW_SECRETS_MASK, MASK_LEN);
            w += MASK_LEN;
            in_run = false;
        }
        m = match_at(buf, len, i);
        if (m > 0 && (!in_run || i + m > run_end)) {
            in_run = true;
            run_end = i + m;
        }
        if (!in_run) {
            buf[w++] = buf[i];
        }
    }
    if (in_run) {
        memcpy(buf + w, CFW_SECRETS_MASK, MASK_LEN);
        w += MASK_LEN;
    }
    if (w < len) {
        buf[w] = '\0';
    }
    return w;
}

char *cfw_secrets_scrub(const char *text)
{
    char *out = cfw_xstrdup(text != NULL ? text : "");

    cfw_secrets_scrub_inplace(out, strlen(out));
    return out;
}
