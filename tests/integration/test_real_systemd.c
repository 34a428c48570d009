/* test_real_systemd.c — the unit templates in systemd/ (*.in) pass `systemd-analyze verify`
 * with no warning at all once their placeholders are filled: @HIRED_BINDIR@/hired-X with this
 * build's binaries (temp copies; verify requires the executables to exist) and @HIRED_CONFDIR@
 * with /etc/hired; for every target (hired, hired-broker, hired-encoders, hired-decoders,
 * hired-gateway), the broker, the gateway and an instance of each template (hired-encoder@cpu,
 * hired-decoder@0). The checker is shown to fail: units naming binaries that are not there
 * (exit status non-zero), and a misspelt key (a warning). Every service carries the directives the design requires
 * (Type=notify, WatchdogSec, Restart=on-failure, RestartPreventExitStatus=2, the hardening
 * set), belongs to its role target and is installed into it, and only hired-broker.target pulls
 * in the broker, only hired-gateway.target the gateway (hired.target pulls in no service, so a
 * worker-only host never starts one).
 * The installed copies (paths of the installation) are checked by tests/install/test_install.sh.
 * Exit 77 (skipped) without systemd-analyze. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "err.h"
#include "test.h"
#include "test_real_util.h"

#ifndef HIRED_SOURCE_DIR
#define HIRED_SOURCE_DIR "."
#endif

static const char *const k_units[] = {"hired.target",          "hired-broker.target",    "hired-encoders.target",
                                      "hired-decoders.target", "hired-gateway.target",   "hired-broker.service",
                                      "hired-encoder@.service", "hired-decoder@.service", "hired-gateway.service"};
#define N_TARGETS 5 /* the first entries of k_units */

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Fills the templates systemd/NAME.in into dir/NAME: @HIRED_BINDIR@/hired-X becomes this
 * build's binary when build (else /nonexistent/bin/hired-X), @HIRED_CONFDIR@ becomes
 * /etc/hired; with typo, "Type=notify" becomes "Typ=notify". */
static void install(const char *dir, bool build, bool typo) {
    for (size_t i = 0; i < ARRAY_LEN(k_units); i++) {
        char src[2048], dst[1024];
        snprintf(src, sizeof src, "%s/systemd/%s.in", HIRED_SOURCE_DIR, k_units[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, k_units[i]);
        char *text = rt_slurp(src);
        CHECK_MSG(text != NULL, "cannot read %s", src);
        FILE *f = fopen(dst, "w");
        for (char *p = text; f && p && *p;) {
            static const struct {
                const char *from, *to;
            } subst[] = {{"@HIRED_BINDIR@/hired-broker", "broker/hired-broker"},
                         {"@HIRED_BINDIR@/hired-encoder", "encoder_worker/hired-encoder"},
                         {"@HIRED_BINDIR@/hired-decoder", "decoder_worker/hired-decoder"},
                         {"@HIRED_BINDIR@/hired-gateway", "gateway/hired-gateway"}};
            bool done = false;
            for (size_t k = 0; k < ARRAY_LEN(subst) && !done; k++)
                if (!strncmp(p, subst[k].from, strlen(subst[k].from))) {
                    if (build) fputs(rt_bin(subst[k].to), f);
                    else fprintf(f, "/nonexistent/bin/%s", strrchr(subst[k].to, '/') + 1);
                    p += strlen(subst[k].from);
                    done = true;
                }
            if (!done && !strncmp(p, "@HIRED_CONFDIR@", 15)) {
                fputs("/etc/hired", f);
                p += 15;
                done = true;
            }
            if (!done && typo && !strncmp(p, "\nType=notify", 12)) {
                fputs("\nTyp=notify", f);
                p += 12;
                done = true;
            }
            if (!done) fputc(*p++, f);
        }
        if (f) fclose(f);
        free(text);
    }
}

/* Runs verify in dir on the target, the broker and one instance of each template. */
static int verify(const char *dir, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && systemd-analyze verify --man=no hired.target hired-broker.target hired-encoders.target "
             "hired-decoders.target hired-gateway.target hired-broker.service hired-encoder@cpu.service "
             "hired-decoder@0.service hired-gateway.service > verify.out 2>&1",
             dir);
    int rc = sh(cmd);
    char path[1100];
    snprintf(path, sizeof path, "%s/verify.out", dir);
    *out = rt_slurp(path);
    if (!*out) *out = calloc(1, 1);
    return rc;
}

