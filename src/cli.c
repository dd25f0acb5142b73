/*
 * The on-call command line: `cfwatchd incidents`, `cfwatchd silence add|list|expire`,
 * `cfwatchd ack KEY`, each a request to the running daemon's HTTP API (/api/v1/...). The
 * daemon's address and the API token come from its configuration (listen, api.token_file),
 * or from --url and --token-file.
 */
#include "cfwatchd/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cfwatchd/config.h"
#include "cfwatchd/fsutil.h"
#include "cfwatchd/yaml.h"

#define CLI_BODY_MAX (8u * 1024u * 1024u)
#define CLI_TIMEOUT_MS 10000L

struct cli {
    char *base;  /* http://host:port */
    char *token; /* NULL: none */
    bool json;
};

static void usage(FILE *fp)
{
    fputs("usage: cfwatchd incidents [--all | --resolved] [--rule ID] [--script NAME]\n"
          "                          [--severity LEVEL] [--format text|json]\n"
          "       cfwatchd silence add --match NAME=VALUE [--match NAME=~REGEX]\n"
          "                            [--match NAME!=VALUE] --duration 2h --comment TEXT\n"
          "                            [--by NAME]\n"
          "       cfwatchd silence edit ID [--match ...] [--duration 2h (from now)]\n"
          "                            [--comment TEXT] [--by NAME]\n"
          "       cfwatchd silence list [--format text|json]\n"
          "       cfwatchd silence expire ID\n"
          "       cfwatchd ack KEY [--by NAME]\n"
          "common options: -c FILE (the daemon's configuration, default "
          "/etc/cfwatchd/cfwatchd.yaml: its listen address and api.token_file), --url URL,\n"
          "                --token-file FILE\n",
          fp);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct cfw_buf *b = arg;

    /* over the cap (set at init): 0 makes curl fail the transfer */
    return cfw_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* One request; returns the HTTP status (0: no answer, printed) with the parsed body in *out. */
static long request(const struct cli *c, const char *method, const char *path, json_t *body,
                    json_t **out)
{
    CURL *easy = curl_easy_init();
    struct curl_slist *hdr = NULL;
    struct cfw_buf resp;
    char *url = cfw_xasprintf("%s%s", c->base, path);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    char *auth = NULL;
    long status = 0;
    CURLcode rc;

    cfw_buf_init(&resp, CLI_BODY_MAX);
    *out = NULL;
    if (easy == NULL) {
        fprintf(stderr, "cfwatchd: cannot start libcurl\n");
        free(url);
        free(text);
        return 0;
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, CLI_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &resp);
    if (text != NULL) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, text);
    }
    if (c->token != NULL) {
        auth = cfw_xasprintf("Authorization: Bearer %s", c->token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdr);
    rc = curl_easy_perform(easy);
    if (rc != CURLE_OK) {
        fprintf(stderr, "cfwatchd: %s %s: %s (is the daemon running, and listening there?)\n",
                method, url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        *out = json_loadb(resp.data != NULL ? resp.data : "", resp.len, 0, NULL);
        if (*out == NULL) {
            fprintf(stderr, "cfwatchd: %s %s: HTTP %ld with a body that is not JSON\n", method, url,
                    status);
            status = 0;
        }
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(easy);
    if (auth != NULL) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    cfw_buf_free(&resp);
    free(url);
    free(text);
    return status;
}

/* Prints the API's error for a refused request; returns the exit status 1. */
static int refused(long status, json_t *o)
{
    if (status != 0) {
        fprintf(stderr, "cfwatchd: HTTP %ld: %s\n", status,
                json_string_value(json_object_get(o, "error")) != NULL
                    ? json_string_value(json_object_get(o, "error"))
                    : "(no reason given)");
    }
    json_decref(o);
    return 1;
}

/* Prints an answer as it came (--format json) and drops it; the exit status 0. */
static int print_json(json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    puts(text != NULL ? text : "null");
    free(text);
    json_decref(o);
    return 0;
}

static int cmd_incidents(const struct cli *c, const char *state, const char *rule,
                         const char *script, const char *sev)
{
    struct cfw_buf path;
    json_t *o;
    long st;
    size_t i;
    json_t *inc;
    char *r = rule != NULL ? curl_easy_escape(NULL, rule, 0) : NULL;
    char *s = script != NULL ? curl_easy_escape(NULL, script, 0) : NULL;
    char *v = sev != NULL ? curl_easy_escape(NULL, sev, 0) : NULL;

    cfw_buf_init(&path, CFW_BUF_MAX_BUILT);
    cfw_buf_printf(&path, "/api/v1/incidents?state=%s", state);
    if (r != NULL) {
        cfw_buf_printf(&path, "&rule=%s", r);
    }
    if (s != NULL) {
        cfw_buf_printf(&path, "&script=%s", s);
    }
    if (v != NULL) {
        cfw_buf_printf(&path, "&severity=%s", v);
    }
    curl_free(r);
    curl_free(s);
    curl_free(v);
    st = request(c, "GET", path.data, NULL, &o);
    cfw_buf_free(&path);
    if (st != 200) {
        return refused(st, o);
    }
    if (c->json) {
        return print_json(o);
    }
    if (json_array_size(json_object_get(o, "incidents")) == 0) {
        printf("no %s incidents\n", strcmp(state, "all") == 0 ? "" : state);
    }
    json_array_foreach (json_object_get(o, "incidents"), i, inc) {
        const char *opened = json_string_value(json_object_get(inc, "opened_at"));
        const char *acked = json_string_value(json_object_get(inc, "acked_by"));
        const char *sil = json_string_value(json_object_get(inc, "silenced_by"));

        printf("%-8s %-8s %s  (count %lld, opened %s)%s%s%s%s\n    %s\n",
               json_string_value(json_object_get(inc, "state")),
               json_string_value(json_object_get(inc, "severity")),
               json_string_value(json_object_get(inc, "key")),
               (long long)json_integer_value(json_object_get(inc, "count")),
               opened != NULL ? opened : "-", acked != NULL ? "  acked by " : "",
               acked != NULL ? acked : "", sil != NULL ? "  silenced by " : "",
               sil != NULL ? sil : "", json_string_value(json_object_get(inc, "title")));
    }
    json_decref(o);
    return 0;
}

/* NAME=VALUE, NAME=~REGEX or NAME!=VALUE as an API matcher; NULL when malformed. */
static json_t *matcher(const char *arg)
{
    const char *eq = strchr(arg, '=');
    bool negate, regex;
    char *name;
    json_t *m;

    if (eq == NULL || eq == arg || (eq == arg + 1 && arg[0] == '!')) {
        return NULL;
    }
    negate = eq[-1] == '!';
    regex = eq[1] == '~';
    name = cfw_xstrndup(arg, (size_t)(eq - arg) - (negate ? 1 : 0));
    m = json_pack("{s:s, s:s, s:b, s:b}", "name", name, "value", eq + 1 + (regex ? 1 : 0), "regex",
                  regex, "negate", negate);
    free(name);
    return m;
}

static const char *default_author(void)
{
    const char *u = getenv("SUDO_USER");

    if (u == NULL || u[0] == '\0') {
        u = getenv("USER");
    }
    return u != NULL && u[0] != '\0' ? u : "cfwatchd-cli";
}

static int cmd_silence_list(const struct cli *c)
{
    json_t *o, *s;
    long st = request(c, "GET", "/api/v1/silences", NULL, &o);
    size_t i;

    if (st != 200) {
        return refused(st, o);
    }
    if (c->json) {
        return print_json(o);
    }
    json_array_foreach (json_object_get(o, "silences"), i, s) {
        size_t k;
        json_t *m;
        time_t end = (time_t)(json_integer_value(json_object_get(s, "ends_at")) / 1000);
        struct tm tm;
        char ends[32];

        gmtime_r(&end, &tm);
        strftime(ends, sizeof(ends), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s  %-7s until %s  by %s: %s\n   ", json_string_value(json_object_get(s, "id")),
               json_string_value(json_object_get(s, "state")), ends,
               json_string_value(json_object_get(s, "created_by")),
               json_string_value(json_object_get(s, "comment")));
        json_array_foreach (json_object_get(s, "matchers"), k, m) {
            printf(" %s%s%s%s", json_string_value(json_object_get(m, "name")),
                   json_is_true(json_object_get(m, "negate")) ? "!=" : "=",
                   json_is_true(json_object_get(m, "regex")) ? "~" : "",
                   json_string_value(json_object_get(m, "value")));
        }
        putchar('\n');
    }
    if (i == 0) {
        puts("no silences");
    }
    json_decref(o);
    return 0;
}

/* Reads the daemon's address and token from its configuration (when it can be read). */
static int from_config(struct cli *c, const char *path, bool need)
{
    struct cfw_diag diag = {0};
    struct cfw_config *cfg = cfw_config_load(path, &diag);
    const char *listen;

    if (cfg == NULL) {
        if (need) {
            cfw_diag_print(&diag, stderr);
            fprintf(stderr, "cfwatchd: cannot read %s for the daemon's address (or give --url)\n",
                    path);
        }
        cfw_diag_free(&diag);
        return need ? -1 : 0;
    }
    listen = cfw_config_listen(cfg);
    if (c->base == NULL) {
        if (listen == NULL) {
            fprintf(stderr, "cfwatchd: %s has listen: off: the daemon has no API to talk to\n",
                    path);
            cfw_config_free(cfg);
            cfw_diag_free(&diag);
            return -1;
        }
        c->base = cfw_xasprintf("http://%s", listen);
    }
    if (c->token == NULL && cfg->api != NULL) {
        struct cfw_diag d2 = {0};
        char *token = NULL;
        if (cfw_node_secret(cfg->api, "token", "token_file", "api", &token, &d2) == 1) {
            c->token = token;
        } else if (d2.n > 0) {
            /* reading is allowed without it; a write then says 401 or 403 */
            fprintf(stderr, "cfwatchd: note: %s\n", d2.msgs[0]);
        }
        cfw_diag_free(&d2);
    }
    cfw_config_free(cfg);
    cfw_diag_free(&diag);
    return 0;
}

static char *read_token_file(const char *path)
{
    struct cfw_err err = {0};
    struct stat st;
    size_t n;
    char *buf;
    int fd = cfw_fs_open_regular(path, &st, &err); /* a FIFO or a device is refused, not read */

    if (fd < 0) {
        fprintf(stderr, "cfwatchd: --token-file %s\n", err.msg);
        return NULL;
    }
    buf = cfw_fs_read_all(fd, 1023, &n);
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    return buf;
}

bool cfw_cli_is_command(const char *s)
{
    return s != NULL &&
           (strcmp(s, "incidents") == 0 || strcmp(s, "silence") == 0 || strcmp(s, "ack") == 0);
}

/* What the command line asked for besides the daemon's address and token. */
struct cli_args {
    const char *config;
    const char *state; /* open, all or resolved */
    const char *rule, *script, *sev;
    const char *duration, *comment, *by;
    json_t *matchers; /* of --match, in order */
};

/* Takes one option other than --help into c or a; -1 after an error (said on stderr). */
static int take_option(int opt, const char *arg, struct cli *c, struct cli_args *a)
{
    switch (opt) {
    case 'c':
        a->config = arg;
        break;
    case 'u':
        free(c->base);
        c->base = cfw_xstrdup(arg);
        break;
    case 't':
        free(c->token);
        if ((c->token = read_token_file(arg)) == NULL) {
            return -1;
        }
        break;
    case 'f':
        if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0) {
            fprintf(stderr, "cfwatchd: --format: text or json\n");
            return -1;
        }
        c->json = strcmp(arg, "json") == 0;
        break;
    case 'a':
        a->state = "all";
        break;
    case 'r':
        a->state = "resolved";
        break;
    case 'R':
        a->rule = arg;
        break;
    case 'S':
        a->script = arg;
        break;
    case 'V':
        a->sev = arg;
        break;
    case 'm': {
        json_t *m = matcher(arg);
        if (m == NULL) {
            fprintf(stderr,
                    "cfwatchd: --match %s: use NAME=VALUE, NAME=~REGEX or "
                    "NAME!=VALUE\n",
                    arg);
            return -1;
        }
        json_array_append_new(a->matchers, m);
        break;
    }
    case 'd':
        a->duration = arg;
        break;
    case 'C':
        a->comment = arg;
        break;
    case 'b':
        a->by = arg;
        break;
    default:
        usage(stderr);
        return -1;
    }
    return 0;
}

/*
 * Reads the options into c and a. Returns false when the command ends there, with *rc its exit
 * status: 0 after --help, 2 after a bad option (said on stderr).
 */
static bool parse_args(int argc, char **argv, struct cli *c, struct cli_args *a, int *rc)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, 'u'},
        {"token-file", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},
        {"all", no_argument, NULL, 'a'},
        {"resolved", no_argument, NULL, 'r'},
        {"rule", required_argument, NULL, 'R'},
        {"script", required_argument, NULL, 'S'},
        {"severity", required_argument, NULL, 'V'},
        {"match", required_argument, NULL, 'm'},
        {"duration", required_argument, NULL, 'd'},
        {"comment", required_argument, NULL, 'C'},
        {"by", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *rc = 2;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            *rc = 0;
            return false;
        }
        if (take_option(opt, optarg, c, a) != 0) {
            return false;
        }
    }
    return true;
}

