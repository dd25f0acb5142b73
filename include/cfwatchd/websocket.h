/*
 * A WebSocket client (RFC 6455) on the application's libevent loop, for Cloudflare's tail
 * endpoint: Debian 12's libcurl has no WebSocket support, and no Debian-packaged WebSocket
 * library runs on a libevent loop, so the protocol is spoken here over bufferevents (plain for
 * ws://, libevent's OpenSSL bufferevents for wss://, the peer's certificate and name verified).
 *
 * The client handshake sends a random Sec-WebSocket-Key and checks Sec-WebSocket-Accept, the
 * Upgrade and Connection headers and the subprotocol asked for. Client frames are masked with a
 * fresh random key each. Server frames go through cfw_ws_parser: fragmented messages are joined
 * (continuation frames), pings are answered with pongs, a close is echoed; every frame and every
 * message has a size cap, and a text message must be UTF-8. Liveness: a ping every
 * ping_interval; the connection is dead when the pong of the previous one has not come back.
 *
 * The parser is pure (no I/O) so that it can be fuzzed and unit-tested on bytes.
 */
#ifndef CFWATCHD_WEBSOCKET_H
#define CFWATCHD_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

struct event_base;

#define CFW_WS_MAX_FRAME_DEFAULT (1024u * 1024u)
#define CFW_WS_MAX_MESSAGE_DEFAULT (4u * 1024u * 1024u)
#define CFW_WS_HEAD_MAX (16u * 1024u)
#define CFW_WS_CONNECT_TIMEOUT_DEFAULT_MS 10000
#define CFW_WS_CLOSE_TIMEOUT_MS 3000
/* Bytes queued for sending beyond which a send is refused (the peer does not read). */
#define CFW_WS_SEND_MAX (1024u * 1024u)

/* Close codes (RFC 6455 section 7.4.1). */
#define CFW_WS_CLOSE_NORMAL 1000
#define CFW_WS_CLOSE_GOING_AWAY 1001
#define CFW_WS_CLOSE_PROTOCOL 1002
#define CFW_WS_CLOSE_NO_STATUS 1005
#define CFW_WS_CLOSE_ABNORMAL 1006
#define CFW_WS_CLOSE_BAD_DATA 1007
#define CFW_WS_CLOSE_TOO_BIG 1009
#define CFW_WS_CLOSE_INTERNAL 1011

enum cfw_ws_op {
    CFW_WS_OP_CONT = 0x0,
    CFW_WS_OP_TEXT = 0x1,
    CFW_WS_OP_BINARY = 0x2,
    CFW_WS_OP_CLOSE = 0x8,
    CFW_WS_OP_PING = 0x9,
    CFW_WS_OP_PONG = 0xA,
};

/* ---- the frame parser ---- */

struct cfw_ws_parser {
    size_t max_frame;   /* payload bytes of one frame (0: default) */
    size_t max_message; /* bytes of a whole (defragmented) message (0: default) */
    /* private */
    struct cfw_buf msg;    /* its cap, max_message's, is set by cfw_ws_parse on every data frame */
    enum cfw_ws_op msg_op; /* TEXT or BINARY while a fragmented message is open, else CONT */
    uint64_t frames;
};

/* What cfw_ws_parse delivers: a whole message, a ping, a pong or a close. */
struct cfw_ws_frame {
    enum cfw_ws_op op; /* TEXT, BINARY, PING, PONG or CLOSE */
    const char *data;  /* borrowed until the next call; a message is NUL-terminated */
    size_t len;        /* CLOSE: the reason's length */
    uint16_t code;     /* CLOSE: the status code (1005 when the frame had none) */
};

/*
 * Reads at most one frame from buf[0..len). Returns 1 with out filled (a message whose last
 * fragment this was, or a control frame), 0 when nothing is ready to deliver: either the frame
 * is incomplete (*used = 0, *need = the bytes the whole frame takes) or a non-final fragment
 * was stored (*used its size); -1 on a protocol error or a cap (*close_code the code to close
 * with, err says what). *used bytes of buf are consumed in both 1 and 0.
 */
