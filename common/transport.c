/*
 * transport.c: ZeroMQ socket set-up, endpoint lists and the CURVE ZAP
 * handler (see transport.h).
 *
 * The ZAP handler is the standard ZeroMQ authentication hook (RFC 27): a
 * REP socket on inproc://zeromq.zap.01 in the same context.  It admits a
 * CURVE client only when its public key is in the allow list, so an
 * encrypted-but-unknown peer gets nothing in and nothing out.
 */
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "pw.h"

#define KEY_Z85_LEN 40
#define KEY_BIN_LEN 32
#define MAX_ALLOWED_KEYS 256

static struct {
    void *ctx;
    pthread_t thread;
    bool running;
    uint8_t keys[MAX_ALLOWED_KEYS][KEY_BIN_LEN];
    size_t nkeys;
} zap;

/* Reads the first 40-character Z85 key of a file into out (41 bytes). */
static int read_key_file(const char *path, char out[KEY_Z85_LEN + 1])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return PW_EIO;
    char line[256];
    int rc = PW_EINVAL;
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (line[0] == '#' || n == 0)
            continue;
        if (n == KEY_Z85_LEN) {
            memcpy(out, line, KEY_Z85_LEN + 1);
            rc = PW_OK;
        }
        break;
    }
    fclose(f);
    return rc;
}

static int load_allow_list(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return PW_EIO;
    char line[256];
    zap.nkeys = 0;
    int rc = PW_OK;
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (n != KEY_Z85_LEN || zap.nkeys == MAX_ALLOWED_KEYS ||
            !zmq_z85_decode(zap.keys[zap.nkeys], line)) {
            rc = PW_EINVAL;
            break;
        }
        zap.nkeys++;
    }
    fclose(f);
    return rc;
}

static bool key_allowed(const uint8_t *key, size_t len)
{
    if (len != KEY_BIN_LEN)
        return false;
    for (size_t i = 0; i < zap.nkeys; i++)
        if (memcmp(zap.keys[i], key, KEY_BIN_LEN) == 0)
            return true;
    return false;
}

static void send_frame(void *sock, const void *data, size_t len, bool more)
{
    zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0);
}

static void *zap_thread(void *arg)
{
    void *sock = arg;
    for (;;) {
        /* Request: version, request id, domain, address, identity, mechanism, credentials... */
        zmq_msg_t frames[8];
        int n = 0;
        bool failed = false;
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, 0) < 0) {
                zmq_msg_close(&m);
                if (errno == EINTR)
                    continue;
                failed = true;
                break;
            }
            bool more = zmq_msg_more(&m);
            if (n < 8)
                frames[n++] = m;
            else
                zmq_msg_close(&m);
            if (!more)
                break;
        }
        if (failed) {
            for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
            break; /* context terminated */
        }
        bool ok = n >= 7 && zmq_msg_size(&frames[5]) == 5 &&
                  memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 &&
                  key_allowed(zmq_msg_data(&frames[6]), zmq_msg_size(&frames[6]));
        {
            /* REP must answer every request, even a malformed one. */
            send_frame(sock, "1.0", 3, true);
            send_frame(sock, n >= 2 ? zmq_msg_data(&frames[1]) : "", n >= 2 ? zmq_msg_size(&frames[1]) : 0, true);
            send_frame(sock, ok ? "200" : "400", 3, true);
            send_frame(sock, ok ? "OK" : "client key not allowed", ok ? 2 : 22, true);
            send_frame(sock, "", 0, true);
            send_frame(sock, "", 0, false);
        }
        if (!ok) {
            static pw_log_limiter lim = PW_LOG_LIMITER_INIT(10000);
            PW_LOG_LIMITED(&lim, PW_LOG_WARN, "connection refused: client key not allowed",
                           PW_STR("reason", "auth"));
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(sock);
    return NULL;
}

static int zap_start(void *ctx, const char *allow_file)
{
    if (zap.running)
        return PW_OK;
    if (!allow_file) {
        PW_LOG(PW_LOG_ERROR, "CURVE server needs an allow list of client keys",
               PW_STR("reason", "config"));
        return PW_EINVAL;
    }
    if (load_allow_list(allow_file) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "cannot read allowed client keys", PW_STR("file", allow_file));
        return PW_EINVAL;
    }
    void *sock = zmq_socket(ctx, ZMQ_REP);
    if (!sock || zmq_bind(sock, "inproc://zeromq.zap.01") != 0) {
        PW_LOG(PW_LOG_ERROR, "cannot start ZAP handler", PW_STR("error", zmq_strerror(errno)));
        if (sock)
            zmq_close(sock);
        return PW_ERR;
    }
    if (pthread_create(&zap.thread, NULL, zap_thread, sock) != 0) {
        zmq_close(sock);
        return PW_ERR;
    }
    zap.ctx = ctx;
    zap.running = true;
    return PW_OK;
}

void *pw_transport_context(void)
{
    void *ctx = zmq_ctx_new();
    if (!ctx)
        PW_LOG(PW_LOG_ERROR, "cannot create ZeroMQ context", PW_STR("error", zmq_strerror(errno)));
    return ctx;
}

void pw_transport_close(void *ctx)
{
    if (!ctx)
        return;
    if (zap.running && zap.ctx == ctx) {
        zmq_ctx_shutdown(ctx);
        pthread_join(zap.thread, NULL);
        zap.running = false;
    }
    while (zmq_ctx_term(ctx) != 0 && errno == EINTR) {
    }
}