static int cmd_ack(const struct cli *c, const char *incident, const char *by)
{
    char *key = curl_easy_escape(NULL, incident, 0);
    char *path = cfw_xasprintf("/api/v1/incidents/%s/ack", key);
    json_t *body = json_pack("{s:s}", "by", by != NULL ? by : default_author());
    json_t *o;
    long st = request(c, "POST", path, body, &o);

    json_decref(body);
    free(path);
    curl_free(key);
    if (st != 200) {
        return refused(st, o);
    }
    printf("acknowledged %s (no more reminders; PagerDuty is told)\n", incident);
    json_decref(o);
    return 0;
}

static int cmd_silence_expire(const struct cli *c, const char *id)
{
    char *path = cfw_xasprintf("/api/v1/silences/%s", id);
    json_t *o;
    long st = request(c, "DELETE", path, NULL, &o);

    free(path);
    if (st != 200) {
        return refused(st, o);
    }
    printf("expired %s\n", id);
    json_decref(o);
    return 0;
}

static int cmd_silence_edit(const struct cli *c, const char *id, const struct cli_args *a)
{
    json_t *body = json_pack("{s:s}", "id", id), *o;
    long st;

    if (json_array_size(a->matchers) > 0) {
        json_object_set(body, "matchers", a->matchers);
    }
    if (a->duration != NULL) {
        json_object_set_new(body, "duration", json_string(a->duration));
    }
    if (a->comment != NULL) {
        json_object_set_new(body, "comment", json_string(a->comment));
    }
    if (a->by != NULL) {
        json_object_set_new(body, "created_by", json_string(a->by));
    }
    if (json_object_size(body) == 1) {
        fprintf(stderr, "cfwatchd: silence edit needs --match, --duration, --comment or --by\n");
        json_decref(body);
        return 2;
    }
    st = request(c, "POST", "/api/v1/silences", body, &o);
    json_decref(body);
    if (st == 200 && c->json) {
        return print_json(o);
    }
    if (st == 200) {
        printf("changed %s\n", id);
        json_decref(o);
        return 0;
    }
    return refused(st, o);
}

