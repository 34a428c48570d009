/* test_image.c — image_decode / image_load_file on synthetic and Pillow-made files.
 *
 * Pins: exact pixels for PNG (RGB, gray replicated, RGBA and gray+alpha with alpha dropped,
 * palette, palette+tRNS, 16-bit high byte), BMP and JPEG; equality with Pillow's
 * convert("RGB") for every "decode" case of tests/fixtures/resize/index.txt (libjpeg-turbo
 * 4:2:0/4:2:2/4:4:4/progressive/gray JPEGs, PNG variants, GIF, BMP); every prefix of a JPEG, a
 * PNG, a GIF and a BMP is an error (never a crash, never a partial image); zero bytes,
 * random bytes and a made-up format are HIRED_EFORMAT; WebP/TIFF are HIRED_EUNSUPPORTED; CMYK
 * and YCCK JPEGs (tests/fixtures/cmyk, Pillow-written CMYK at two qualities, a libjpeg YCCK)
 * decode to exactly Pillow's convert("RGB"), and synthetic ones to Pillow's CMYK -> RGB
 * arithmetic on flat colours; headers claiming huge images (PNG IHDR 100000x100000, JPEG SOF0
 * 60000x60000 and 65535x65535) are HIRED_ERANGE before any pixel allocation (no mem_alloc
 * at all happens: counted through mem.h); max_pixels is inclusive; allocation failures give
 * HIRED_ENOMEM with an empty image; file errors name the path. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <stb/stb_image_write.h>

#include "err.h"
#include "image.h"
#include "mem.h"
#include "test.h"

// ---- byte buffers and encoders ------------------------------------------------------------------

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void buf_be32(buf_t *b, uint32_t v) {
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, q, 4);
}

static void stb_sink(void *ctx, void *data, int size) { buf_put(ctx, data, (size_t)size); }

static uint32_t crc32_update(uint32_t c, const uint8_t *d, size_t n) {
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= d[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void png_chunk(buf_t *b, const char *type, const uint8_t *data, size_t n) {
    buf_be32(b, (uint32_t)n);
    size_t at = b->n;
    buf_put(b, type, 4);
    if (n) buf_put(b, data, n);
    buf_be32(b, crc32_update(0, b->p + at, n + 4));
}

/* A PNG with the given IHDR and raw scanlines (each starting with filter byte 0), zlib
 * "stored" blocks (no compression), optional PLTE/tRNS. */
static void png_build(buf_t *b, uint32_t w, uint32_t h, int depth, int ctype, const uint8_t *raw, size_t raw_n,
                      const uint8_t *plte, size_t plte_n, const uint8_t *trns, size_t trns_n) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    buf_put(b, sig, 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth,     (uint8_t)ctype,     0,                 0,
                        0};
    png_chunk(b, "IHDR", ihdr, 13);
    if (plte_n) png_chunk(b, "PLTE", plte, plte_n);
    if (trns_n) png_chunk(b, "tRNS", trns, trns_n);
    buf_t z = {0};
    uint8_t zh[2] = {0x78, 0x01};
    buf_put(&z, zh, 2);
    size_t off = 0;
    do {
        size_t len = raw_n - off > 65535 ? 65535 : raw_n - off;
        uint8_t bh[5] = {(uint8_t)(off + len == raw_n), (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)~len,
                         (uint8_t)(~len >> 8)};
        buf_put(&z, bh, 5);
        if (len) buf_put(&z, raw + off, len);
        off += len;
    } while (off < raw_n);
    uint32_t a = 1, s2 = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521;
        s2 = (s2 + a) % 65521;
    }
    uint8_t ad[4] = {(uint8_t)(s2 >> 8), (uint8_t)s2, (uint8_t)(a >> 8), (uint8_t)a};
    buf_put(&z, ad, 4);
    png_chunk(b, "IDAT", z.p, z.n);
    free(z.p);
    png_chunk(b, "IEND", NULL, 0);
}

/* JPEG via libjpeg's compressor: comps 1 (gray), 3 (RGB, 4:2:0 unless s444) or 4 (CMYK;
 * ycck stores it as YCCK). pixels [h, w, comps]. */
static void jpeg_build(buf_t *b, int w, int h, int comps, const uint8_t *pixels, int quality, int s444, int ycck) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mem_n = 0;
    jpeg_mem_dest(&c, &mem, &mem_n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    if (ycck) jpeg_set_colorspace(&c, JCS_YCCK);
    jpeg_set_quality(&c, quality, TRUE);
    if (s444) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)c.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    buf_put(b, mem, mem_n);
    free(mem);
}

