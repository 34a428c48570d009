/* wire_io.c — multipart receive / send and socket options for the hired protocol (wire.h).
 * Payload frames are moved (zmq_msg_move / zmq_msg_send), never copied. Sends never block on
 * the first frame (ZMQ_DONTWAIT): a full peer gives HIRED_EBUSY, and ROUTER sockets drop
 * messages for unknown or full peers by themselves. Not here: header encoding (wire.c). */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <time.h>

void wire_parts_close(wire_parts_t *p) {
    for (int i = 0; i < p->n; i++) zmq_msg_close(&p->part[i]);
    p->n = 0;
}

void wire_parts_take(wire_parts_t *p, int i, zmq_msg_t *out) {
    zmq_msg_init(out);
    zmq_msg_move(out, &p->part[i]);
}

int wire_recv(void *sock, wire_parts_t *p, int flags) {
    p->n = 0;
    p->truncated = false;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *dst = p->n < WIRE_MAX_PARTS ? &p->part[p->n] : &tmp;
        zmq_msg_init(dst);
        int first = p->n == 0 && !p->truncated;
        int rc;
        do {
            rc = zmq_msg_recv(dst, sock, first ? flags : 0);
        } while (rc < 0 && errno == EINTR && !first);
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(dst);
            wire_parts_close(p);
            return (first && (e == EAGAIN || e == EINTR)) ? HIRED_ETIMEOUT : HIRED_EIO;
        }
        int more = zmq_msg_more(dst);
        if (dst == &tmp) {
            p->truncated = true;
            zmq_msg_close(&tmp);
        } else {
            p->n++;
        }
        if (!more) return HIRED_OK;
    }
}

int wire_send(void *sock, const void *route, size_t route_len, const wire_msg_t *m, zmq_msg_t *payload,
              char *err) {
    return wire_sendv(sock, route, route_len, m, payload, payload ? 1 : 0, err);
}

/* Closes payloads[0..n) and leaves each an empty message. */
static void drop_payloads(zmq_msg_t *payloads, int n) {
    for (int i = 0; i < n; i++) {
        zmq_msg_close(&payloads[i]);
        zmq_msg_init(&payloads[i]);
    }
}

int wire_sendv(void *sock, const void *route, size_t route_len, const wire_msg_t *m, zmq_msg_t *payloads, int n,
               char *err) {
    if (n < 0 || n > WIRE_MAX_PAYLOADS || (n && !payloads)) {
        if (n > 0 && payloads) drop_payloads(payloads, n);
        return hired_errf(err, HIRED_EINVAL, "%d payload frames (at most %d)", n, WIRE_MAX_PAYLOADS);
    }
    zmq_msg_t hdr;
    int rc = wire_encode(m, &hdr, err);
    if (rc) {
        drop_payloads(payloads, n);
        return rc;
    }
    int more_after_hdr = n ? ZMQ_SNDMORE : 0;
    if (route) {
        if (zmq_send(sock, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            /* with ZMQ_ROUTER_MANDATORY: a full pipe, or no peer of that routing id */
            rc = errno == EAGAIN ? HIRED_EBUSY : errno == EHOSTUNREACH ? HIRED_ENOTFOUND : HIRED_EIO;
            goto fail;
        }
        /* After the first frame the rest of the message is committed; these cannot block. */
        if (zmq_msg_send(&hdr, sock, more_after_hdr) < 0) goto fail_io;
    } else if (zmq_msg_send(&hdr, sock, more_after_hdr | ZMQ_DONTWAIT) < 0) {
        rc = errno == EAGAIN ? HIRED_EBUSY : HIRED_EIO;
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        if (zmq_msg_send(&payloads[i], sock, i + 1 < n ? ZMQ_SNDMORE : 0) < 0) {
            hired_errf(err, HIRED_EIO, "send failed: %s", zmq_strerror(errno));
            drop_payloads(payloads + i, n - i);
            return HIRED_EIO;
        }
        zmq_msg_init(&payloads[i]); /* sent: leave an empty message behind */
    }
    return HIRED_OK;
fail_io:
    rc = HIRED_EIO;
fail:
    hired_errf(err, rc, "send %s failed: %s", wire_type_name(m->type), zmq_strerror(errno));
    zmq_msg_close(&hdr);
    drop_payloads(payloads, n);
    return rc;
}

int wire_sock_setup(void *sock, const wire_limits_t *lim_in) {
    wire_limits_t lim = wire_limits_resolve(lim_in);
    int64_t maxmsg = (int64_t)lim.max_frame;
    int linger = 200, keepalive = 1;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(sock, ZMQ_TCP_KEEPALIVE, &keepalive, sizeof keepalive))
        return HIRED_EIO;
    return HIRED_OK;
}