int cfw_ws_parse(struct cfw_ws_parser *p, const unsigned char *buf, size_t len, size_t *used,
                 size_t *need, struct cfw_ws_frame *out, uint16_t *close_code, struct cfw_err *err);
/* Releases what the parser holds; it can be used again afterwards. */
void cfw_ws_parser_clear(struct cfw_ws_parser *p);

/*
 * Appends one final client frame (masked with mask, 4 bytes) carrying payload to out. Returns
 * 0, or -1 when out's cap is reached.
 */
int cfw_ws_frame_encode(struct cfw_buf *out, enum cfw_ws_op op, const void *payload, size_t len,
                        const unsigned char mask[4]);
/* The Sec-WebSocket-Accept value for key (base64 of SHA-1 of key + the RFC's GUID): 29 bytes. */
void cfw_ws_accept_key(const char *key, char out[32]);

/* ---- the client ---- */

struct cfw_ws_conf {
    const char *url;            /* ws://host[:port]/path or wss://...; may hold a secret */
    const char *protocol;       /* Sec-WebSocket-Protocol asked for and required, or NULL */
    const char *ca_file;        /* NULL: the system's CA store */
    const char *user_agent;     /* NULL: cfwatchd/<version> */
    int64_t connect_timeout_ms; /* TCP + TLS + handshake (0: default) */
    int64_t ping_interval_ms;   /* 0: no pings */
    size_t max_frame;           /* 0: default */
    size_t max_message;         /* 0: default */
};

struct cfw_ws;

struct cfw_ws_cbs {
    /* the handshake completed */
    void (*open)(void *arg, struct cfw_ws *ws);
    /* one whole message (data NUL-terminated, borrowed) */
    void (*message)(void *arg, struct cfw_ws *ws, bool text, const char *data, size_t len);
    /*
     * The connection is over, once per connection (also when it never opened): code is the
     * peer's close code, 1006 when there was no close handshake; why says what happened in
     * words ("closed by the server with 1011: ...", "no pong within 10 s", "handshake: HTTP
     * 403"); it never holds the URL's path or query.
     */
    void (*closed)(void *arg, struct cfw_ws *ws, int code, const char *why);
    void *arg;
};

struct cfw_ws_stats {
    uint64_t bytes_in;
    uint64_t frames_in;
    uint64_t messages_in;
    uint64_t pings_sent;
    uint64_t pongs_in;
};

/*
 * Starts connecting (name resolution, TCP, TLS, handshake) from the loop. Returns NULL with err
 * set when conf is unusable (a URL that is not ws:// or wss://, a CA file TLS cannot load).
 */
struct cfw_ws *cfw_ws_connect(struct event_base *base, const struct cfw_ws_conf *conf,
                              const struct cfw_ws_cbs *cbs, struct cfw_err *err);
/* Sends one text message (a single frame); -1 when not open or the send queue is full. */
int cfw_ws_send_text(struct cfw_ws *ws, const char *data, size_t len);
/* Sends a ping now; -1 when not open. */
int cfw_ws_ping(struct cfw_ws *ws, const char *data, size_t len);
/*
 * Starts the close handshake (code and reason sent); the closed callback follows when the
 * server answered or after CFW_WS_CLOSE_TIMEOUT_MS. Before the connection opened, it is dropped
 * (closed callback with 1006) on the next loop turn.
 */
void cfw_ws_close(struct cfw_ws *ws, uint16_t code, const char *reason);
/* True when the handshake completed and no close began. */
bool cfw_ws_is_open(const struct cfw_ws *ws);
void cfw_ws_get_stats(const struct cfw_ws *ws, struct cfw_ws_stats *out);
/* Drops the connection without any callback. NULL is fine; safe from inside a callback. */
void cfw_ws_free(struct cfw_ws *ws);

#endif
