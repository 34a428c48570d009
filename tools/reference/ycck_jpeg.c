/* ycck_jpeg.c — writes a YCCK JPEG (libjpeg's CMYK -> YCCK colour transform, Adobe marker) from
 * raw CMYK samples, for make_cmyk_cases.py (Pillow writes CMYK JPEGs but not YCCK ones).
 * usage: ycck_jpeg W H QUALITY < cmyk.raw > out.jpg   (W*H*4 bytes in, row-major C,M,Y,K) */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int w = atoi(argv[1]), h = atoi(argv[2]), q = atoi(argv[3]);
    if (w <= 0 || h <= 0 || w > 4096 || h > 4096) return 2;
    unsigned char *px = malloc((size_t)w * h * 4);
    if (!px || fread(px, 1, (size_t)w * h * 4, stdin) != (size_t)w * h * 4) return 1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, stdout);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCCK);
    jpeg_set_quality(&c, q, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px + (size_t)c.next_scanline * (size_t)w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(px);
    return 0;
}
