/* test_cfg — the configuration table: defaults, libconfig files (groups, lists, every type),
 * command-line precedence, and every rejection by name (unknown key with FILE:LINE, wrong type,
 * out of range, syntax error with libconfig's line, bad tables); a command's options (cfg_cli);
 * allocation-failure sweep. */
#include "test.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "err.h"
#include "log.h"
#include "mem.h"

typedef struct {
    char *frontend;
    char *backend;
    int64_t port;
    int64_t batch;
    double timeout;
    bool warmup;
    cfg_strlist_t peers;
    int level;
    char *name;
} svc_t;

static const cfg_entry_t k_tab[] = {
    {"broker.frontend", CFG_STRING, offsetof(svc_t, frontend), 1, 256, "tcp://*:5555", NULL, "client endpoint"},
    {"broker.backend", CFG_STRING, offsetof(svc_t, backend), 0, 0, "tcp://*:5556", NULL, "worker endpoint"},
    {"port", CFG_INT, offsetof(svc_t, port), 1, 65535, "8080", NULL, "http port"},
    {"encoder.limits.batch", CFG_INT, offsetof(svc_t, batch), 1, 64, "8", NULL, "tiles per batch"},
    {"timeout_s", CFG_DOUBLE, offsetof(svc_t, timeout), 0.0, 3600.0, "2.5", NULL, "request timeout"},
    {"warmup", CFG_BOOL, offsetof(svc_t, warmup), 0, 0, "true", NULL, "run a warm-up request"},
    {"peers", CFG_STRLIST, offsetof(svc_t, peers), 0, 4, "a,b", NULL, "peer endpoints"},
    {"log.level", CFG_ENUM, offsetof(svc_t, level), 0, 0, "info", "debug|info|warn|error", "log threshold"},
    {"name", CFG_STRING, offsetof(svc_t, name), 0, 0, "", NULL, "instance name"},
};
#define N_TAB ((int)(sizeof k_tab / sizeof k_tab[0]))

static char g_dir[256];

static const char *write_cfg(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static bool has(const char *err, const char *needle) {
    bool ok = strstr(err, needle) != NULL;
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, needle);
    return ok;
}

static void test_defaults(void) {
    svc_t v = {0};
    char err[HIRED_ERR_LEN];
    CHECK_EQ_INT(cfg_load(k_tab, N_TAB, NULL, &v, err), HIRED_OK);
    CHECK(!strcmp(v.frontend, "tcp://*:5555") && !strcmp(v.backend, "tcp://*:5556"));
    CHECK(v.port == 8080 && v.batch == 8 && v.timeout == 2.5 && v.warmup);
    CHECK(v.peers.n == 2 && !strcmp(v.peers.items[0], "a") && !strcmp(v.peers.items[1], "b"));
    CHECK_EQ_INT(v.level, 1);
    CHECK(v.name && v.name[0] == '\0');
    cfg_log(k_tab, N_TAB, &v);
    /* defaults again over filled values: old strings are freed, not leaked */
    CHECK_EQ_INT(cfg_defaults(k_tab, N_TAB, &v, err), HIRED_OK);
    cfg_free(k_tab, N_TAB, &v);
    CHECK(v.frontend == NULL && v.peers.n == 0 && v.peers.items == NULL);
    cfg_free(k_tab, N_TAB, &v); /* twice is fine */
}

