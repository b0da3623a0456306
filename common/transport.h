/*
 * transport.h: ZeroMQ sockets the way the stages need them.
 *
 * Opens sockets with explicit high-water marks (back-pressure blocks the
 * sender instead of dropping: PUSH/PULL never drop, and we size HWMs on
 * purpose), a receive size limit (ZMQ_MAXMSGSIZE: a peer sending more is
 * disconnected, never buffered), linger for clean shutdown, and optional
 * CURVE security.  Endpoint lists are comma-separated.
 *
 * Security (CURVE): a binding socket with a secret key file acts as a CURVE
 * server and runs a ZAP handler that admits only the public keys listed in
 * the allow file; a connecting socket with a secret key file and the
 * server's public key file acts as a CURVE client.  Key files hold the Z85
 * text of one key (40 characters); `./pipeline keys` writes them.
 *
 * Sockets belong to the thread that uses them (ZeroMQ rule); the ZAP
 * handler runs in its own thread with its own socket.
 */
#ifndef PW_TRANSPORT_H
#define PW_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pw_security {
    const char *secret_key_file;   /* our secret key (CURVE on when set) */
    const char *public_key_file;   /* our public key (clients need it too) */
    const char *server_key_file;   /* server's public key (connecting sides) */
    const char *allow_file;        /* binding sides: allowed client public keys, one per line */
} pw_security;

#define PW_HEARTBEAT_MISSES 30

typedef struct pw_socket_opts {
    int sndhwm;            /* messages; 0 = ZeroMQ default */
    int rcvhwm;
    int64_t maxmsgsize;    /* bytes; -1 = unlimited */
    int linger_ms;
    /* ZMTP heartbeats (0 = off): a PING every heartbeat_ms, the connection
     * closed after PW_HEARTBEAT_MISSES intervals without an answer.  Besides
     * noticing a vanished peer in bounded time, a PING carries this side's
     * TCP window: after the receiving process was stopped (SIGSTOP) and
     * resumes, the sender learns at once that it may send again instead of
     * waiting out TCP's zero-window probe back-off (measured: 5-8 s after a
     * 12 s stop of the sink without heartbeats). */
    int heartbeat_ms;
    const pw_security *security; /* NULL or no secret key: plain TCP */
} pw_socket_opts;

/* Creates the shared context (and the ZAP handler when a binding socket
 * will need it).  Returns NULL on failure (logged). */
void *pw_transport_context(void);
/* Stops the ZAP handler (if any) and terminates the context. */
void pw_transport_close(void *ctx);

/* Opens a socket of `type` (ZMQ_PUSH, ...) and binds it (bind=true) or
 * connects it to every endpoint of the comma-separated list.  On failure
 * logs an error naming the endpoint and returns NULL. */
void *pw_socket_open(void *ctx, int type, const char *endpoints, bool bind,
                     const pw_socket_opts *opts);
void pw_socket_close(void *sock);

/* Receives one [routing id][body] message from a ROUTER socket without
 * waiting.  Parts beyond the buffers' sizes are cut (*len says how much was
 * kept); a message of any other shape is read to its end and skipped.
 * 1 with a message, 0 when nothing is waiting (pw.h: iterator shape). */
int pw_router_recv(void *sock, void *id, size_t id_cap, size_t *id_len, void *body, size_t body_cap,
                   size_t *body_len);

/* Checks the shape of an endpoint list ("tcp://host:port", "ipc://path" or
 * "inproc://name", comma-separated, none empty).  NULL when fine, else the
 * reason: a pw_option check for endpoint flags. */
const char *pw_endpoints_check(const char *list);

#endif
