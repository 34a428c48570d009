/* image.c — bytes -> 8-bit RGB, matching PIL's Image.open(...).convert("RGB") (see image.h).
 *
 * The format is chosen by signature, never by trying decoders in turn:
 *   JPEG (FF D8)             libjpeg-turbo, default decompression (ISLOW IDCT, fancy upsampling),
 *                            output JCS_RGB (grayscale replicated by libjpeg); four-component
 *                            files (CMYK, and YCCK through libjpeg's YCCK -> CMYK conversion) as
 *                            Pillow reads them: every sample inverted (Pillow's "CMYK;I" rawmode,
 *                            applied to all CMYK JPEGs, Adobe marker or not), then Pillow's
 *                            CMYK -> RGB: nk = 255 - k, channel = nk - (x * nk + 128 + ((x * nk +
 *                            128) >> 8)) >> 8, i.e. nk - round(x * nk / 255).
 *   PNG, GIF, BMP            stb_image with 3 requested channels (alpha dropped, gray replicated,
 *                            palette expanded; 16-bit samples keep their high byte).
 *   WebP, TIFF, PSD, HDR, ... recognised and refused (HIRED_EUNSUPPORTED).
 *   anything else            HIRED_EFORMAT.
 * TGA is deliberately not accepted: it has no signature, and stb's TGA sniffing accepts random
 * bytes often enough to turn garbage into "images".
 *
 * Invariants: the pixel-count limit is checked from the header (jpeg_read_header / the PNG IHDR /
 * stbi_info) before jpeg_start_decompress or stbi_load, so a header claiming a huge image never
 * causes a pixel allocation. Every failure returns with `out` empty and err filled.
 * Truncation is an error for every format (PIL raises "image file is truncated" too; PIL does
 * accept a JPEG that lacks only its final EOI marker, which we refuse).
 * Not here: colour management (ICC profiles are ignored, as PIL's convert("RGB") ignores them),
 * EXIF orientation (not applied, as in the reference pipeline). */
#include "image.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <stb/stb_image.h>

#include "err.h"
#include "file.h"
#include "mem.h"

#define IMAGE_DEFAULT_MAX_PIXELS ((size_t)50000000)
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30) /* image_load_file refuses larger files */
#define JPEG_MAX_SCANS 1000                    /* progressive-scan bomb guard */

typedef enum { FMT_UNKNOWN = 0, FMT_JPEG, FMT_PNG, FMT_GIF, FMT_BMP, FMT_REFUSED } img_fmt_t;

// ---- allocation ---------------------------------------------------------------------------------

int image_alloc(image_t *img, int w, int h) {
    img->w = img->h = 0;
    img->rgb = NULL;
    if (w <= 0 || h <= 0) return HIRED_EINVAL;
    if ((size_t)w > SIZE_MAX / 3 / (size_t)h) return HIRED_ENOMEM;
    img->rgb = mem_calloc((size_t)w * (size_t)h, 3);
    if (!img->rgb) return HIRED_ENOMEM;
    img->w = w;
    img->h = h;
    return HIRED_OK;
}