static void fill_smooth(uint8_t *p, int w, int h, int comps) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++) p[((size_t)y * w + x) * comps + c] = (uint8_t)(x * 180 / w + y * 60 / h + c * 5);
}

// ---- helpers ------------------------------------------------------------------------------------

static int decode(const buf_t *b, size_t n, image_t *img, char *err) {
    err[0] = 0;
    int rc = image_decode(b->p, n, 0, img, err);
    if (rc) {
        CHECK_MSG(img->rgb == NULL && img->w == 0 && img->h == 0, "failed decode left an image");
        CHECK_MSG(err[0] != 0, "error %d without a message", rc);
    }
    return rc;
}

static int pixel_eq(const image_t *img, int x, int y, int r, int g, int b) {
    const uint8_t *p = img->rgb + ((size_t)y * img->w + x) * 3;
    return p[0] == r && p[1] == g && p[2] == b;
}

// ---- PNG and BMP --------------------------------------------------------------------------------

static void test_png_variants(void) {
    enum { W = 7, H = 5 };
    uint8_t rgba[W * H * 4];
    fill_smooth(rgba, W, H, 4);
    char err[HIRED_ERR_LEN];
    for (int comps = 1; comps <= 4; comps++) { /* gray, gray+alpha, RGB, RGBA via stb_image_write */
        uint8_t px[W * H * 4];
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < comps; c++) px[i * comps + c] = rgba[i * 4 + c];
        buf_t b = {0};
        CHECK(stbi_write_png_to_func(stb_sink, &b, W, H, comps, px, W * comps));
        image_t img = {0};
        CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
        CHECK(img.w == W && img.h == H);
        int bad = 0;
        for (int y = 0; y < H && img.rgb; y++)
            for (int x = 0; x < W; x++) {
                const uint8_t *s = px + ((size_t)y * W + x) * comps;
                bad += comps < 3 ? !pixel_eq(&img, x, y, s[0], s[0], s[0]) : !pixel_eq(&img, x, y, s[0], s[1], s[2]);
            }
        CHECK_MSG(bad == 0, "%d wrong pixels for %d-channel PNG", bad, comps);
        image_free(&img);
        free(b.p);
    }
    /* palette with tRNS: colours looked up, alpha dropped (as PIL's P -> RGB) */
    const uint8_t plte[9] = {10, 20, 30, 200, 100, 0, 1, 2, 3}, trns[3] = {0, 128, 255};
    const uint8_t raw[2 * 4] = {0, 0, 1, 2, 0, 2, 1, 0}; /* 2 rows: filter byte + 3 indices */
    buf_t b = {0};
    png_build(&b, 3, 2, 8, 3, raw, sizeof raw, plte, 9, trns, 3);
    image_t img = {0};
    CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
    CHECK(img.rgb && pixel_eq(&img, 0, 0, 10, 20, 30) && pixel_eq(&img, 1, 0, 200, 100, 0) &&
          pixel_eq(&img, 2, 0, 1, 2, 3) && pixel_eq(&img, 0, 1, 1, 2, 3) && pixel_eq(&img, 2, 1, 10, 20, 30));
    image_free(&img);
    free(b.p);
    /* 16-bit RGB: the high byte of each sample (as PIL's RGB;16B unpacking) */
    const uint8_t raw16[1 + 6 * 2] = {0, 0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF, 0x00, 0xFF, 0x80, 0x00, 0x7F, 0xFF};
    b = (buf_t){0};
    png_build(&b, 2, 1, 16, 2, raw16, sizeof raw16, NULL, 0, NULL, 0);
    CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
    CHECK(img.rgb && pixel_eq(&img, 0, 0, 0x12, 0xAB, 0xFF) && pixel_eq(&img, 1, 0, 0x00, 0x80, 0x7F));
    image_free(&img);
    free(b.p);
}

