/* clients.c — the broker's client sessions: a hash of sessions by their secret, each with its
 * owner (the CURVE key it authenticated with, else the session itself), the connection it last
 * spoke from (replies go there, so a client that reconnects with a new routing id keeps its
 * jobs), when it was last heard (a session silent for broker.client_grace_ms is gone) and the
 * list of its jobs. Not here: what the broker does with them (frontend.c); why the table is
 * hand-written (broker.h). */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "mem.h"

#define CLIENT_BUCKETS 1024

static size_t bucket(const client_table_t *t, const char *session) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = session; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return (size_t)(h % t->nbuckets);
}

int clients_init(client_table_t *t) {
    memset(t, 0, sizeof *t);
    t->nbuckets = CLIENT_BUCKETS;
    t->buckets = mem_calloc(t->nbuckets, sizeof *t->buckets);
    return t->buckets ? HIRED_OK : HIRED_ENOMEM;
}

void clients_free(client_table_t *t) {
    while (t->all) {
        client_t *c = t->all;
        t->all = c->next;
        mem_free(c);
    }
    mem_free(t->buckets);
    memset(t, 0, sizeof *t);
}

client_t *clients_find(client_table_t *t, const char *session) {
    for (client_t *c = t->buckets[bucket(t, session)]; c; c = c->hnext)
        if (strcmp(c->session, session) == 0) return c;
    return NULL;
}

client_t *clients_add(client_table_t *t, const char *session, const char *owner, bool admin) {
    client_t *c = mem_calloc(1, sizeof *c);
    if (!c) return NULL;
    snprintf(c->session, sizeof c->session, "%s", session);
    snprintf(c->owner, sizeof c->owner, "%s", owner);
    c->admin = admin;
    size_t b = bucket(t, session);
    c->hnext = t->buckets[b];
    t->buckets[b] = c;
    c->next = t->all;
    if (t->all) t->all->prev = c;
    t->all = c;
    t->count++;
    return c;
}

void clients_remove(client_table_t *t, client_t *c) {
    client_t **pp = &t->buckets[bucket(t, c->session)];
    while (*pp && *pp != c) pp = &(*pp)->hnext;
    if (*pp) *pp = c->hnext;
    if (c->prev) c->prev->next = c->next;
    else t->all = c->next;
    if (c->next) c->next->prev = c->prev;
    t->count--;
    mem_free(c);
}
