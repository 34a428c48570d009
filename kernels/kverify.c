/* kverify.c — output comparators and deterministic test data (see kverify.h). */
#include "kverify.h"

#include <math.h>
#include <stdio.h>

/* Non-finite values must agree exactly in kind (NaN with NaN, +inf with +inf). */
static bool nonfinite_match(float g, float r) {
    if (isnan(r) || isnan(g)) return isnan(r) && isnan(g);
    if (isinf(r) || isinf(g)) return g == r;
    return true;
}

kverify_result kverify_close(const float *got, const float *ref, size_t n, double atol, double rtol) {
    kverify_result r = {true, 0, 0, 0.0, 0.0};
    double worst_excess = -INFINITY, num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        float g = got[i], f = ref[i];
        if (!isfinite(g) || !isfinite(f)) {
            if (!nonfinite_match(g, f)) {
                r.n_bad++;
                if (worst_excess < INFINITY) r.worst = i;
                worst_excess = INFINITY;
            }
            continue;
        }
        double diff = fabs((double)g - (double)f);
        double excess = diff - (atol + rtol * fabs((double)f));
        if (excess > 0) r.n_bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            r.worst = i;
        }
        if (diff > r.max_abs) r.max_abs = diff;
        num += diff * diff;
        den += (double)f * f;
    }
    r.nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    r.ok = r.n_bad == 0;
    return r;
}

kverify_result kverify_nmse(const float *got, const float *ref, size_t n, double max_nmse) {
    kverify_result r = {true, 0, 0, 0.0, 0.0};
    double num = 0.0, den = 0.0, worst = -1.0;
    for (size_t i = 0; i < n; i++) {
        float g = got[i], f = ref[i];
        if (!isfinite(g) || !isfinite(f)) {
            if (!nonfinite_match(g, f)) {
                r.n_bad++;
                r.worst = i;
                worst = INFINITY;
            }
            continue;
        }
        double diff = fabs((double)g - (double)f);
        if (diff > worst) {
            worst = diff;
            r.worst = i;
        }
        if (diff > r.max_abs) r.max_abs = diff;
        num += diff * diff;
        den += (double)f * f;
    }
    r.nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
    r.ok = r.n_bad == 0 && r.nmse <= max_nmse;
    return r;
}

bool kverify_report(const char *name, const kverify_result *r, const float *got, const float *ref) {
    if (r->ok) return true;
    fprintf(stderr, "%s: %zu bad, nmse %.3g, max |diff| %.3g, worst [%zu] got %.9g ref %.9g\n", name, r->n_bad, r->nmse,
            r->max_abs, r->worst, got ? (double)got[r->worst] : 0.0, ref ? (double)ref[r->worst] : 0.0);
    return false;
}

void kverify_fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    if (s == 0) s = 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) * 0x1p-53; /* [0, 1) */
        x[i] = (float)(lo + (hi - lo) * u);
    }
}