void image_free(image_t *img) {
    if (!img) return;
    mem_free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

// ---- format sniffing ----------------------------------------------------------------------------

static bool starts_with(const uint8_t *b, size_t n, const char *sig, size_t len) {
    return n >= len && memcmp(b, sig, len) == 0;
}

/* Identifies the format from the first bytes. For refused formats *name says which. A prefix
 * of a known signature that is too short to be complete counts as that format, so that a
 * truncated file is reported as truncated by its decoder. */
static img_fmt_t sniff(const uint8_t *b, size_t n, const char **name) {
    static const char png_sig[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
    *name = "unknown";
    if (n >= 1 && b[0] == 0xFF && (n < 2 || b[1] == 0xD8)) return *name = "JPEG", FMT_JPEG;
    if (memcmp(b, png_sig, n < 8 ? n : 8) == 0) return *name = "PNG", FMT_PNG;
    if (starts_with(b, n, "GIF87a", 6) || starts_with(b, n, "GIF89a", 6)) return *name = "GIF", FMT_GIF;
    if (starts_with(b, n, "BM", 2)) return *name = "BMP", FMT_BMP;
    if (n >= 12 && starts_with(b, n, "RIFF", 4) && memcmp(b + 8, "WEBP", 4) == 0) return *name = "WebP", FMT_REFUSED;
    if (starts_with(b, n, "II*\0", 4) || starts_with(b, n, "MM\0*", 4)) return *name = "TIFF", FMT_REFUSED;
    if (starts_with(b, n, "8BPS", 4)) return *name = "PSD", FMT_REFUSED;
    if (starts_with(b, n, "#?RADIANCE", 10) || starts_with(b, n, "#?RGBE", 6)) return *name = "Radiance HDR", FMT_REFUSED;
    if (starts_with(b, n, "\x53\x80\xF6\x34", 4)) return *name = "Softimage PIC", FMT_REFUSED;
    if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') return *name = "PNM", FMT_REFUSED;
    if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0) return *name = "HEIF/AVIF (ISO media)", FMT_REFUSED;
    if (starts_with(b, n, "\0\0\0\x0CjP  \r\n\x87\n", 12) || starts_with(b, n, "\xFF\x4F\xFF\x51", 4))
        return *name = "JPEG 2000", FMT_REFUSED;
    if (starts_with(b, n, "\0\0\1\0", 4)) return *name = "ICO", FMT_REFUSED;
    if (starts_with(b, n, "qoif", 4)) return *name = "QOI", FMT_REFUSED;
    return FMT_UNKNOWN;
}

static int check_pixels(uint64_t w, uint64_t h, size_t max_pixels, const char *fmt, char *err) {
    if (w == 0 || h == 0) return hired_errf(err, HIRED_EFORMAT, "%s header gives an empty image (%llux%llu)", fmt,
                                            (unsigned long long)w, (unsigned long long)h);
    if (w * h > max_pixels || w > INT_MAX || h > INT_MAX)
        return hired_errf(err, HIRED_ERANGE, "image is %llux%llu = %llu pixels, over the limit of %zu",
                          (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h), max_pixels);
    return HIRED_OK;
}

// ---- JPEG (libjpeg-turbo) -----------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int code; /* HIRED_E* to return after the longjmp */
} jpeg_err_t;

/* Fatal libjpeg errors: leave through the jmp_buf; the message is formatted afterwards. */
static void jpeg_on_error(j_common_ptr c) {
    jpeg_err_t *e = (jpeg_err_t *)c->err;
    e->code = c->err->msg_code == JERR_IMAGE_TOO_BIG ? HIRED_ERANGE
              : c->err->msg_code == JERR_OUT_OF_MEMORY ? HIRED_ENOMEM
                                                       : HIRED_EFORMAT;
    longjmp(e->jb, 1);
}

/* Warnings (level -1) are ignored as PIL ignores them ("extraneous bytes", "premature end of
 * data segment" in a file that is otherwise complete), except running out of input: the
 * memory source then inserts a fake EOI, and PIL would raise "image file is truncated". */
static void jpeg_on_message(j_common_ptr c, int level) {
    jpeg_err_t *e = (jpeg_err_t *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        e->code = HIRED_EFORMAT;
        longjmp(e->jb, 1);
    }
}

/* Refuses progressive files with absurdly many scans (each scan re-walks the whole image). */
static void jpeg_on_progress(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_err_t *e = (jpeg_err_t *)c->err;
        c->err->msg_code = 0; /* not a libjpeg message; see decode_jpeg */
        e->code = HIRED_EUNSUPPORTED;
        longjmp(e->jb, 2);
    }
}