static int apply_security(void *ctx, void *sock, bool bind, const pw_security *sec)
{
    if (!sec || !sec->secret_key_file)
        return PW_OK;
    char secret[KEY_Z85_LEN + 1], pub[KEY_Z85_LEN + 1];
    if (read_key_file(sec->secret_key_file, secret) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "cannot read CURVE secret key", PW_STR("file", sec->secret_key_file));
        return PW_EINVAL;
    }
    if (bind) {
        if (zap_start(ctx, sec->allow_file) != PW_OK)
            return PW_EINVAL;
        int one = 1;
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, KEY_Z85_LEN);
        /* A domain makes libzmq always consult the ZAP handler. */
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "pipewatch", 9);
    } else {
        char server[KEY_Z85_LEN + 1];
        if (!sec->public_key_file || read_key_file(sec->public_key_file, pub) != PW_OK) {
            PW_LOG(PW_LOG_ERROR, "cannot read CURVE public key",
                   PW_STR("file", sec->public_key_file));
            return PW_EINVAL;
        }
        if (!sec->server_key_file || read_key_file(sec->server_key_file, server) != PW_OK) {
            PW_LOG(PW_LOG_ERROR, "cannot read CURVE server key",
                   PW_STR("file", sec->server_key_file));
            return PW_EINVAL;
        }
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, KEY_Z85_LEN);
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, KEY_Z85_LEN);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, KEY_Z85_LEN);
    }
    explicit_bzero(secret, sizeof secret);
    return PW_OK;
}

void *pw_socket_open(void *ctx, int type, const char *endpoints, bool bind,
                     const pw_socket_opts *opts)
{
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        PW_LOG(PW_LOG_ERROR, "cannot create socket", PW_STR("error", zmq_strerror(errno)));
        return NULL;
    }
    if (opts->sndhwm)
        zmq_setsockopt(sock, ZMQ_SNDHWM, &opts->sndhwm, sizeof opts->sndhwm);
    if (opts->rcvhwm)
        zmq_setsockopt(sock, ZMQ_RCVHWM, &opts->rcvhwm, sizeof opts->rcvhwm);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &opts->maxmsgsize, sizeof opts->maxmsgsize);
    zmq_setsockopt(sock, ZMQ_LINGER, &opts->linger_ms, sizeof opts->linger_ms);
    if (opts->heartbeat_ms > 0) {
        int timeout = opts->heartbeat_ms * PW_HEARTBEAT_MISSES;
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &opts->heartbeat_ms, sizeof opts->heartbeat_ms);
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
        zmq_setsockopt(sock, ZMQ_HEARTBEAT_TTL, &timeout, sizeof timeout);
    }
    if (apply_security(ctx, sock, bind, opts->security) != PW_OK) {
        zmq_close(sock);
        return NULL;
    }
    const char *p = endpoints;
    while (*p) {
        size_t n = strcspn(p, ",");
        char ep[512];
        if (n == 0 || n >= sizeof ep) {
            PW_LOG(PW_LOG_ERROR, "bad endpoint", PW_STRN("endpoint", p, n));
            goto fail;
        }
        memcpy(ep, p, n);
        ep[n] = '\0';
        int rc = bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep);
        if (rc != 0) {
            PW_LOG(PW_LOG_ERROR, bind ? "cannot bind" : "cannot connect", PW_STR("endpoint", ep),
                   PW_STR("error", zmq_strerror(errno)));
            goto fail;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return sock;
fail:
    {
        int zero = 0;
        zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(sock);
    }
    return NULL;
}

void pw_socket_close(void *sock)
{
    if (sock)
        zmq_close(sock);
}

const char *pw_endpoints_check(const char *list)
{
    static const char bad[] = "not an endpoint list (tcp://HOST:PORT, ipc://PATH or inproc://NAME, comma-separated)";
    if (!list || !*list)
        return bad;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0)
            return bad;
        bool tcp = n > 6 && strncmp(p, "tcp://", 6) == 0;
        bool ipc = n > 6 && strncmp(p, "ipc://", 6) == 0;
        bool inproc = n > 9 && strncmp(p, "inproc://", 9) == 0;
        if (!tcp && !ipc && !inproc)
            return bad;
        if (tcp) {
            const char *colon = NULL;
            for (const char *q = p + 6; q < p + n; q++)
                if (*q == ':')
                    colon = q;
            if (!colon || colon == p + 6 || colon + 1 == p + n)
                return bad;
        }
        p += n;
        if (*p == ',') {
            p++;
            if (!*p)
                return bad;
        }
    }
    return NULL;
}

static bool more_parts(void *sock)
{
    int more = 0;
    size_t len = sizeof more;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

int pw_router_recv(void *sock, void *id, size_t id_cap, size_t *id_len, void *body, size_t body_cap,
                   size_t *body_len)
{
    for (;;) {
        int n = zmq_recv(sock, id, id_cap, ZMQ_DONTWAIT);
        if (n < 0)
            return 0;
        *id_len = (size_t)n < id_cap ? (size_t)n : id_cap;
        if (!more_parts(sock))
            continue; /* an id alone: not a message */
        n = zmq_recv(sock, body, body_cap, ZMQ_DONTWAIT);
        bool extra = more_parts(sock);
        while (more_parts(sock)) {
            char skip[64];
            zmq_recv(sock, skip, sizeof skip, ZMQ_DONTWAIT);
        }
        if (n < 0 || extra)
            continue;
        *body_len = (size_t)n < body_cap ? (size_t)n : body_cap;
        return 1;
    }
}
