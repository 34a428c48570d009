/* cmd_keygen.c — `hired keygen NAME [--dir D] [--force]`: a CURVE key pair as czmq certificate
 * files, the format every hired CURVE option reads (common/curve.h):
 *
 *   D/NAME          the public certificate: give it to the peers (the broker's to clients and
 *                   workers as curve.server_key / --curve-server-key; a client's or worker's
 *                   into the broker's curve.authorized_keys directory)
 *   D/NAME_secret   the secret certificate (public and secret key), mode 0600: it stays on the
 *                   host that uses it (broker curve.server_cert, worker curve.cert, client
 *                   --curve-cert)
 *
 * Keys come from libzmq's CURVE key generator through czmq's zcert API (zcert_new, zcert_save),
 * so the files are czmq's own certificate format (what czmq's zmakecert tool writes, for those who
 * have it), with metadata name = NAME and generator = "hired keygen". D (default ".") is created (mode 0750) when missing; existing
 * files are never overwritten without --force. Prints both paths and the public key (Z85).
 * Exit status: 0 written, 1 the files could not be written (or exist), 2 usage.
 * Not here: loading and using certificates (common/curve.c). */
#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    char *dir;
    bool force;
} keygen_opts_t;

static const cfg_entry_t k_keygen_opts[] = {
    {"dir", CFG_STRING, offsetof(keygen_opts_t, dir), 1, 4000, ".", NULL,
     "where to write them (created if missing)"},
    {"force", CFG_BOOL, offsetof(keygen_opts_t, force), 0, 0, "false", NULL, "overwrite existing files of that name"},
};

static bool name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64 || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("._-", s[i])))
            return false;
    return true;
}

/* Writes the key pair NAME into dir: the exit status. */
static int keygen(const char *name, const char *dir, bool force) {
    if (!name || !name_ok(name)) {
        fprintf(stderr, "hired keygen: %s%s%s\n", name ? "invalid NAME '" : "NAME is required",
                name ? name : "", name ? "' (1-64 characters of [A-Za-z0-9._-], not starting with . or -)" : "");
        return 2;
    }

    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0750) != 0) {
            fprintf(stderr, "hired keygen: cannot create directory %s: %s\n", dir, strerror(errno));
            return 1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "hired keygen: %s is not a directory\n", dir);
        return 1;
    }
    char pub[4096], sec[4200];
    if (snprintf(pub, sizeof pub, "%s/%s", dir, name) >= (int)sizeof pub) {
        fprintf(stderr, "hired keygen: path too long\n");
        return 2;
    }
    snprintf(sec, sizeof sec, "%s_secret", pub);
    if (!force && (access(pub, F_OK) == 0 || access(sec, F_OK) == 0)) {
        fprintf(stderr, "hired keygen: %s or %s exists; not overwritten (--force replaces them)\n", pub, sec);
        return 1;
    }

    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "hired keygen: cannot generate a key pair (libzmq without CURVE?)\n");
        return 1;
    }
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "generator", "%s", "hired keygen");
    /* czmq writes NAME_secret with a private umask; chmod makes 0600 explicit either way */
    int rc = zcert_save(cert, pub);
    if (rc == 0 && chmod(sec, 0600) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "hired keygen: cannot write %s / %s: %s\n", pub, sec, strerror(errno));
        zcert_destroy(&cert);
        return 1;
    }
    printf("public certificate  %s\nsecret certificate  %s (keep it on this host only)\npublic key          %s\n",
           pub, sec, zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

/* keygen's body (cli_cmd_t). */
static int keygen_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    (void)cmd;
    const keygen_opts_t *o = values;
    return keygen(n_pos ? pos[0] : NULL, o->dir, o->force);
}

int cmd_keygen(int argc, char **argv) {
    static const cli_cmd_t cmd = {
        .prog = "hired keygen",
        .usage =
            "usage: hired keygen NAME [--dir D] [--force]\n"
            "  writes the CURVE key pair D/NAME (public certificate) and D/NAME_secret (secret, mode\n"
            "  0600) as czmq certificate files; NAME is 1-64 characters of [A-Za-z0-9._-]\n"
            "Use: the broker's NAME_secret as curve.server_cert and its NAME as every peer's\n"
            "curve.server_key (--curve-server-key); each client's and worker's NAME_secret as its\n"
            "curve.cert (--curve-cert), and a copy of its NAME in the broker's curve.authorized_keys\n"
            "directory (docs/deploy.md).\n",
        .t = k_keygen_opts,
        .n = (int)ARRAY_LEN(k_keygen_opts),
        .max_pos = 1,
        .body = keygen_body,
    };
    keygen_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
