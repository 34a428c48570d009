/* fetch.c — see fetch.h. One curl easy handle per fetch (no shared state between threads). */
#include "fetch.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"

int gw_fetch_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? HIRED_OK : HIRED_EIO; }

void gw_fetch_global_cleanup(void) { curl_global_cleanup(); }

typedef struct {
    uint8_t *p;
    size_t n, cap, max;
    int too_large;
} sink_t;

static size_t on_data(char *data, size_t size, size_t nmemb, void *user) {
    sink_t *s = user;
    size_t n = size * nmemb;
    if (s->n + n > s->max) {
        s->too_large = 1;
        return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->n + n) cap *= 2;
        if (cap > s->max) cap = s->max;
        uint8_t *p = realloc(s->p, cap);
        if (!p) return 0;
        s->p = p, s->cap = cap;
    }
    memcpy(s->p + s->n, data, n);
    s->n += n;
    return n;
}

int gw_fetch(const char *url, size_t max_bytes, int timeout_ms, uint8_t **out, size_t *n, char *err) {
    *out = NULL;
    *n = 0;
    CURL *h = curl_easy_init();
    if (!h) return hired_errf(err, HIRED_EIO, "cannot start a transfer (curl_easy_init)");
    sink_t s = {.max = max_bytes};
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hired-gateway");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    int ret = HIRED_OK;
    if (s.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        ret = hired_errf(err, HIRED_ERANGE, "the image at the URL is larger than %zu bytes", max_bytes);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        ret = hired_errf(err, HIRED_ETIMEOUT, "fetching the image took longer than %d ms", timeout_ms);
    else if (rc != CURLE_OK)
        ret = hired_errf(err, HIRED_EIO, "fetching the image failed: %s", cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (status != 200)
        ret = hired_errf(err, HIRED_EIO, "fetching the image failed: HTTP status %ld", status);
    if (ret) {
        free(s.p);
        return ret;
    }
    *out = s.p ? s.p : malloc(1);
    *n = s.n;
    return *out ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
}