static void test_file(void) {
    const char *path = write_cfg("good.cfg",
                                 "# a comment\n"
                                 "broker = { frontend = \"tcp://127.0.0.1:7000\"; };\n"
                                 "broker: { backend = \"ipc:///tmp/b\"; }\n" /* libconfig forbids repeats: see below */
                                 "port = 9000;\n"
                                 "encoder = { limits = { batch = 16; }; };\n"
                                 "timeout_s = 10;\n" /* an integer for a double */
                                 "warmup = false;\n"
                                 "peers = [\"x\", \"y\", \"z\"];\n"
                                 "log = { level = \"debug\"; };\n"
                                 "name = \"enc-0\";\n");
    svc_t v = {0};
    char err[HIRED_ERR_LEN] = "";
    int rc = cfg_load(k_tab, N_TAB, path, &v, err);
    /* a group given twice is a libconfig syntax error ("duplicate setting name"), with its line */
    CHECK_EQ_INT(rc, HIRED_EFORMAT);
    CHECK(has(err, "good.cfg:3"));
    cfg_free(k_tab, N_TAB, &v);

    path = write_cfg("good.cfg",
                     "# a comment\n"
                     "broker = { frontend = \"tcp://127.0.0.1:7000\"; backend = \"ipc:///tmp/b\"; };\n"
                     "port = 9000;\n"
                     "encoder = { limits = { batch = 16; }; };\n"
                     "timeout_s = 10;\n"
                     "warmup = false;\n"
                     "peers = (\"x\", \"y\", \"z\");\n"
                     "log = { level = \"debug\"; };\n"
                     "name = \"enc-0\";\n");
    CHECK_EQ_INT(cfg_load(k_tab, N_TAB, path, &v, err), HIRED_OK);
    CHECK(!strcmp(v.frontend, "tcp://127.0.0.1:7000") && !strcmp(v.backend, "ipc:///tmp/b"));
    CHECK(v.port == 9000 && v.batch == 16 && v.timeout == 10.0 && !v.warmup);
    CHECK(v.peers.n == 3 && !strcmp(v.peers.items[2], "z"));
    CHECK_EQ_INT(v.level, 0);
    CHECK(!strcmp(v.name, "enc-0"));
    cfg_log(k_tab, N_TAB, &v);
    /* a partial file keeps the other defaults */
    path = write_cfg("partial.cfg", "port = 1;\npeers = [];\n");
    CHECK_EQ_INT(cfg_load(k_tab, N_TAB, path, &v, err), HIRED_OK);
    CHECK(v.port == 1 && v.batch == 8 && v.peers.n == 0 && !strcmp(v.frontend, "tcp://*:5555"));
    cfg_free(k_tab, N_TAB, &v);
}

static void test_precedence(void) {
    const char *path = write_cfg("prec.cfg", "port = 9000;\nbatch_unused_comment = 0;\n");
    (void)path;
    path = write_cfg("prec.cfg", "port = 9000;\ntimeout_s = 1.0;\n");
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    char *argv[] = {"svc", "-o", "port=9001", "-c", p, "--timeout_s=3.5", "--log.level=error", "-o",
                    "peers=tcp://a:1,tcp://b:2", "--name=with=equals", NULL};
    svc_t v = {0};
    char err[HIRED_ERR_LEN] = "";
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 10, argv, err), HIRED_OK);
    CHECK_EQ_INT(v.port, 9001);  /* command line beats file, whatever the order */
    CHECK(v.timeout == 3.5);
    CHECK_EQ_INT(v.level, 3);
    CHECK(v.peers.n == 2 && !strcmp(v.peers.items[1], "tcp://b:2"));
    CHECK(!strcmp(v.name, "with=equals"));
    CHECK_EQ_INT(v.batch, 8); /* default */
    /* --config=FILE form, and no file at all */
    char cfgeq[600];
    snprintf(cfgeq, sizeof cfgeq, "--config=%s", p);
    char *argv2[] = {"svc", cfgeq, NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 2, argv2, err), HIRED_OK);
    CHECK(v.port == 9000 && v.timeout == 1.0);
    char *argv3[] = {"svc", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 1, argv3, err), HIRED_OK);
    CHECK(v.port == 8080);
    /* argument errors */
    char *bad1[] = {"svc", "positional", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 2, bad1, err), HIRED_EINVAL);
    CHECK(has(err, "unknown argument 'positional'"));
    char *bad2[] = {"svc", "-c", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 2, bad2, err), HIRED_EINVAL);
    char *bad3[] = {"svc", "-c", p, "-c", p, NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 5, bad3, err), HIRED_EINVAL);
    char *bad4[] = {"svc", "--nope=1", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 2, bad4, err), HIRED_EINVAL);
    CHECK(has(err, "unknown key 'nope'"));
    char *bad5[] = {"svc", "-o", "port=0", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 3, bad5, err), HIRED_ERANGE);
    char *bad6[] = {"svc", "-o", NULL};
    CHECK_EQ_INT(cfg_args(k_tab, N_TAB, &v, 2, bad6, err), HIRED_EINVAL);
    cfg_free(k_tab, N_TAB, &v);
}