int main(void) {
    if (sh("command -v systemd-analyze > /dev/null 2>&1") != 0) {
        fprintf(stderr, "systemd-analyze is not installed (Debian package systemd): skipped\n");
        return 77;
    }
    h_init(RT_WATCHDOG_S);
    char dir[600], cmd[700];
    snprintf(dir, sizeof dir, "%s", h_path("units"));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK_EQ_INT(sh(cmd), 0);

    /* with this build's binaries: clean */
    install(dir, true, false);
    char *out = NULL;
    int rc = verify(dir, &out);
    CHECK_MSG(rc == 0 && out[0] == 0, "systemd-analyze verify: status %d\n%s", rc, out);
    free(out);

    /* the checker can fail: binaries not installed, then a misspelt key */
    install(dir, false, false);
    rc = verify(dir, &out);
    CHECK_MSG(rc != 0 && strstr(out, "/nonexistent/bin/hired-"), "status %d\n%s", rc, out);
    free(out);
    install(dir, true, true);
    rc = verify(dir, &out);
    CHECK_MSG(strstr(out, "Typ") != NULL, "a misspelt key went unnoticed: status %d\n%s", rc, out);
    free(out);

    /* the directives the design asks for, and each service in its role target */
    static const char *const svc_need[] = {"Type=notify", "WatchdogSec=", "Restart=on-failure",
                                           "RestartPreventExitStatus=2\n", "NoNewPrivileges=yes",
                                           "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                                           "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                                           "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                                           "User=hired", "ExecStart=@HIRED_BINDIR@/hired-",
                                           "-c @HIRED_CONFDIR@/hired-", "ReadOnlyPaths=@HIRED_CONFDIR@"};
    static const char *const role[] = {"hired-broker.target", "hired-encoders.target", "hired-decoders.target",
                                       "hired-gateway.target"};
    for (size_t i = N_TARGETS; i < ARRAY_LEN(k_units); i++) {
        char path[2048], want[128];
        snprintf(path, sizeof path, "%s/systemd/%s.in", HIRED_SOURCE_DIR, k_units[i]);
        char *text = rt_slurp(path);
        for (size_t k = 0; text && k < ARRAY_LEN(svc_need); k++)
            CHECK_MSG(strstr(text, svc_need[k]) != NULL, "%s lacks %s", k_units[i], svc_need[k]);
        const char *r = role[i - N_TARGETS];
        snprintf(want, sizeof want, "PartOf=%s\n", r);
        CHECK_MSG(text && strstr(text, want), "%s lacks %s", k_units[i], want);
        snprintf(want, sizeof want, "WantedBy=%s\n", r);
        CHECK_MSG(text && strstr(text, want), "%s lacks %s", k_units[i], want);
        CHECK_MSG(text && !strstr(text, "/usr/bin/") && !strstr(text, "WantedBy=hired.target"),
                  "%s names a fixed path or installs into hired.target directly", k_units[i]);
        if (text && strchr(k_units[i], '@')) {
            CHECK_MSG(strstr(text, "--model.device=%i") != NULL, "%s does not pass %%i as the device", k_units[i]);
            CHECK_MSG(strstr(text, "ReadOnlyPaths=@HIRED_CONFDIR@ /var/lib/hired/models") != NULL, "%s", k_units[i]);
            CHECK_MSG(strstr(text, "DeviceAllow=char-nvidia-frontend rw") != NULL, "%s", k_units[i]);
        }
        free(text);
    }
    /* the targets: only the broker's pulls in a service; every role target belongs to hired.target */
    for (size_t i = 0; i < N_TARGETS; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/systemd/%s.in", HIRED_SOURCE_DIR, k_units[i]);
        char *text = rt_slurp(path);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        if (!text) continue;
        bool broker = !strcmp(k_units[i], "hired-broker.target"), gateway = !strcmp(k_units[i], "hired-gateway.target");
        CHECK_MSG(broker == (strstr(text, "Wants=hired-broker.service") != NULL), "%s: Wants=hired-broker.service %s",
                  k_units[i], broker ? "missing" : "present");
        CHECK_MSG(gateway == (strstr(text, "Wants=hired-gateway.service") != NULL), "%s: Wants=hired-gateway.service %s",
                  k_units[i], gateway ? "missing" : "present");
        CHECK_MSG(!strstr(text, "Wants=hired-encoder") && !strstr(text, "Wants=hired-decoder"), "%s pulls in workers",
                  k_units[i]);
        if (i == 0) CHECK(strstr(text, "WantedBy=multi-user.target") != NULL);
        else CHECK_MSG(strstr(text, "PartOf=hired.target\n") && strstr(text, "WantedBy=hired.target\n") &&
                           strstr(text, "Also=hired.target\n"),
                       "%s is not part of hired.target", k_units[i]);
        free(text);
    }
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