static int cmd_silence_add(const struct cli *c, const struct cli_args *a)
{
    json_t *body, *o;
    long st;

    if (json_array_size(a->matchers) == 0 || a->duration == NULL || a->comment == NULL) {
        fprintf(stderr, "cfwatchd: silence add needs --match (one or more), --duration and "
                        "--comment\n");
        return 2;
    }
    body = json_pack("{s:O, s:s, s:s, s:s}", "matchers", a->matchers, "duration", a->duration,
                     "comment", a->comment, "created_by", a->by != NULL ? a->by : default_author());
    st = request(c, "POST", "/api/v1/silences", body, &o);
    json_decref(body);
    if (st != 201) {
        return refused(st, o);
    }
    if (c->json) {
        return print_json(o);
    }
    printf("%s\n", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    return 0;
}

/* Runs the command that cmd and the words left in argv name; 2 (usage printed) for none. */
static int run_command(const struct cli *c, const char *cmd, int argc, char **argv,
                       const struct cli_args *a)
{
    const char *verb = optind < argc ? argv[optind] : "";
    int words = argc - optind;

    if (strcmp(cmd, "incidents") == 0 && words == 0) {
        return cmd_incidents(c, a->state, a->rule, a->script, a->sev);
    }
    if (strcmp(cmd, "ack") == 0 && words == 1) {
        return cmd_ack(c, argv[optind], a->by);
    }
    if (strcmp(cmd, "silence") == 0 && words == 1 && strcmp(verb, "list") == 0) {
        return cmd_silence_list(c);
    }
    if (strcmp(cmd, "silence") == 0 && words == 2 && strcmp(verb, "expire") == 0) {
        return cmd_silence_expire(c, argv[optind + 1]);
    }
    if (strcmp(cmd, "silence") == 0 && words == 2 && strcmp(verb, "edit") == 0) {
        return cmd_silence_edit(c, argv[optind + 1], a);
    }
    if (strcmp(cmd, "silence") == 0 && words == 1 && strcmp(verb, "add") == 0) {
        return cmd_silence_add(c, a);
    }
    usage(stderr);
    return 2;
}

int cfw_cli_main(int argc, char **argv)
{
    struct cli c = {0};
    struct cli_args a = {.state = "open", .matchers = json_array()};
    int rc;

    if (parse_args(argc, argv, &c, &a, &rc)) {
        rc = 2;
        if (from_config(&c, a.config != NULL ? a.config : CFW_CONFIG_DEFAULT_PATH,
                        c.base == NULL) == 0) {
            curl_global_init(CURL_GLOBAL_DEFAULT);
            rc = run_command(&c, argv[0], argc, argv, &a);
            curl_global_cleanup();
        }
    }
    json_decref(a.matchers);
    free(c.base);
    if (c.token != NULL) {
        memset(c.token, 0, strlen(c.token));
        free(c.token);
    }
    return rc;
}
