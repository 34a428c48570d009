/* file.h — the one whole-file reader: model and tokenizer JSON, images, messages files, fixtures.
 * Bounded by the caller's limit before anything is allocated; the data is followed by one NUL
 * byte, so text readers may use it as a string. Not here: the checkpoint (mmapped, st.h). */
#ifndef HIRED_FILE_H
#define HIRED_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads the regular file at path (at most max bytes) into a new buffer; *n is its size and
 * (*bytes)[*n] == 0. Caller owns *bytes (mem_free). HIRED_ENOTFOUND (no such file), HIRED_EIO
 * (not a regular file, a read error, or the file shrank), HIRED_ERANGE (more than max bytes),
 * HIRED_ENOMEM, with err starting with the path. */
int file_read(const char *path, size_t max, uint8_t **bytes, size_t *n, char *err);

#endif
