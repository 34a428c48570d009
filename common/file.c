/* file.c — see file.h. open + fstat (the size is checked before the buffer exists) + read loop. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "mem.h"

int file_read(const char *path, size_t max, uint8_t **bytes, size_t *n, char *err) {
    *bytes = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return hired_errf(err, e == ENOENT ? HIRED_ENOTFOUND : HIRED_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    int rc = HIRED_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = hired_errf(err, HIRED_EIO, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > max)
        rc = hired_errf(err, HIRED_ERANGE, "%s: %lld bytes, more than the %zu allowed", path, (long long)st.st_size, max);
    size_t len = rc ? 0 : (size_t)st.st_size;
    uint8_t *buf = rc ? NULL : mem_alloc(len + 1);
    if (!rc && !buf) rc = hired_errf(err, HIRED_ENOMEM, "%s: out of memory for %zu bytes", path, len);
    for (size_t got = 0; !rc && got < len;) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) rc = hired_errf(err, HIRED_EIO, "%s: cannot read: %s", path, r < 0 ? strerror(errno) : "the file shrank");
        else got += (size_t)r;
    }
    close(fd);
    if (rc) {
        mem_free(buf);
        return rc;
    }
    buf[len] = 0;
    *bytes = buf;
    *n = len;
    return HIRED_OK;
}
