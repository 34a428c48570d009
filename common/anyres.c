/* anyres.c — LLaVA-NeXT's anyres geometry (see anyres.h): transformers' select_best_resolution
 * and get_patch_output_size with its IEEE double arithmetic (Python int / int true division,
 * int() truncation, math.ceil). */
#include "anyres.h"

#include <math.h>
#include <stdbool.h>

void anyres_best_resolution(int h, int w, const int (*pinpoints)[2], int n_pinpoints, int *best_h, int *best_w) {
    long long best_eff = 0, best_wasted = 0;
    bool have = false; /* best_wasted is +inf until the first candidate is kept */
    *best_h = *best_w = 0;
    for (int i = 0; i < n_pinpoints; i++) {
        int ph = pinpoints[i][0], pw = pinpoints[i][1];
        double sw = (double)pw / (double)w, sh = (double)ph / (double)h;
        double scale = sh < sw ? sh : sw; /* Python min(sw, sh): first argument on ties */
        long long dw = (long long)((double)w * scale), dh = (long long)((double)h * scale);
        long long eff = dw * dh, orig = (long long)w * h;
        if (orig < eff) eff = orig;
        long long wasted = (long long)ph * pw - eff;
        if (eff > best_eff || (eff == best_eff && (!have || wasted < best_wasted))) {
            best_eff = eff;
            best_wasted = wasted;
            have = true;
            *best_h = ph;
            *best_w = pw;
        }
    }
}

void anyres_patch_output_size(int h, int w, int th, int tw, int *new_h, int *new_w) {
    double sw = (double)tw / (double)w, sh = (double)th / (double)h;
    if (sw < sh) {
        double c = ceil((double)h * sw);
        *new_w = tw;
        *new_h = c < th ? (int)c : th;
    } else {
        double c = ceil((double)w * sh);
        *new_h = th;
        *new_w = c < tw ? (int)c : tw;
    }
}
