/* cli_util.c — what the `hired` subcommands share (see cli.h): reading their options from their
 * cfg tables, the selection options run and show-selection both take, and preprocessing as the
 * model does. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "mem.h"
#include "err.h"

/* The string option key of t's values, or NULL when t has no such string key. */
static const char *string_opt(const cli_cmd_t *cmd, const void *values, const char *key) {
    for (int i = 0; i < cmd->n; i++)
        if (cmd->t[i].type == CFG_STRING && !strcmp(cmd->t[i].key, key))
            return *(char *const *)((const char *)values + cmd->t[i].offset);
    return NULL;
}

/* The most options one subcommand has, its group's included. */
#define CLI_MAX_OPTS 48

int cli_command(const cli_cmd_t *cmd_in, void *values, int argc, char **argv) {
    cfg_entry_t t[CLI_MAX_OPTS];
    cli_cmd_t c = *cmd_in, *cmd = &c;
    if (c.group) {
        if (c.n + c.group_n > CLI_MAX_OPTS) {
            fprintf(stderr, "%s: too many options (%d)\n", c.prog, c.n + c.group_n);
            return 2;
        }
        memcpy(t, c.t, (size_t)c.n * sizeof *t);
        c.group(c.group_base, t + c.n);
        c.t = t;
        c.n += c.group_n;
    }
    char err[HIRED_ERR_LEN];
    const char *pos[4];
    int n_pos = 0, max_pos = cmd->max_pos < (int)ARRAY_LEN(pos) ? cmd->max_pos : (int)ARRAY_LEN(pos);
    int rc = cfg_cli(cmd->t, cmd->n, values, argc, argv, cmd->usage, pos, max_pos, &n_pos, cmd->extra, cmd->user, err);
    if (rc < 0) fprintf(stderr, "%s: %s (%s --help lists the options)\n", cmd->prog, err, cmd->prog);
    int missing = 0;
    char list[256] = "";
    for (int i = 0; !rc && i < (int)ARRAY_LEN(cmd->required) && cmd->required[i]; i++) {
        const char *v = string_opt(cmd, values, cmd->required[i]);
        if (v && v[0]) continue;
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s--%s", missing++ ? " and " : "", cmd->required[i]);
    }
    if (missing) fprintf(stderr, "%s: %s %s required\n", cmd->prog, list, missing > 1 ? "are" : "is");
    int status = rc == 1 ? 0 : rc || missing ? 2 : cmd->body(cmd, values, pos, n_pos);
    cfg_free(cmd->t, cmd->n, values);
    return status;
}

#define O(f) (base + offsetof(cli_sel_t, f))
void cli_sel_entries(size_t base, cfg_entry_t *out) {
    const cfg_entry_t e[CLI_SEL_N] = {
        {"strategy", CFG_ENUM, O(strategy), 0, 0, "hired", "none|hired|spatial|prumerge|prumerge+",
         "token selection (docs/selection.md)"},
        {"budget", CFG_DOUBLE, O(budget), 1e-9, 1, "0.2", NULL, "share of the visual tokens kept (hired, spatial)"},
        {"alpha", CFG_DOUBLE, O(alpha), 0, 1, "0.5", NULL, "HiRED: the base image's share of the budget"},
        {"split", CFG_ENUM, O(split), 0, 0, "reference", "reference|paper",
         "HiRED sub-image budget split: the authors' code, or the paper's spatial attention mass"},
        {"spatial", CFG_DOUBLE, O(spatial), 0, 1, "0", NULL, "strided tokens added to hired, share of a partition"},
    };
#undef O
    memcpy(out, e, sizeof e);
}

sel_opts_t cli_sel_opts(const cli_sel_t *s) {
    /* the enums' choices are listed in sel_strategy_t / sel_split_t order */
    return (sel_opts_t){.strategy = (sel_strategy_t)s->strategy, .budget = s->budget, .alpha = s->alpha,
                        .split = (sel_split_t)s->split, .spatial = s->spatial};
}

int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err) {
    hf_preproc_t pp;
    int rc = hf_preproc_load(model_dir, &pp, err);
    if (rc) return rc;
    return prep_for_model(img, cfg, &pp, out, err);
}

int cli_dev_open(cli_dev_t *d, const char *device, char *err) {
    *d = (cli_dev_t){0};
    if (!(d->dev = k_device_open(device, err))) return HIRED_EUNSUPPORTED;
    if (!(d->ctx = k_ctx_new(d->dev, err))) return HIRED_ENOMEM;
    return HIRED_OK;
}

void cli_dev_close(cli_dev_t *d) {
    k_ctx_destroy(&d->ctx);
    k_device_close(&d->dev);
}

int cli_enc_open(cli_enc_t *e, const char *model_dir, const char *image, const char *device, char *err) {
    *e = (cli_enc_t){0};
    double t0 = clock_ms();
    int rc = cli_dev_open(&e->d, device, err);
    if (!rc && !(e->m = enc_model_load(model_dir, e->d.dev, err))) rc = HIRED_ENOTFOUND;
    e->ms_load = clock_ms() - t0;
    if (!rc) rc = file_read(image, CLI_MAX_FILE, &e->bytes, &e->n, err);
    return rc;
}

void cli_enc_close(cli_enc_t *e) {
    mem_free(e->bytes);
    e->bytes = NULL;
    enc_model_destroy(&e->m);
    cli_dev_close(&e->d);
}