static void test_set(void) {
    svc_t v = {0};
    char err[HIRED_ERR_LEN];
    CHECK_EQ_INT(cfg_defaults(k_tab, N_TAB, &v, err), HIRED_OK);
    CHECK_EQ_INT(cfg_set(k_tab, N_TAB, &v, "port=0x10", err), HIRED_OK);
    CHECK_EQ_INT(v.port, 16);
    CHECK_EQ_INT(cfg_set(k_tab, N_TAB, &v, "warmup=off", err), HIRED_OK);
    CHECK(!v.warmup);
    CHECK_EQ_INT(cfg_set(k_tab, N_TAB, &v, "warmup=YES", err), HIRED_OK);
    CHECK(v.warmup);
    CHECK_EQ_INT(cfg_set(k_tab, N_TAB, &v, "peers=", err), HIRED_OK);
    CHECK_EQ_INT(v.peers.n, 0);
    CHECK_EQ_INT(cfg_set(k_tab, N_TAB, &v, "broker.backend=", err), HIRED_OK); /* no length bound */
    struct {
        const char *a;
        int code;
        const char *needle;
    } bad[] = {
        {"nope=1", HIRED_EINVAL, "unknown key 'nope'"},
        {"port", HIRED_EINVAL, "not key=value"},
        {"=5", HIRED_EINVAL, "not key=value"},
        {"broker=5", HIRED_EINVAL, "unknown key 'broker'"},
        {"port=abc", HIRED_EFORMAT, "'port' must be an integer in [1, 65535] (got 'abc')"},
        {"port=", HIRED_EFORMAT, "'port'"},
        {"port=12x", HIRED_EFORMAT, "'port'"},
        {"port=99999999999999999999", HIRED_EFORMAT, "'port'"},
        {"port=70000", HIRED_ERANGE, "'port' must be an integer in [1, 65535] (got 70000)"},
        {"port=-1", HIRED_ERANGE, "'port'"},
        {"timeout_s=fast", HIRED_EFORMAT, "'timeout_s' must be a number"},
        {"timeout_s=nan", HIRED_EFORMAT, "'timeout_s'"},
        {"timeout_s=1e9", HIRED_ERANGE, "'timeout_s' must be a number in [0, 3600]"},
        {"warmup=maybe", HIRED_EFORMAT, "'warmup' must be true or false"},
        {"log.level=loud", HIRED_EFORMAT, "'log.level' must be one of debug|info|warn|error (got 'loud')"},
        {"peers=a,,b", HIRED_EFORMAT, "'peers'"},
        {"peers=a,b,c,d,e", HIRED_ERANGE, "'peers' must be a list of 0 to 4"},
        {"broker.frontend=", HIRED_ERANGE, "'broker.frontend' must be a string of 1 to 256 characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cfg_set(k_tab, N_TAB, &v, bad[i].a, err);
        CHECK_MSG(rc == bad[i].code, "%s: got %d (%s)", bad[i].a, rc, err);
        CHECK(has(err, "command line"));
        CHECK(has(err, bad[i].needle));
    }
    /* failed overrides left the values alone */
    CHECK(v.port == 16 && v.timeout == 2.5 && v.warmup && v.level == 1 && v.peers.n == 0);
    CHECK(!strcmp(v.frontend, "tcp://*:5555"));
    cfg_free(k_tab, N_TAB, &v);
}

static void test_bad_files(void) {
    struct {
        const char *text;
        int code;
        const char *n1, *n2;
    } bad[] = {
        {"port = 80;\nx = 1;\n", HIRED_EFORMAT, "bad.cfg:2: unknown key 'x'", NULL},
        {"port = 80;\n\nbroker = { frontend = \"a\"; extra = 2; };\n", HIRED_EFORMAT, "bad.cfg:3: unknown key 'broker.extra'", NULL},
        {"other = { a = 1; };\n", HIRED_EFORMAT, "bad.cfg:1: unknown key 'other'", NULL},
        {"port = { a = 1; };\n", HIRED_EFORMAT, "'port' must be an integer", "a group"},
        {"broker = 5;\n", HIRED_EFORMAT, "unknown key 'broker'", NULL},
        {"port = \"80\";\n", HIRED_EFORMAT, "bad.cfg:1: 'port' must be an integer in [1, 65535] (got a string)", NULL},
        {"port = 8.5;\n", HIRED_EFORMAT, "'port' must be an integer", "a number"},
        {"port = 0;\n", HIRED_ERANGE, "bad.cfg:1: 'port' must be an integer in [1, 65535] (got 0)", NULL},
        {"port = 100000000000L;\n", HIRED_ERANGE, "'port'", "100000000000"},
        {"timeout_s = \"1\";\n", HIRED_EFORMAT, "'timeout_s' must be a number", NULL},
        {"timeout_s = -0.5;\n", HIRED_ERANGE, "'timeout_s' must be a number in [0, 3600] (got -0.5)", NULL},
        {"warmup = 1;\n", HIRED_EFORMAT, "'warmup' must be true or false (got an integer)", NULL},
        {"peers = \"a\";\n", HIRED_EFORMAT, "'peers'", "a string"},
        {"peers = [1, 2];\n", HIRED_EFORMAT, "'peers'", "non-string"},
        {"peers = (\"a\", 2);\n", HIRED_EFORMAT, "'peers'", "non-string"},
        {"peers = [\"\"];\n", HIRED_EFORMAT, "'peers'", "empty"},
        {"peers = [\"a\",\"b\",\"c\",\"d\",\"e\"];\n", HIRED_ERANGE, "'peers'", "5 items"},
        {"log = { level = \"trace\"; };\n", HIRED_EFORMAT, "'log.level' must be one of", "trace"},
        {"log = { level = 1; };\n", HIRED_EFORMAT, "'log.level'", NULL},
        {"port = 80;\nname = \"x\";\nwarmup = = true;\n", HIRED_EFORMAT, "bad.cfg:3", "syntax error"},
        {"port = 80;\n\n\nbroker = { frontend = ;\n", HIRED_EFORMAT, "bad.cfg:4:", "syntax error"},
        {"port = 80;\nport = 81;\n", HIRED_EFORMAT, "bad.cfg:2", NULL},
        {"port = 80;\n}\n", HIRED_EFORMAT, "bad.cfg:2", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_cfg("bad.cfg", bad[i].text);
        svc_t v = {0};
        char err[HIRED_ERR_LEN] = "";
        int rc = cfg_load(k_tab, N_TAB, path, &v, err);
        CHECK_MSG(rc == bad[i].code, "case %zu: got %d (%s)", i, rc, err);
        CHECK(has(err, bad[i].n1));
        if (bad[i].n2) CHECK(has(err, bad[i].n2));
        cfg_free(k_tab, N_TAB, &v);
    }
    svc_t v = {0};
    char err[HIRED_ERR_LEN];
    CHECK_EQ_INT(cfg_load(k_tab, N_TAB, "/nonexistent/hired.cfg", &v, err), HIRED_ENOTFOUND);
    CHECK(has(err, "/nonexistent/hired.cfg"));
    CHECK_EQ_INT(cfg_load(k_tab, N_TAB, g_dir, &v, err), HIRED_EIO); /* a directory */
    cfg_free(k_tab, N_TAB, &v);
}

static void test_bad_tables(void) {
    svc_t v = {0};
    char err[HIRED_ERR_LEN];
    cfg_entry_t dup[] = {
        {"a", CFG_INT, offsetof(svc_t, port), 0, 10, "1", NULL, ""},
        {"a", CFG_INT, offsetof(svc_t, batch), 0, 10, "1", NULL, ""},
    };
    CHECK_EQ_INT(cfg_defaults(dup, 2, &v, err), HIRED_EINVAL);
    CHECK(has(err, "'a' appears twice"));
    cfg_entry_t group[] = {
        {"a", CFG_INT, offsetof(svc_t, port), 0, 10, "1", NULL, ""},
        {"a.b", CFG_INT, offsetof(svc_t, batch), 0, 10, "1", NULL, ""},
    };
    CHECK_EQ_INT(cfg_defaults(group, 2, &v, err), HIRED_EINVAL);
    CHECK(has(err, "both a key and a group"));
    cfg_entry_t range[] = {{"a", CFG_INT, offsetof(svc_t, port), 0, 10, "11", NULL, ""}};
    CHECK_EQ_INT(cfg_defaults(range, 1, &v, err), HIRED_EINVAL);
    CHECK(has(err, "default") && has(err, "'a'"));
    cfg_entry_t nodef[] = {{"a", CFG_INT, offsetof(svc_t, port), 0, 10, NULL, NULL, ""}};
    CHECK_EQ_INT(cfg_defaults(nodef, 1, &v, err), HIRED_EINVAL);
    cfg_entry_t nochoice[] = {{"a", CFG_ENUM, offsetof(svc_t, level), 0, 0, "x", NULL, ""}};
    CHECK_EQ_INT(cfg_defaults(nochoice, 1, &v, err), HIRED_EINVAL);
    cfg_entry_t badkey[] = {{"a..b", CFG_INT, offsetof(svc_t, port), 0, 10, "1", NULL, ""}};
    CHECK_EQ_INT(cfg_defaults(badkey, 1, &v, err), HIRED_EINVAL);
    cfg_free(k_tab, N_TAB, &v);
}

static void test_help(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    cfg_help(k_tab, N_TAB, f);
    long n = ftell(f);
    CHECK(n > 200);
    rewind(f);
    char buf[4096] = "";
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    CHECK(strstr(buf, "encoder.limits.batch") && strstr(buf, "an integer in [1, 64]") && strstr(buf, "tiles per batch"));
    fclose(f);
}

/* extra hook of test_cli: takes --turn VALUE, refuses --turn bad, does not know anything else */
static int cli_extra(void *user, const char *key, const char *value, char *err) {
    if (strcmp(key, "turn")) return 0;
    if (!strcmp(value, "bad")) return hired_errf(err, HIRED_EINVAL, "--turn: bad turn");
    (*(int *)user)++;
    return 1;
}

/* A command's options (cfg_cli): --key VALUE and --key=VALUE, bare bools, repeated lists that
 * replace their default, positional arguments, the extra hook, help, and each refusal by name. */
static void test_cli(void) {
    char err[HIRED_ERR_LEN];
    svc_t v = {0};
    const char *pos[2];
    int n_pos = 0, turns = 0;
    char *a1[] = {"--port", "99", "q1", "--warmup", "--peers", "x", "--timeout_s=7.5", "--peers=y", "--turn", "t",
                  "q2", "--log.level", "warn"};
    CHECK_EQ_INT(cfg_cli(k_tab, N_TAB, &v, 13, a1, "", pos, 2, &n_pos, cli_extra, &turns, err), HIRED_OK);
    CHECK(v.port == 99 && v.timeout == 7.5 && v.warmup && v.level == 2 && turns == 1);
    CHECK(v.peers.n == 2 && !strcmp(v.peers.items[0], "x") && !strcmp(v.peers.items[1], "y"));
    CHECK(n_pos == 2 && !strcmp(pos[0], "q1") && !strcmp(pos[1], "q2"));
    CHECK(!strcmp(v.frontend, "tcp://*:5555")); /* untouched keys keep their defaults */
    cfg_free(k_tab, N_TAB, &v);

    /* a bool takes no value from the next argument: "q" is positional */
    char *a2[] = {"--warmup", "q"};
    CHECK_EQ_INT(cfg_cli(k_tab, N_TAB, &v, 2, a2, "", pos, 1, &n_pos, NULL, NULL, err), HIRED_OK);
    CHECK(v.warmup && n_pos == 1 && !strcmp(pos[0], "q"));
    cfg_free(k_tab, N_TAB, &v);
    char *a2b[] = {"--warmup=false"};
    CHECK_EQ_INT(cfg_cli(k_tab, N_TAB, &v, 1, a2b, "", NULL, 0, NULL, NULL, NULL, err), HIRED_OK);
    CHECK(!v.warmup);
    cfg_free(k_tab, N_TAB, &v);

    struct {
        int argc;
        char *argv[4];
        const char *msg;
    } bad[] = {
        {2, {"--port", "70000"}, "--port"},
        {1, {"--port"}, "--port needs a value"},
        {2, {"--colour", "red"}, "unknown option '--colour'"},
        {2, {"--turn", "bad"}, "bad turn"},
        {2, {"a", "b"}, "at most 1 argument"},
        {4, {"--peers", "1", "--peers", "2"}, NULL}, /* fine: 2 items */
        {2, {"--peers", ""}, "--peers"},
        {2, {"--log.level", "loud"}, "--log.level"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int t = 0;
        err[0] = 0;
        int rc = cfg_cli(k_tab, N_TAB, &v, bad[i].argc, bad[i].argv, "", pos, 1, &n_pos, cli_extra, &t, err);
        CHECK_MSG(bad[i].msg ? rc < 0 : rc == HIRED_OK, "case %zu: rc %d (%s)", i, rc, err);
        if (bad[i].msg) CHECK(has(err, bad[i].msg));
        cfg_free(k_tab, N_TAB, &v);
    }
    /* more list items than the table allows (max 4) */
    char *a3[] = {"--peers", "1", "--peers", "2", "--peers", "3", "--peers", "4", "--peers", "5"};
    CHECK_EQ_INT(cfg_cli(k_tab, N_TAB, &v, 10, a3, "", NULL, 0, NULL, NULL, NULL, err), HIRED_ERANGE);
    CHECK(has(err, "--peers"));
    cfg_free(k_tab, N_TAB, &v);

    /* help: the usage text then every option with its default, to stdout; 1 */
    fflush(stdout);
    int saved = dup(1);
    FILE *f = tmpfile();
    CHECK(f != NULL && saved >= 0);
    if (!f || saved < 0) return;
    dup2(fileno(f), 1);
    char *a4[] = {"--port", "5", "--help"};
    int rc = cfg_cli(k_tab, N_TAB, &v, 3, a4, "usage: svc [options]\n", NULL, 0, NULL, NULL, NULL, err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_EQ_INT(rc, 1);
    cfg_free(k_tab, N_TAB, &v);
    rewind(f);
    char buf[4096] = "";
    buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
    fclose(f);
    CHECK(has(buf, "usage: svc [options]") && has(buf, "--encoder.limits.batch") && has(buf, "default 8") &&
          has(buf, "(repeat the option)") && has(buf, "tiles per batch"));
}

static void test_alloc_sweep(void) {
    const char *path = write_cfg("sweep.cfg",
                                 "broker = { frontend = \"tcp://127.0.0.1:7000\"; backend = \"ipc:///tmp/b\"; };\n"
                                 "peers = (\"x\", \"y\", \"z\");\nname = \"enc-0\";\n");
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    char *argv[] = {"svc", "-c", p, "-o", "peers=q,r", "--name=n2", NULL};
    int bad = 0;
    long i;
    for (i = 0; i < 10000; i++) {
        svc_t v = {0};
        char err[HIRED_ERR_LEN];
        mem_fail_after(i, false);
        int rc = cfg_args(k_tab, N_TAB, &v, 6, argv, err);
        mem_fail_after(-1, false);
        if (rc == HIRED_OK) {
            CHECK(v.peers.n == 2 && !strcmp(v.name, "n2") && !strcmp(v.backend, "ipc:///tmp/b"));
            cfg_free(k_tab, N_TAB, &v);
            break;
        }
        if (rc != HIRED_ENOMEM) {
            bad++;
            fprintf(stderr, "  sweep step %ld: rc %d (%s)\n", i, rc, err);
        }
        cfg_free(k_tab, N_TAB, &v);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(i > 10 && i < 10000);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/hired_test_cfg.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_file();
    test_precedence();
    test_set();
    test_bad_files();
    test_bad_tables();
    test_help();
    test_cli();
    test_alloc_sweep();
    const char *names[] = {"good.cfg", "partial.cfg", "prec.cfg", "bad.cfg", "sweep.cfg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    rmdir(g_dir);
    return test_summary();
}
