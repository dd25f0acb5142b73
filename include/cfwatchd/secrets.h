/*
 * The secret registry: every configured secret, in every form it takes on the wire, in one
 * process-wide set, so that text from outside (API error messages, receiver answers, command
 * output, log records) and everything cfwatchd writes (its log, incidents, state, the spool,
 * payloads, reports) can be scrubbed of them. Each occurrence becomes "***"; where secrets
 * overlap or touch, the whole stretch they cover becomes one "***", so a secret that contains
 * another is hidden whole.
 *
 * Forms registered for a secret S:
 *   - S itself;
 *   - S percent-encoded as curl and browsers do (every byte but A-Z a-z 0-9 - . _ ~ as %XX),
 *     with upper- and lower-case hex;
 *   - S with '"' and '\' backslash-escaped (a JSON string, cfwatchd's quoted log text), and
 *     with '/' as "\/" too (JSON from encoders that escape slashes);
 *   - base64 of S, standard and URL-safe alphabets, with and without padding.
 * The helpers add the parts of composite credentials: a basic-auth pair (the password,
 * "user:password" and so its base64, the value libcurl sends as "Authorization: Basic ..."), a
 * header line (its value and the value's last word, as in "Bearer <token>"; a Basic value's
 * decoded user:password), a URL (its user:password, percent-decoded as curl decodes it; the
 * query and each query value; for a secret URL the URL itself, and its last path segment and
 * its path: what cfw_url_redact hides). A query value or path segment is registered only when
 * it looks like a token (CFW_SECRETS_TOKEN_LEN bytes, or CFW_SECRETS_TOKEN_MIN with letters and
 * digits): "alerts" in https://example.com/alerts is not hidden everywhere, and is left to the
 * sink that owns the URL to hide in its receiver's answers.
 *
 * A form shorter than CFW_SECRETS_MIN_LEN bytes is not registered: it would turn unrelated text
 * into stars. A secret that short is therefore not hidden as it stands (its longer forms are).
 *
 * Lifetime. A registration belongs to the configuration being loaded (cfw_secrets_loading(),
 * which cfw_config_load calls, begins one), and when it is made through a holder, to that
 * holder too: an object that keeps secrets for its life (a sink, the Cloudflare API client, a
 * Logpush receiver, an exec source) registers them through its own holder and frees the holder
 * with itself. A form leaves the registry when no holder has it any more and no configuration
 * load since the one before the last registered it. So a reload that is rejected leaves the
 * running configuration's secrets registered (its objects still hold them), and after a reload
 * that succeeded the secrets only the old configuration had leave with its objects.
 *
 * Caps: at most CFW_SECRETS_MAX forms of at most CFW_SECRETS_MAX_LEN bytes, CFW_SECRETS_MAX_BYTES
 * in all. A registration beyond them fails (-1); the first refusal is logged (without the
 * secret) and every one is counted.
 *
 * Threads: cfwatchd runs one libevent loop in one thread (libcurl's resolver threads never call
 * into cfwatchd). The registry has no lock: use it from that thread only.
 */
#ifndef CFWATCHD_SECRETS_H
#define CFWATCHD_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Shorter forms are not registered. */
#define CFW_SECRETS_MIN_LEN 4u
/* A URL's path segment or query value is a token at this length, or at the minimum with
 * letters and digits. */
#define CFW_SECRETS_TOKEN_LEN 16u
#define CFW_SECRETS_TOKEN_MIN 8u
/* Forms kept at most, the longest form, and the bytes of all forms together. */
#define CFW_SECRETS_MAX 4096u
#define CFW_SECRETS_MAX_LEN (256u * 1024u)
#define CFW_SECRETS_MAX_BYTES (8u * 1024u * 1024u)
/* What replaces a secret. */
#define CFW_SECRETS_MASK "***"

/* An object's share of the registry: what it registered stays while the holder lives. */
struct cfw_secret_hold;

/* A new, empty holder. */
struct cfw_secret_hold *cfw_secret_hold_new(void);
/* Releases what the holder registered (forms nobody else keeps may leave); NULL accepted. */
void cfw_secret_hold_free(struct cfw_secret_hold *h);

/*
 * Registers value (len bytes) and its derived forms for the configuration being loaded and,
 * unless h is NULL, for the holder. 0, or -1 when a cap refused a form.
 */
int cfw_secret_hold_add(struct cfw_secret_hold *h, const char *value, size_t len);
/* Registers a basic-auth pair: password, "user:password" and their forms (base64 included). */
int cfw_secret_hold_add_basic(struct cfw_secret_hold *h, const char *user, const char *pass);
/* Registers a header line "Name: value": the value, its last word, a Basic value's pair. */
int cfw_secret_hold_add_header(struct cfw_secret_hold *h, const char *line);
/*
 * Registers the secret parts of a URL: user:password (raw and percent-decoded), the query and
 * its token-like values; when secret_path, also the URL and, when its last path segment is
 * token-like, that segment and the path.
 */
int cfw_secret_hold_add_url(struct cfw_secret_hold *h, const char *url, bool secret_path);
/*
 * Registers an environment variable's value when its name says it is a credential: one of its
 * words (split at '_' and '-', any case) is TOKEN(S), SECRET(S), PASSWORD, PASSWD, PASSPHRASE
 * or APIKEY, or KEY after API, ACCESS, PRIVATE, ROUTING, SIGNING, SECRET or INTEGRATION
 * (CLOUDFLARE_API_TOKEN, AWS_SECRET_ACCESS_KEY). Returns 0 also when it is not one.
 */
int cfw_secret_hold_add_env(struct cfw_secret_hold *h, const char *name, const char *value);
/* True when an environment variable of that name is taken for a credential (see above). */
bool cfw_secret_env_name(const char *name);

/* Registers value and its forms for the configuration being loaded (no holder). */
int cfw_secret_register(const char *value, size_t len);
/* Registers a basic-auth pair for the configuration being loaded (no holder). */
int cfw_secret_register_basic(const char *user, const char *pass);

/*
 * A configuration starts loading: later registrations belong to it, and forms that no holder
 * keeps and that neither it nor the previous load registered leave the registry.
 */
void cfw_secrets_loading(void);
/* Forgets every form (tests, exit); holders still alive then hold nothing. */
void cfw_secrets_clear(void);

/* Returns an allocated copy of text (NULL: "") with every registered form replaced. */
char *cfw_secrets_scrub(const char *text);
/*
 * Scrubs len bytes of buf in place (the result is never longer) and returns the new length;
 * the byte after the result is set to NUL when it lies within the len bytes.
 */
size_t cfw_secrets_scrub_inplace(char *buf, size_t len);
/* True when any registered form occurs in the len bytes of text. */
bool cfw_secrets_found(const char *text, size_t len);

/* Forms registered now. */
size_t cfw_secrets_count(void);
/* Registrations refused by the caps since the start (or the last clear). */
uint64_t cfw_secrets_refused(void);

#endif
