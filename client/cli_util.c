/* cli_util.c — helpers shared by the `hired` subcommands (see cli.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "mem.h"

static int parse_double(const char *arg, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = val ? strtod(val, &end) : 0;
    if (!val || errno || end == val || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "hired: %s needs a number in [%g, %g], got '%s'\n", arg, lo, hi, val ? val : "");
        return -1;
    }
    *out = d;
    return 2;
}

int cli_parse_selection(sel_opts_t *o, const char *arg, const char *val) {
    if (!strcmp(arg, "--strategy")) {
        if (!val || sel_strategy_parse(val, &o->strategy)) {
            fprintf(stderr, "hired: unknown strategy '%s' (none, hired, spatial, prumerge, prumerge+)\n",
                    val ? val : "");
            return -1;
        }
        return 2;
    }
    if (!strcmp(arg, "--split")) {
        if (!val || sel_split_parse(val, &o->split)) {
            fprintf(stderr, "hired: unknown split '%s' (reference, paper)\n", val ? val : "");
            return -1;
        }
        return 2;
    }
    if (!strcmp(arg, "--budget")) return parse_double(arg, val, 1e-9, 1, &o->budget);
    if (!strcmp(arg, "--alpha")) return parse_double(arg, val, 0, 1, &o->alpha);
    if (!strcmp(arg, "--spatial")) return parse_double(arg, val, 0, 1, &o->spatial);
    return 0;
}

int cli_preprocess(const hf_config_t *cfg, const char *model_dir, const image_t *img, prep_out_t *out, char *err) {
    hf_preproc_t pp;
    int rc = hf_preproc_load(model_dir, &pp, err);
    if (rc) return rc;
    return prep_for_model(img, cfg, &pp, out, err);
}