static void test_bmp(void) {
    enum { W = 5, H = 3 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    buf_t b = {0};
    CHECK(stbi_write_bmp_to_func(stb_sink, &b, W, H, 3, px));
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
    CHECK(img.w == W && img.h == H && img.rgb && memcmp(img.rgb, px, sizeof px) == 0);
    image_free(&img);
    /* the same image top-down: a negative height and the rows stored first to last (Pillow
     * reads it; the header's height must be taken as its magnitude) */
    uint32_t off = (uint32_t)b.p[10] | (uint32_t)b.p[11] << 8 | (uint32_t)b.p[12] << 16 | (uint32_t)b.p[13] << 24;
    size_t stride = (W * 3 + 3) / 4 * 4;
    CHECK(off + stride * H <= b.n);
    int32_t neg = -H;
    memcpy(b.p + 22, &neg, 4); /* little-endian host */
    uint8_t rows[H][(W * 3 + 3) / 4 * 4];
    memcpy(rows, b.p + off, sizeof rows);
    for (int y = 0; y < H; y++) memcpy(b.p + off + (size_t)y * stride, rows[H - 1 - y], stride);
    CHECK_MSG(decode(&b, b.n, &img, err) == 0, "top-down BMP: %s", err);
    CHECK(img.w == W && img.h == H && img.rgb && memcmp(img.rgb, px, sizeof px) == 0);
    image_free(&img);
    free(b.p);
}

// ---- JPEG ---------------------------------------------------------------------------------------

static void test_jpeg_basic(void) {
    enum { W = 32, H = 24 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    char err[HIRED_ERR_LEN];
    for (int s444 = 0; s444 <= 1; s444++) {
        buf_t b = {0};
        jpeg_build(&b, W, H, 3, px, 95, s444, 0);
        image_t img = {0};
        CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
        CHECK(img.w == W && img.h == H);
        int maxd = 0;
        for (size_t i = 0; img.rgb && i < sizeof px; i++) {
            int d = abs((int)img.rgb[i] - (int)px[i]);
            if (d > maxd) maxd = d;
        }
        CHECK_MSG(img.rgb && maxd <= 12, "JPEG round trip max |diff| %d", maxd);
        image_free(&img);
        free(b.p);
    }
    /* grayscale JPEG: one channel replicated */
    uint8_t g[W * H];
    fill_smooth(g, W, H, 1);
    buf_t b = {0};
    jpeg_build(&b, W, H, 1, g, 90, 0, 0);
    image_t img = {0};
    CHECK_EQ_INT(decode(&b, b.n, &img, err), 0);
    int bad = 0;
    for (int i = 0; img.rgb && i < W * H; i++) bad += img.rgb[3 * i] != img.rgb[3 * i + 1] || img.rgb[3 * i] != img.rgb[3 * i + 2];
    CHECK(img.rgb && bad == 0);
    image_free(&img);
    free(b.p);
}

/* Flat CMYK / YCCK JPEGs: every pixel decodes to Pillow's conversion of the (inverted) samples.
 * A flat 8x8-aligned image has only DC coefficients, so the decoded samples are the written ones
 * up to the quantiser; checked as "all pixels equal one value consistent with Pillow's formula
 * for some sample within 2 of the written one". */
static void test_jpeg_cmyk(void) {
    enum { W = 16, H = 8 };
    char err[HIRED_ERR_LEN];
    static const uint8_t colours[][4] = {{0, 0, 0, 0}, {255, 255, 255, 255}, {200, 30, 90, 128}, {10, 250, 0, 40}};
    for (int ycck = 0; ycck <= 1; ycck++)
        for (size_t ci = 0; ci < ARRAY_LEN(colours); ci++) {
            uint8_t px[W * H * 4];
            for (int i = 0; i < W * H; i++) memcpy(px + 4 * i, colours[ci], 4);
            buf_t b = {0};
            jpeg_build(&b, W, H, 4, px, 100, 0, ycck);
            image_t img = {0};
            CHECK_MSG(decode(&b, b.n, &img, err) == 0, "%s colour %zu: %s", ycck ? "YCCK" : "CMYK", ci, err);
            bool flat = img.rgb != NULL;
            for (int i = 1; flat && i < W * H; i++) flat = !memcmp(img.rgb, img.rgb + 3 * i, 3);
            CHECK_MSG(flat, "%s colour %zu: not flat", ycck ? "YCCK" : "CMYK", ci);
            /* Pillow: x' = 255 - x (every sample), nk = 255 - k', out = nk - round(x' * nk / 255) */
            for (int c = 0; flat && c < 3; c++) {
                bool ok = false;
                for (int dx = -2; dx <= 2 && !ok; dx++)
                    for (int dk = -2; dk <= 2 && !ok; dk++) {
                        int x = colours[ci][c] + dx, k = colours[ci][3] + dk;
                        if (x < 0 || x > 255 || k < 0 || k > 255) continue;
                        int nk = k, t = (255 - x) * nk + 128, v = nk - ((t + (t >> 8)) >> 8);
                        ok = img.rgb[c] == v;
                    }
                CHECK_MSG(ok, "%s colour %zu channel %d: %d is not Pillow's value", ycck ? "YCCK" : "CMYK", ci, c,
                          img.rgb[c]);
            }
            image_free(&img);
            free(b.p);
        }
}

// ---- Pillow conformance -------------------------------------------------------------------------

/* Every "decode FILE REF" line of DIR/index.txt: FILE decodes to exactly REF (Pillow's RGB). */
static void test_pillow_decodes(const char *dir, int min_cases) {
    char ip[256];
    snprintf(ip, sizeof ip, "%s/index.txt", dir);
    FILE *f = fopen(test_fixture(ip), "r");
    CHECK_MSG(f != NULL, "no %s under HIRED_FIXTURES", ip);
    if (!f) return;
    char line[1024];
    int n_cases = 0;
    while (fgets(line, sizeof line, f)) {
        char file[256], ref[256], p[600];
        if (sscanf(line, "decode %255s %255s", file, ref) != 2) continue;
        char err[HIRED_ERR_LEN];
        image_t got = {0}, want = {0};
        snprintf(p, sizeof p, "%s/%s", dir, file);
        int rc = image_load_file(test_fixture(p), 0, &got, err);
        CHECK_MSG(rc == 0, "%s", err);
        snprintf(p, sizeof p, "%s/%s", dir, ref);
        int rc2 = image_load_file(test_fixture(p), 0, &want, err);
        CHECK_MSG(rc2 == 0, "%s", err);
        if (rc == 0 && rc2 == 0) {
            CHECK_MSG(got.w == want.w && got.h == want.h, "%s: %dx%d vs Pillow %dx%d", file, got.w, got.h, want.w, want.h);
            long nd = 0, maxd = 0;
            for (size_t i = 0; got.w == want.w && got.h == want.h && i < (size_t)got.w * got.h * 3; i++) {
                long d = labs((long)got.rgb[i] - (long)want.rgb[i]);
                nd += d != 0;
                if (d > maxd) maxd = d;
            }
            CHECK_MSG(nd == 0, "%s: %ld of %d samples differ from Pillow (max |diff| %ld)", file, nd, got.w * got.h * 3,
                      maxd);
        }
        image_free(&got);
        image_free(&want);
        n_cases++;
    }
    fclose(f);
    CHECK_MSG(n_cases >= min_cases, "%s: only %d decode cases", dir, n_cases);
    printf("%s: %d files decode exactly as Pillow\n", dir, n_cases);
}

// ---- malformed input ----------------------------------------------------------------------------

/* Every prefix shorter than `upto` must fail with HIRED_EFORMAT. Each prefix is an exact-size
 * heap copy, so ASan flags over-reads in our code (libjpeg and libstb are not instrumented). */
static void check_prefixes(const buf_t *b, size_t upto, const char *what) {
    char err[HIRED_ERR_LEN];
    int bad = 0;
    for (size_t n = 0; n < upto; n++) {
        image_t img = {0};
        uint8_t *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees reads past the end */
        memcpy(copy, b->p, n);
        buf_t c = {copy, n, n};
        int rc = decode(&c, n, &img, err);
        if (rc != HIRED_EFORMAT) {
            if (bad++ == 0) fprintf(stderr, "%s prefix %zu/%zu: rc %d (%s)\n", what, n, b->n, rc, err);
        }
        image_free(&img);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%s: %d prefixes did not give HIRED_EFORMAT", what, bad);
}

static void test_truncated(void) {
    enum { W = 19, H = 11 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    buf_t j = {0}, p = {0}, bm = {0};
    jpeg_build(&j, W, H, 3, px, 80, 0, 0);
    check_prefixes(&j, j.n, "JPEG");
    CHECK(stbi_write_png_to_func(stb_sink, &p, W, H, 3, px, W * 3));
    check_prefixes(&p, p.n, "PNG");
    CHECK(stbi_write_bmp_to_func(stb_sink, &bm, W, H, 3, px));
    check_prefixes(&bm, bm.n, "BMP");
    FILE *f = fopen(test_fixture("resize/d12_37x23_P.gif"), "rb");
    CHECK(f != NULL);
    if (f) {
        buf_t g = {0};
        uint8_t tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_put(&g, tmp, n);
        fclose(f);
        /* Only the first frame is decoded: a GIF lacking just its trailer byte is accepted. */
        CHECK(g.n > 0 && g.p[g.n - 1] == 0x3B);
        check_prefixes(&g, g.n - 1, "GIF");
        image_t img = {0};
        char err[HIRED_ERR_LEN];
        CHECK_EQ_INT(image_decode(g.p, g.n - 1, 0, &img, err), 0);
        image_free(&img);
        free(g.p);
    }
    free(j.p);
    free(p.p);
    free(bm.p);
}

static void test_garbage(void) {
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    CHECK_EQ_INT(image_decode((const uint8_t *)"", 0, 0, &img, err), HIRED_EFORMAT);
    CHECK(strstr(err, "empty") != NULL);
    CHECK_EQ_INT(image_decode(NULL, 5, 0, &img, err), HIRED_EINVAL);
    /* random bytes, and random bytes behind each real signature */
    uint32_t seed = 12345;
    const char *prefixes[] = {"", "\xFF\xD8\xFF", "\x89PNG\r\n\x1a\n", "GIF89a", "BM"};
    for (size_t pi = 0; pi < ARRAY_LEN(prefixes); pi++)
        for (int t = 0; t < 200; t++) {
            size_t plen = strlen(prefixes[pi]), n = plen + 1 + t * 7 % 300;
            uint8_t *d = malloc(n);
            memcpy(d, prefixes[pi], plen);
            for (size_t i = plen; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                d[i] = (uint8_t)(seed >> 24);
            }
            if (pi == 0 && (d[0] == 0xFF || d[0] == 0x89 || d[0] == 'G' || d[0] == 'B' || d[0] == 'P' || d[0] == 0))
                d[0] = 'x'; /* keep "random" unrecognised */
            int rc = image_decode(d, n, 0, &img, err);
            CHECK_MSG(rc == HIRED_EFORMAT || (pi > 0 && rc == HIRED_EUNSUPPORTED) || (pi > 0 && rc == HIRED_ERANGE),
                      "random bytes (prefix %zu, %zu bytes): rc %d (%s)", pi, n, rc, err);
            CHECK(img.rgb == NULL);
            free(d);
        }
    const char madeup[] = "HIRD\x01\x00\x10\x00\x10 this is not an image";
    CHECK_EQ_INT(image_decode((const uint8_t *)madeup, sizeof madeup, 0, &img, err), HIRED_EFORMAT);
    CHECK(strstr(err, "not a recognised image format") != NULL);
}

static void test_unsupported_formats(void) {
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    const uint8_t webp[] = "RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00";
    CHECK_EQ_INT(image_decode(webp, sizeof webp, 0, &img, err), HIRED_EUNSUPPORTED);
    CHECK(strstr(err, "WebP") != NULL);
    const uint8_t tiff[] = "II*\x00\x08\x00\x00\x00";
    CHECK_EQ_INT(image_decode(tiff, sizeof tiff, 0, &img, err), HIRED_EUNSUPPORTED);
    CHECK(strstr(err, "TIFF") != NULL);
}

static void test_corrupt_headers(void) {
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    /* PNG with an invalid colour type and with a broken zlib stream */
    buf_t p = {0};
    CHECK(stbi_write_png_to_func(stb_sink, &p, W, H, 3, px, W * 3));
    p.p[25] = 5; /* colour type */
    CHECK_EQ_INT(decode(&p, p.n, &img, err), HIRED_EFORMAT);
    p.p[25] = 2;
    p.p[33 + 8] ^= 0xFF; /* first byte of the IDAT payload (zlib header) */
    CHECK_EQ_INT(decode(&p, p.n, &img, err), HIRED_EFORMAT);
    free(p.p);
    /* JPEG: SOF0 with 0 components; a bogus marker after SOI */
    buf_t j = {0};
    jpeg_build(&j, W, H, 3, px, 90, 0, 0);
    size_t sof = 0;
    for (size_t i = 2; i + 1 < j.n; i++)
        if (j.p[i] == 0xFF && j.p[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    CHECK(sof > 0);
    uint8_t keep = j.p[sof + 9];
    j.p[sof + 9] = 0;
    CHECK_EQ_INT(decode(&j, j.n, &img, err), HIRED_EFORMAT);
    CHECK_MSG(strncmp(err, "JPEG: ", 6) == 0, "message: %s", err);
    j.p[sof + 9] = keep;
    j.p[3] = 0x01; /* APP0 marker -> TEM, not a valid marker here */
    int rc = decode(&j, j.n, &img, err);
    CHECK_MSG(rc == HIRED_EFORMAT || rc == 0, "rc %d", rc);
    image_free(&img);
    free(j.p);
}

// ---- size limits --------------------------------------------------------------------------------

static void test_huge_headers(void) {
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    /* PNG: signature + IHDR 100000x100000 RGB + a few IDAT bytes, no IEND */
    buf_t p = {0};
    const uint8_t raw[4] = {0, 1, 2, 3};
    png_build(&p, 100000, 100000, 8, 2, raw, sizeof raw, NULL, 0, NULL, 0);
    mem_fail_after(-1, false); /* resets the allocation counter */
    CHECK_EQ_INT(image_decode(p.p, p.n - 12, 0, &img, err), HIRED_ERANGE);
    CHECK_EQ_INT(mem_alloc_count(), 0);
    CHECK_MSG(strstr(err, "100000x100000 = 10000000000 pixels, over the limit of 50000000") != NULL, "message: %s", err);
    free(p.p);
    /* JPEG: a real small JPEG whose SOF0 is patched to 60000x60000, then to 65535x65535 */
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    buf_t j = {0};
    jpeg_build(&j, W, H, 3, px, 90, 0, 0);
    size_t sof = 0;
    for (size_t i = 2; i + 1 < j.n; i++)
        if (j.p[i] == 0xFF && j.p[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    const int sides[] = {60000, 65535};
    for (size_t s = 0; s < ARRAY_LEN(sides); s++) {
        j.p[sof + 5] = j.p[sof + 7] = (uint8_t)(sides[s] >> 8);
        j.p[sof + 6] = j.p[sof + 8] = (uint8_t)sides[s];
        mem_fail_after(-1, false);
        CHECK_EQ_INT(image_decode(j.p, j.n, 0, &img, err), HIRED_ERANGE);
        CHECK_EQ_INT(mem_alloc_count(), 0);
        CHECK_MSG(s == 1 || strstr(err, "60000x60000 = 3600000000 pixels") != NULL, "message: %s", err);
    }
    free(j.p);
    /* max_pixels is inclusive */
    buf_t q = {0};
    CHECK(stbi_write_png_to_func(stb_sink, &q, W, H, 3, px, W * 3));
    CHECK_EQ_INT(image_decode(q.p, q.n, W * H, &img, err), 0);
    image_free(&img);
    CHECK_EQ_INT(image_decode(q.p, q.n, W * H - 1, &img, err), HIRED_ERANGE);
    free(q.p);
}

static void test_alloc_failures(void) {
    enum { W = 9, H = 7 };
    uint8_t px[W * H * 3];
    fill_smooth(px, W, H, 3);
    buf_t j = {0}, p = {0};
    jpeg_build(&j, W, H, 3, px, 90, 0, 0);
    CHECK(stbi_write_png_to_func(stb_sink, &p, W, H, 3, px, W * 3));
    const buf_t *bufs[2] = {&j, &p};
    char err[HIRED_ERR_LEN];
    for (int k = 0; k < 2; k++) {
        image_t img = {0};
        mem_fail_after(0, true);
        CHECK_EQ_INT(image_decode(bufs[k]->p, bufs[k]->n, 0, &img, err), HIRED_ENOMEM);
        mem_fail_after(-1, false);
        CHECK(img.rgb == NULL);
    }
    free(j.p);
    free(p.p);
}

// ---- files --------------------------------------------------------------------------------------

static void test_files(void) {
    char err[HIRED_ERR_LEN];
    image_t img = {0};
    CHECK_EQ_INT(image_load_file("/nonexistent/hired/x.png", 0, &img, err), HIRED_ENOTFOUND);
    CHECK(strstr(err, "/nonexistent/hired/x.png") != NULL);
    CHECK_EQ_INT(image_load_file("/", 0, &img, err), HIRED_EIO);
    char path[] = "/tmp/hired_test_image_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(write(fd, "garbage!", 8) == 8);
    close(fd);
    CHECK_EQ_INT(image_load_file(path, 0, &img, err), HIRED_EFORMAT);
    CHECK_MSG(strncmp(err, path, strlen(path)) == 0, "message does not name the file: %s", err);
    unlink(path);
}

int main(void) {
    test_png_variants();
    test_bmp();
    test_jpeg_basic();
    test_jpeg_cmyk();
    test_pillow_decodes("resize", 15);
    test_pillow_decodes("cmyk", 3);
    test_truncated();
    test_garbage();
    test_unsupported_formats();
    test_corrupt_headers();
    test_huge_headers();
    test_alloc_failures();
    test_files();
    return test_summary();
}
