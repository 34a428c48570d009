/* test_real_systemd.c — the systemd units in systemd/ pass `systemd-analyze verify` with no
 * warning at all, with ExecStart pointing at this build's binaries (temp copies; verify requires
 * the executables to exist), for the target, the broker and an instance of each template
 * (hired-encoder@cpu, hired-decoder@0). The checker is shown to fail: the units as shipped name
 * /usr/bin binaries that are not installed here (exit status non-zero), and a misspelt key
 * produces a warning. Every unit carries the directives the design requires (Type=notify,
 * WatchdogSec, Restart=on-failure, the hardening set). Exit 77 (skipped) without systemd-analyze. */
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

static const char *const k_units[] = {"hired.target", "hired-broker.service", "hired-encoder@.service",
                                      "hired-decoder@.service"};

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Copies the units into dir, replacing "/usr/bin/hired-X" by the build's binary when build. */
static void install(const char *dir, bool build, bool typo) {
    for (size_t i = 0; i < ARRAY_LEN(k_units); i++) {
        char src[2048], dst[1024];
        snprintf(src, sizeof src, "%s/systemd/%s", HIRED_SOURCE_DIR, k_units[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, k_units[i]);
        char *text = rt_slurp(src);
        CHECK_MSG(text != NULL, "cannot read %s", src);
        FILE *f = fopen(dst, "w");
        for (char *p = text; f && p && *p;) {
            static const struct {
                const char *from, *to;
            } subst[] = {{"/usr/bin/hired-broker", "broker/hired-broker"},
                         {"/usr/bin/hired-encoder", "encoder_worker/hired-encoder"},
                         {"/usr/bin/hired-decoder", "decoder_worker/hired-decoder"}};
            bool done = false;
            for (size_t k = 0; build && k < ARRAY_LEN(subst) && !done; k++)
                if (!strncmp(p, subst[k].from, strlen(subst[k].from))) {
                    fputs(rt_bin(subst[k].to), f);
                    p += strlen(subst[k].from);
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
             "cd '%s' && systemd-analyze verify --man=no hired.target hired-broker.service "
             "hired-encoder@cpu.service hired-decoder@0.service > verify.out 2>&1",
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
    h_init(50);
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
    CHECK_MSG(rc != 0 && strstr(out, "/usr/bin/hired-"), "status %d\n%s", rc, out);
    free(out);
    install(dir, true, true);
    rc = verify(dir, &out);
    CHECK_MSG(strstr(out, "Typ") != NULL, "a misspelt key went unnoticed: status %d\n%s", rc, out);
    free(out);

    /* the directives the design asks for */
    static const char *const svc_need[] = {"Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes",
                                           "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                                           "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                                           "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                                           "User=hired", "PartOf=hired.target", "WantedBy=hired.target"};
    for (size_t i = 1; i < ARRAY_LEN(k_units); i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/systemd/%s", HIRED_SOURCE_DIR, k_units[i]);
        char *text = rt_slurp(path);
        for (size_t k = 0; text && k < ARRAY_LEN(svc_need); k++)
            CHECK_MSG(strstr(text, svc_need[k]) != NULL, "%s lacks %s", k_units[i], svc_need[k]);
        if (text && strchr(k_units[i], '@')) {
            CHECK_MSG(strstr(text, "--model.device=%i") != NULL, "%s does not pass %%i as the device", k_units[i]);
            CHECK_MSG(strstr(text, "ReadOnlyPaths=/etc/hired /var/lib/hired/models") != NULL, "%s", k_units[i]);
            CHECK_MSG(strstr(text, "DeviceAllow=char-nvidia-frontend rw") != NULL, "%s", k_units[i]);
        }
        free(text);
    }
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