static int decode_jpeg(const uint8_t *bytes, size_t n, size_t max_pixels, image_t *out, char *err) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    jpeg_err_t jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.emit_message = jpeg_on_message;
    jerr.code = HIRED_OK;
    /* From here on, state that must survive a longjmp lives in `out` and `jerr` (not in
     * non-volatile locals). */
    int jumped = setjmp(jerr.jb);
    if (jumped) {
        char msg[JMSG_LENGTH_MAX] = "";
        if (jumped == 2) snprintf(msg, sizeof msg, "more than %d progressive scans", JPEG_MAX_SCANS);
        else if (jerr.pub.msg_code == JWRN_JPEG_EOF) snprintf(msg, sizeof msg, "data is truncated (premature end of file)");
        else jerr.pub.format_message((j_common_ptr)&cinfo, msg);
        jpeg_destroy_decompress(&cinfo);
        image_free(out);
        return hired_errf(err, jerr.code, "JPEG: %s", msg);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, bytes, (unsigned long)n);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        jpeg_destroy_decompress(&cinfo);
        return hired_errf(err, HIRED_EFORMAT, "JPEG: stream holds tables only, no image");
    }
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: /* libjpeg replicates gray into R=G=B, as PIL's L -> RGB */
    case JCS_YCbCr:
    case JCS_RGB: break;
    case JCS_CMYK:
    case JCS_YCCK: break; /* decoded to CMYK, converted below as Pillow does */
    default:
        jpeg_destroy_decompress(&cinfo);
        return hired_errf(err, HIRED_EUNSUPPORTED, "JPEG: unknown colour space with %d components", cinfo.num_components);
    }
    int rc = check_pixels(cinfo.image_width, cinfo.image_height, max_pixels, "JPEG", err);
    if (rc) {
        jpeg_destroy_decompress(&cinfo);
        return rc;
    }
    /* The defaults already; spelled out because PIL's pixels depend on them. */
    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;
    if (image_alloc(out, (int)cinfo.image_width, (int)cinfo.image_height)) {
        jpeg_destroy_decompress(&cinfo);
        return hired_errf(err, HIRED_ENOMEM, "JPEG: out of memory for %ux%u pixels", cinfo.image_width, cinfo.image_height);
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (cmyk ? 4 : 3) || (int)cinfo.output_width != out->w ||
        (int)cinfo.output_height != out->h) {
        jpeg_destroy_decompress(&cinfo);
        image_free(out);
        return hired_errf(err, HIRED_EFORMAT, "JPEG: decoder output geometry differs from the header");
    }
    /* CMYK rows go through a row buffer from libjpeg's own allocator (freed with cinfo, so a
     * longjmp out of jpeg_read_scanlines leaks nothing) */
    JSAMPARRAY buf = cmyk ? (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, cinfo.output_width * 4, 1)
                          : NULL;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = out->rgb + (size_t)cinfo.output_scanline * (size_t)out->w * 3;
        JSAMPROW row = cmyk ? buf[0] : dst;
        jpeg_read_scanlines(&cinfo, &row, 1);
        for (int x = 0; cmyk && x < out->w; x++) {
            const uint8_t *q = buf[0] + 4 * (size_t)x;
            int nk = q[3]; /* 255 - (255 - k): the inversion of "CMYK;I" and Pillow's nk = 255 - k */
            for (int c = 0; c < 3; c++) {
                int v = 255 - q[c], t = v * nk + 128;
                int r = nk - ((t + (t >> 8)) >> 8);
                dst[3 * x + c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
    }
    jpeg_finish_decompress(&cinfo); /* reads up to EOI: a missing EOI is truncation */
    jpeg_destroy_decompress(&cinfo);
    return HIRED_OK;
}

// ---- PNG / GIF / BMP (stb_image) ----------------------------------------------------------------

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[1] << 8 | p[0]; }

/* stb_image reads missing bytes as zeros or stops early without complaint (a PNG without its
 * IEND CRC, a BMP or GIF cut inside the pixel data decode "fine"), so the container structure
 * is checked here first: no pixel data is examined, only lengths. */

/* PNG: walk the chunk lengths; the file must reach a complete IEND chunk. */
static int png_check_complete(const uint8_t *b, size_t n, char *err) {
    size_t off = 8;
    while (n - off >= 12) {
        uint32_t len = be32(b + off);
        if (len > 0x7FFFFFFFu) return hired_errf(err, HIRED_EFORMAT, "PNG: chunk at byte %zu has length %u", off, len);
        if (len > n - off - 12) break;
        if (memcmp(b + off + 4, "IEND", 4) == 0) return HIRED_OK;
        off += 12 + (size_t)len;
    }
    return hired_errf(err, HIRED_EFORMAT, "PNG: data is truncated (%zu bytes, no complete IEND chunk)", n);
}

