/* fetch.h — downloading an http(s) image URL with libcurl, bounded in bytes and time. Only used
 * when images.fetch is on (off by default: a gateway that fetches URLs its clients name can be
 * made to reach hosts on its own network). What is enforced on every fetch:
 *   - schemes http and https only, for the URL and every redirect (at most 3), never file:,
 *     ftp: or anything else libcurl knows;
 *   - max_bytes: a Content-Length above it fails before the body, and so does a body that grows
 *     past it;
 *   - timeout_ms for the whole transfer (connect, redirects and body), and connect_ms for the
 *     connection;
 *   - HTTP status 200 only; TLS certificates are verified (libcurl's defaults).
 * Thread-safe: gw_fetch_global_init once per process (main thread, before any other thread),
 * then gw_fetch from any thread. Not here: which requests need a fetch (http.c). */
#ifndef HIRED_GW_FETCH_H
#define HIRED_GW_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* curl_global_init / curl_global_cleanup. 0 or HIRED_EIO. */
int gw_fetch_global_init(void);
void gw_fetch_global_cleanup(void);

/* Fetches url (borrowed). *out (caller frees with free()) and *n, or HIRED_ERANGE (too large),
 * HIRED_ETIMEOUT, HIRED_EIO (anything else: DNS, refused, TLS, a status other than 200, a
 * scheme not allowed) with err naming it. */
int gw_fetch(const char *url, size_t max_bytes, int timeout_ms, uint8_t **out, size_t *n, char *err);

#endif
