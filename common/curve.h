/* curve.h — CURVE encryption and client authentication for hired's ZeroMQ sockets, when key
 * files are configured (docs/protocol.md §1: off on loopback by default; nothing in the message
 * format changes).
 *
 * Keys are czmq certificates (zcert files: "NAME" holds the public key, "NAME_secret" both;
 * make them with `hired keygen NAME`, client/cmd_keygen.c: zcert_new + zcert_save). Roles:
 *   server (hired-broker, on its frontend and backend ROUTER sockets): its own secret
 *           certificate and three directories of authorised public certificates: clients (the
 *           frontend), workers (the backend) and, optionally, operators (the frontend, with the
 *           right to see every job in STATUS). Each socket has its own ZAP domain, so a client
 *           key is refused on the worker port and a worker key on the client port. A peer whose
 *           public key is not authorised for the socket completes no handshake: it gets no
 *           service (not even an ERROR: the connection never opens). An accepted peer's
 *           messages carry the ZAP user id "ROLE:KEY" (ROLE client, admin or worker; KEY the
 *           public key in Z85), read with zmq_msg_gets(msg, "User-Id").
 *   client (libhired, hired-encoder, hired-decoder; DEALER sockets): the broker's public
 *           certificate and its own secret certificate.
 * Authentication is a ZAP handler (RFC 27) that must live in the same ZeroMQ context as the
 * server sockets, so the broker starts one per context (curve_auth_start) before binding. czmq's
 * zauth actor is not used: it runs in czmq's own context, which the broker's sockets do not
 * share. Only czmq's certificate files (zcert_load) are used, which starts no czmq context and
 * installs no signal handler.
 * The authorised directory is read at start and re-read when its modification time changes, so
 * adding or removing a key file takes effect for new connections without a restart.
 * Not here: socket creation (wire_io.c wire_sock_setup, broker.c, worker_conn.c,
 * hired_client.c call the functions below), configuration tables (each service's main.c). */
#ifndef HIRED_CURVE_H
#define HIRED_CURVE_H

#include <stdbool.h>

/* File names; NULL or "" = not set. Borrowed by every function below for the call only. */
typedef struct curve_cfg {
    const char *server_cert;     /* server: this broker's secret certificate file */
    const char *authorized_keys; /* server: directory of authorised client public certificates */
    const char *worker_keys;     /* server: directory of authorised worker public certificates */
    const char *admin_keys;      /* server: directory of operator certificates (optional) */
    const char *server_key;      /* client: the broker's public certificate file */
    const char *client_cert;     /* client: this peer's secret certificate file */
} curve_cfg_t;

/* True when the server / client half is configured (its first file is set). cfg may be NULL. */
bool curve_server_enabled(const curve_cfg_t *cfg);
bool curve_client_enabled(const curve_cfg_t *cfg);

/* Checks that the files of each configured half exist and load (for --check-config and start):
 * server_cert with its secret key, authorized_keys and worker_keys readable directories (both
 * required with server_cert; admin_keys too when set), server_key, client_cert with its secret
 * key; both files of a half set together. 0 or HIRED_EINVAL / HIRED_ENOTFOUND / HIRED_EFORMAT
 * with err naming the file. */
int curve_check(const curve_cfg_t *cfg, char *err);

/* The ZAP handler of one ZeroMQ context: a thread answering the handshakes of every CURVE
 * server socket in zmq_ctx, accepting on a CURVE_CLIENTS socket the keys of authorized_keys and
 * admin_keys, on a CURVE_WORKERS socket those of worker_keys. Start it before binding server
 * sockets; stop it before zmq_ctx_term. Caller owns the result. NULL with err when CURVE is not
 * configured for the server (err = "") or on failure (err set). */
typedef struct curve_auth curve_auth_t;
curve_auth_t *curve_auth_start(void *zmq_ctx, const curve_cfg_t *cfg, char *err);
/* Stops and joins the thread, closes its socket. NULL-safe; sets *pa = NULL. */
void curve_auth_stop(curve_auth_t **pa);
/* Handshakes accepted and refused so far (tests, logs). */
void curve_auth_counts(curve_auth_t *a, unsigned long *accepted, unsigned long *refused);

/* Which peers a server socket serves (its ZAP domain). */
typedef enum { CURVE_CLIENTS = 0, CURVE_WORKERS } curve_role_t;

/* Makes sock (before zmq_bind) a CURVE server with this broker's secret key for the peers of
 * `role`. No-op returning 0 when the server half is not configured. 0 or HIRED_E* with err. */
int curve_apply_server(void *sock, const curve_cfg_t *cfg, curve_role_t role, char *err);
/* Makes sock (before zmq_connect) a CURVE client of the broker's public key with this peer's
 * key pair. No-op returning 0 when the client half is not configured. 0 or HIRED_E* with err. */
int curve_apply_client(void *sock, const curve_cfg_t *cfg, char *err);

#endif