/* GIF: walk the blocks up to the end of the first image's data sub-blocks (what is decoded). */
static int gif_check_complete(const uint8_t *b, size_t n, char *err) {
    size_t off = 13; /* header + logical screen descriptor */
    if (n < off) goto truncated;
    if (b[10] & 0x80) off += 3u << ((b[10] & 7) + 1); /* global colour table */
    for (;;) {
        if (off >= n) goto truncated;
        uint8_t kind = b[off++];
        if (kind == 0x3B) return hired_errf(err, HIRED_EFORMAT, "GIF: no image before the trailer");
        if (kind == 0x2C) {
            if (n - off < 10) goto truncated;
            uint8_t packed = b[off + 8];
            off += 9 + 1; /* descriptor + LZW minimum code size */
            if (packed & 0x80) off += 3u << ((packed & 7) + 1);
        } else if (kind == 0x21) {
            off += 1; /* extension label */
        } else {
            return hired_errf(err, HIRED_EFORMAT, "GIF: unknown block 0x%02x at byte %zu", kind, off - 1);
        }
        for (;;) { /* data sub-blocks, ended by a zero length */
            if (off >= n) goto truncated;
            uint8_t len = b[off++];
            if (len == 0) break;
            off += len;
        }
        if (kind == 0x2C) return HIRED_OK;
    }
truncated:
    return hired_errf(err, HIRED_EFORMAT, "GIF: data is truncated (%zu bytes)", n);
}

/* BMP: uncompressed pixel arrays must fit in the file. */
static int bmp_check_complete(const uint8_t *b, size_t n, char *err) {
    if (n < 30) return hired_errf(err, HIRED_EFORMAT, "BMP: truncated header (%zu bytes)", n);
    uint64_t offset = le32(b + 10), hsize = le32(b + 14), w, h, bpp, compression = 0;
    if (hsize == 12) {
        w = le16(b + 18);
        h = le16(b + 20);
        bpp = le16(b + 24);
    } else {
        if (n < 34) return hired_errf(err, HIRED_EFORMAT, "BMP: truncated header (%zu bytes)", n);
        int32_t sh = (int32_t)le32(b + 22);
        w = le32(b + 18);
        h = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        bpp = le16(b + 28);
        compression = le32(b + 30);
    }
    if (compression != 0 && compression != 3 && compression != 6) return HIRED_OK; /* stb refuses RLE itself */
    uint64_t stride = (w * bpp + 31) / 32 * 4;
    if (w > INT_MAX || h > INT_MAX || offset > n || (h && stride > (n - offset) / h))
        return hired_errf(err, HIRED_EFORMAT, "BMP: data is truncated (%zu bytes, %llu rows of %llu bytes from byte %llu)",
                          n, (unsigned long long)h, (unsigned long long)stride, (unsigned long long)offset);
    return HIRED_OK;
}

static int decode_stb(const uint8_t *bytes, size_t n, size_t max_pixels, img_fmt_t fmt, const char *name, image_t *out,
                      char *err) {
    if (n > INT_MAX) return hired_errf(err, HIRED_ERANGE, "%s: %zu bytes is more than stb_image can read", name, n);
    uint64_t w, h;
    if (fmt == FMT_PNG) {
        /* Read IHDR ourselves: stbi_info refuses large PNGs with a reason that later format
         * probes overwrite, so the caller could not tell "too large" from "corrupt". */
        if (n < 8 + 8 + 13) return hired_errf(err, HIRED_EFORMAT, "PNG: truncated header (%zu bytes)", n);
        if (be32(bytes + 8) != 13 || memcmp(bytes + 12, "IHDR", 4) != 0)
            return hired_errf(err, HIRED_EFORMAT, "PNG: first chunk is not a 13-byte IHDR");
        w = be32(bytes + 16);
        h = be32(bytes + 20);
    } else {
        int x, y, comp;
        if (!stbi_info_from_memory(bytes, (int)n, &x, &y, &comp))
            return hired_errf(err, HIRED_EFORMAT, "%s: unreadable header (stb_image: %s)", name, stbi_failure_reason());
        /* stb_image's info reports a top-down BMP's height as stored, negative; the image has
         * |height| rows (its loader flips by the sign) */
        if (fmt == FMT_BMP && y < 0 && y != INT_MIN) y = -y;
        if (x < 0 || y < 0) return hired_errf(err, HIRED_EFORMAT, "%s: header gives a size of %dx%d", name, x, y);
        w = (uint64_t)x;
        h = (uint64_t)y;
    }
    int rc = check_pixels(w, h, max_pixels, name, err);
    if (rc) return rc;
    rc = fmt == FMT_PNG ? png_check_complete(bytes, n, err)
         : fmt == FMT_GIF ? gif_check_complete(bytes, n, err)
                          : bmp_check_complete(bytes, n, err);
    if (rc) return rc;

    int x = 0, y = 0, comp = 0;
    uint8_t *px = stbi_load_from_memory(bytes, (int)n, &x, &y, &comp, 3);
    if (!px) {
        const char *why = stbi_failure_reason();
        if (!why) why = "unknown failure";
        int code = strcmp(why, "outofmem") == 0 ? HIRED_ENOMEM : strcmp(why, "too large") == 0 ? HIRED_ERANGE : HIRED_EFORMAT;
        return hired_errf(err, code, "%s: decode failed (stb_image: %s)", name, why);
    }
    if ((uint64_t)x != w || (uint64_t)y != h) {
        stbi_image_free(px);
        return hired_errf(err, HIRED_EFORMAT, "%s: decoded size %dx%d differs from the header's %llux%llu", name, x, y,
                          (unsigned long long)w, (unsigned long long)h);
    }
    /* Copy into our allocator so image_free (mem_free) owns it and the fault hook sees it. */
    if (image_alloc(out, x, y)) {
        stbi_image_free(px);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory for %dx%d pixels", name, x, y);
    }
    memcpy(out->rgb, px, (size_t)x * (size_t)y * 3);
    stbi_image_free(px);
    return HIRED_OK;
}

// ---- public -------------------------------------------------------------------------------------

int image_decode(const uint8_t *bytes, size_t n, size_t max_pixels, image_t *out, char *err) {
    out->w = out->h = 0;
    out->rgb = NULL;
    if (n == 0) return hired_errf(err, HIRED_EFORMAT, "image is empty (0 bytes)");
    if (!bytes) return hired_errf(err, HIRED_EINVAL, "image bytes are NULL");
    if (max_pixels == 0) max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    const char *name;
    img_fmt_t fmt = sniff(bytes, n, &name);
    switch (fmt) {
    case FMT_JPEG: return decode_jpeg(bytes, n, max_pixels, out, err);
    case FMT_PNG:
    case FMT_GIF:
    case FMT_BMP: return decode_stb(bytes, n, max_pixels, fmt, name, out, err);
    case FMT_REFUSED:
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s images are not supported (use JPEG, PNG, GIF or BMP)", name);
    case FMT_UNKNOWN: break;
    }
    uint8_t b[4] = {0};
    memcpy(b, bytes, n < 4 ? n : 4);
    return hired_errf(err, HIRED_EFORMAT, "not a recognised image format (%zu bytes, starting %02x %02x %02x %02x)", n, b[0],
                      b[1], b[2], b[3]);
}

int image_load_file(const char *path, size_t max_pixels, image_t *out, char *err) {
    out->w = out->h = 0;
    out->rgb = NULL;
    uint8_t *buf;
    size_t n;
    int frc = file_read(path, IMAGE_MAX_FILE_BYTES, &buf, &n, err);
    if (frc) return frc;
    char why[HIRED_ERR_LEN] = "";
    int rc = image_decode(buf, n, max_pixels, out, why);
    mem_free(buf);
    if (rc) return hired_errf(err, rc, "%s: %s", path, why);
    return HIRED_OK;
}
