/* st.c — safetensors files and Hugging Face model directories (see st.h).
 *
 * Owns: the read-only mmap of each file (the fd is closed right after mapping; the map keeps the
 * pages), the validated header (one entry per tensor, canonical names, sorted index for bsearch),
 * and the model directory's name -> shard table.
 * Invariants after st_file_open succeeds: every entry has a known dtype, ndim <= ST_MAX_DIMS,
 * begin <= end <= data_len, end - begin == nelem * dtype bits / 8, no two non-empty entries
 * overlap, and no two entries share a canonical name. Nothing is read from the map outside
 * [data, data + data_len) for tensors or [map + 8, map + 8 + header_len) for the header.
 * Alignment: views (st_file_get / st_model_get) are refused with HIRED_EUNSUPPORTED when the
 * tensor's bytes are not aligned for its dtype; st_model_load_f32 copies and converts whatever
 * the alignment. Files written by the Python safetensors library are always aligned.
 * Lenient where the Rust reference is strict: gaps between tensors and trailing bytes after the
 * last one are accepted (they are never read).
 * Not here: which tensors a model needs (vision.c, llm.c), config.json (hfconfig.c). */
#include "st.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "json.h"
#include "mem.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "st.c reads little-endian safetensors data in place; big-endian hosts are not supported"
#endif

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MB of JSON header is already absurd */
#define ST_MAX_INDEX ((size_t)64 << 20)
#define ST_JSON_INT_MAX ((int64_t)1 << 53) /* largest integer a JSON double holds exactly */
#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

// ---- dtypes ----------------------------------------------------------------------------------

/* Every dtype of the safetensors format; only those with tdt >= 0 can be fetched. */
static const struct {
    const char *name;
    int bits;
    int tdt; /* tensor_dtype_t, or -1 */
} k_dtypes[] = {
    {"F32", 32, TENSOR_DTYPE_F32}, {"F16", 16, TENSOR_DTYPE_F16}, {"BF16", 16, TENSOR_DTYPE_BF16},
    {"F64", 64, -1},    {"I64", 64, -1},     {"I32", 32, -1},     {"I16", 16, -1},     {"I8", 8, -1},
    {"U64", 64, -1},    {"U32", 32, -1},     {"U16", 16, -1},     {"U8", 8, -1},       {"BOOL", 8, -1},
    {"F8_E4M3", 8, -1}, {"F8_E5M2", 8, -1},  {"F8_E8M0", 8, -1},  {"F6_E2M3", 6, -1},  {"F6_E3M2", 6, -1},
    {"F4", 4, -1},      {"C64", 64, -1},
};

static int dtype_find(const char *s) {
    for (int i = 0; i < (int)ARRAY_LEN(k_dtypes); i++)
        if (!strcmp(k_dtypes[i].name, s)) return i;
    return -1;
}

// ---- types -----------------------------------------------------------------------------------

typedef struct {
    char *name; /* canonical, owned */
    int dtype;  /* index into k_dtypes */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte range relative to the data section */
} st_entry_t;

struct st_file {
    char *path;
    const uint8_t *map; /* whole file, PROT_READ */
    size_t map_len;
    const uint8_t *data; /* map + 8 + header_len */
    uint64_t data_len;
    int n;
    st_entry_t *ents;      /* [n], header order */
    st_entry_t **by_name;  /* [n], sorted by name */
    int n_meta;
    char **meta; /* [2 * n_meta]: key, value, key, value... */
};

typedef struct {
    const char *name; /* borrowed from the shard's entry */
    st_file_t *file;
} st_slot_t;

struct st_model {
    char *dir;
    bool indexed; /* opened through model.safetensors.index.json */
    int n_files;
    st_file_t **files;
    int n;
    st_slot_t *slots; /* [n], sorted by name */
};

// ---- names -----------------------------------------------------------------------------------

/* transformers >= 4.52 prefixes -> the pre-4.52 llava-hf names (docs/numerics.md §7.3). */
static const struct {
    const char *from, *to;
    bool exact;
} k_renames[] = {
    {"model.language_model.", "language_model.model.", false},
    {"model.vision_tower.", "vision_tower.", false},
    {"model.multi_modal_projector.", "multi_modal_projector.", false},
    {"model.image_newline", "image_newline", true},
    {"lm_head.", "language_model.lm_head.", false},
};

/* Writes the canonical form of raw into buf (cap bytes). Returns buf, or raw itself when no rule
 * applies or the result would not fit. */
static const char *canon_into(const char *raw, char *buf, size_t cap) {
    for (size_t i = 0; i < ARRAY_LEN(k_renames); i++) {
        size_t fl = strlen(k_renames[i].from);
        if (k_renames[i].exact ? strcmp(raw, k_renames[i].from) != 0 : strncmp(raw, k_renames[i].from, fl) != 0)
            continue;
        int w = snprintf(buf, cap, "%s%s", k_renames[i].to, raw + fl);
        return w >= 0 && (size_t)w < cap ? buf : raw;
    }
    return raw;
}

/* Canonical copy of raw. Caller owns the result (mem_free); NULL when out of memory. */
static char *canon_dup(const char *raw) {
    size_t need = strlen(raw) + 32; /* the longest rename adds 19 bytes */
    char *buf = mem_alloc(need);
    if (!buf) return NULL;
    const char *c = canon_into(raw, buf, need);
    if (c != buf) memcpy(buf, raw, strlen(raw) + 1);
    return buf;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp((*(st_entry_t *const *)a)->name, (*(st_entry_t *const *)b)->name);
}

static int cmp_entry_begin(const void *a, const void *b) {
    const st_entry_t *x = *(st_entry_t *const *)a, *y = *(st_entry_t *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int cmp_key_entry(const void *key, const void *elem) {
    return strcmp(key, (*(st_entry_t *const *)elem)->name);
}

static const st_entry_t *file_find(const st_file_t *f, const char *name) {
    char buf[1024];
    const char *q = canon_into(name, buf, sizeof buf);
    st_entry_t *const *e = bsearch(q, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_key_entry);
    return e ? *e : NULL;
}

/* "[a, b, c]" for an entry's shape or a requested one. */
static char *shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t off = 0;
    buf[0] = '\0';
    off += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
    return buf;
}

// ---- one file: header validation -------------------------------------------------------------

static void file_free(st_file_t *f) {
    if (!f) return;
    if (f->map) munmap((void *)f->map, f->map_len);
    for (int i = 0; i < f->n; i++) mem_free(f->ents[i].name);
    mem_free(f->ents);
    mem_free(f->by_name);
    for (int i = 0; i < 2 * f->n_meta; i++) mem_free(f->meta[i]);
    mem_free(f->meta);
    mem_free(f->path);
    mem_free(f);
}

void st_file_close(st_file_t **f) {
    if (!f || !*f) return;
    file_free(*f);
    *f = NULL;
}

static int parse_metadata(st_file_t *f, const cJSON *md, char *err) {
    if (!cJSON_IsObject(md))
        return hired_errf(err, HIRED_EFORMAT, "%s: __metadata__ must be an object of strings", f->path);
    int n = cJSON_GetArraySize(md);
    f->meta = mem_calloc((size_t)(2 * n + 1), sizeof *f->meta);
    if (!f->meta) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", f->path);
    for (const cJSON *it = md->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring)
            return hired_errf(err, HIRED_EFORMAT, "%s: __metadata__ value of '%s' must be a string", f->path,
                              it->string);
        char *k = mem_strdup(it->string), *v = mem_strdup(it->valuestring);
        if (!k || !v) {
            mem_free(k);
            mem_free(v);
            return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", f->path);
        }
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = v;
        f->n_meta++;
    }
    return HIRED_OK;
}

/* Validates one header entry `it` (named raw) into e. */
static int parse_entry(st_file_t *f, const cJSON *it, st_entry_t *e, char *err) {
    const char *raw = it->string;
    if (!cJSON_IsObject(it))
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': entry must be an object", f->path, raw);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': dtype missing or not a string", f->path, raw);
    e->dtype = dtype_find(dt->valuestring);
    if (e->dtype < 0)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", f->path, raw, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': shape missing or not an array", f->path, raw);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': %d dimensions, at most %d allowed", f->path, raw, nd,
                          ST_MAX_DIMS);
    e->ndim = nd;
    uint64_t nelem = 1;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        if (!json_is_int_in(x, 0, ST_JSON_INT_MAX))
            return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': shape[%d] must be a non-negative integer", f->path,
                              raw, d);
        e->shape[d] = (int64_t)x->valuedouble;
        if (__builtin_mul_overflow(nelem, (uint64_t)e->shape[d], &nelem))
            return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': element count overflows", f->path, raw);
    }
    uint64_t bits;
    if (__builtin_mul_overflow(nelem, (uint64_t)k_dtypes[e->dtype].bits, &bits) || nelem > (uint64_t)INT64_MAX)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': byte size overflows", f->path, raw);
    if (bits % 8)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': %s data does not fill whole bytes", f->path, raw,
                          k_dtypes[e->dtype].name);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_is_int_in(off->child, 0, ST_JSON_INT_MAX) ||
        !json_is_int_in(off->child->next, 0, ST_JSON_INT_MAX))
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] non-negative integers",
                          f->path, raw);
    e->begin = (uint64_t)off->child->valuedouble;
    e->end = (uint64_t)off->child->next->valuedouble;
    if (e->end < e->begin)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': data_offsets end %llu < begin %llu", f->path, raw,
                          (unsigned long long)e->end, (unsigned long long)e->begin);
    if (e->end > f->data_len)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': data_offsets end %llu past the end of the %llu-byte data section",
                          f->path, raw, (unsigned long long)e->end, (unsigned long long)f->data_len);
    if (e->end - e->begin != bits / 8)
        return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s': data_offsets span %llu bytes, dtype %s and shape need %llu",
                          f->path, raw, (unsigned long long)(e->end - e->begin), k_dtypes[e->dtype].name,
                          (unsigned long long)(bits / 8));
    e->name = canon_dup(raw);
    if (!e->name) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", f->path);
    return HIRED_OK;
}

static int parse_header(st_file_t *f, const cJSON *root, char *err) {
    if (!cJSON_IsObject(root)) return hired_errf(err, HIRED_EFORMAT, "%s: header is not a JSON object", f->path);
    int total = 0;
    const cJSON *md = NULL;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (md) return hired_errf(err, HIRED_EFORMAT, "%s: duplicate __metadata__", f->path);
            md = it;
        } else {
            total++;
        }
    }
    if (md) {
        int rc = parse_metadata(f, md, err);
        if (rc) return rc;
    }
    f->ents = mem_calloc((size_t)total + 1, sizeof *f->ents);
    f->by_name = mem_calloc((size_t)total + 1, sizeof *f->by_name);
    if (!f->ents || !f->by_name) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", f->path);
    for (const cJSON *it = root->child; it; it = it->next) {
        if (it == md) continue;
        int rc = parse_entry(f, it, &f->ents[f->n], err); /* sets the name last: nothing to undo */
        if (rc) return rc;
        f->by_name[f->n] = &f->ents[f->n];
        f->n++;
    }
    /* overlaps: sort by start, every non-empty range must begin at or after the previous end */
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_entry_begin);
    const st_entry_t *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_entry_t *e = f->by_name[i];
        if (e->begin == e->end) continue;
        if (prev && e->begin < prev->end)
            return hired_errf(err, HIRED_EFORMAT, "%s: tensors '%s' and '%s' overlap in the data section", f->path,
                              prev->name, e->name);
        prev = e;
    }
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_entry_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->by_name[i - 1]->name, f->by_name[i]->name))
            return hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s' appears twice (after renaming to the pre-4.52 layout)",
                              f->path, f->by_name[i]->name);
    return HIRED_OK;
}

static int map_file(st_file_t *f, char *err) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return hired_errf(err, e == ENOENT ? HIRED_ENOTFOUND : HIRED_EIO, "cannot open %s: %s", f->path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hired_errf(err, HIRED_EIO, "%s: not a regular file", f->path);
    }
    if (st.st_size < 8) {
        close(fd);
        return hired_errf(err, HIRED_EFORMAT, "%s: %lld bytes, too short for a safetensors header", f->path,
                          (long long)st.st_size);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return hired_errf(err, HIRED_ERANGE, "%s: too large to map", f->path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the pages */
    if (p == MAP_FAILED) return hired_errf(err, HIRED_EIO, "cannot mmap %s: %s", f->path, strerror(e));
    f->map = p;
    f->map_len = (size_t)st.st_size;
    return HIRED_OK;
}

int st_file_open_rc(const char *path, st_file_t **out, char *err) {
    *out = NULL;
    st_file_t *f = mem_calloc(1, sizeof *f);
    if (!f || !(f->path = mem_strdup(path))) {
        mem_free(f);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", path);
    }
    int rc = map_file(f, err);
    if (rc) goto fail;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i]; /* u64 little-endian */
    uint64_t avail = (uint64_t)f->map_len - 8;
    if (hlen > ST_MAX_HEADER) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: header length %llu exceeds the %llu-byte limit", path,
                        (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > avail) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: header length %llu but only %llu bytes follow", path,
                        (unsigned long long)hlen, (unsigned long long)avail);
        goto fail;
    }
    f->data = f->map + 8 + hlen;
    f->data_len = avail - hlen;

    cJSON *root = NULL;
    rc = json_parse(path, (const char *)f->map + 8, (size_t)hlen, &root, err);
    if (rc) goto fail;
    rc = parse_header(f, root, err);
    cJSON_Delete(root);
    if (rc) goto fail;
    *out = f;
    return HIRED_OK;
fail:
    file_free(f);
    return rc;
}

st_file_t *st_file_open(const char *path, char *err) {
    st_file_t *f = NULL;
    st_file_open_rc(path, &f, err);
    return f;
}

int st_file_count(const st_file_t *f) { return f->n; }

const char *st_file_name(const st_file_t *f, int i) { return i >= 0 && i < f->n ? f->ents[i].name : NULL; }

const char *st_file_path(const st_file_t *f) { return f->path; }

const char *st_file_metadata(const st_file_t *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

// ---- one file: tensors -----------------------------------------------------------------------

/* Fills *view for entry e of f (dtype, rank and alignment checked). */
static int entry_view(const st_file_t *f, const st_entry_t *e, tensor_t *view, char *err) {
    int tdt = k_dtypes[e->dtype].tdt;
    if (tdt < 0)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (only F32, F16 and BF16 are supported)",
                          f->path, e->name, k_dtypes[e->dtype].name);
    if (e->ndim > TENSOR_MAX_DIMS)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d supported)", f->path,
                          e->name, e->ndim, TENSOR_MAX_DIMS);
    const uint8_t *p = f->data + e->begin;
    if ((uintptr_t)p % tensor_dtype_size((tensor_dtype_t)tdt))
        return hired_errf(err, HIRED_EUNSUPPORTED,
                          "%s: tensor '%s' is not %zu-byte aligned in the file; views need alignment (st_model_load_f32 copies)",
                          f->path, e->name, tensor_dtype_size((tensor_dtype_t)tdt));
    /* the map is read-only: tensor_t has no const data pointer, so the view must not be written */
    tensor_view(view, (tensor_dtype_t)tdt, (void *)p, e->ndim, e->shape);
    return HIRED_OK;
}

int st_file_get(const st_file_t *f, const char *name, tensor_t *view, char *err) {
    const st_entry_t *e = file_find(f, name);
    if (!e) return hired_errf(err, HIRED_ENOTFOUND, "%s: tensor '%s' not found", f->path, name);
    return entry_view(f, e, view, err);
}

/* Converts entry e to a new float32 buffer; copies through an aligned bounce buffer when the
 * source is not aligned for its dtype. */
static float *entry_load_f32(const st_file_t *f, const st_entry_t *e, char *err) {
    int tdt = k_dtypes[e->dtype].tdt;
    if (tdt < 0) {
        hired_errf(err, HIRED_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (only F32, F16 and BF16 are supported)",
                   f->path, e->name, k_dtypes[e->dtype].name);
        return NULL;
    }
    size_t es = tensor_dtype_size((tensor_dtype_t)tdt);
    size_t n = (size_t)((e->end - e->begin) / es);
    if (n > SIZE_MAX / 4) {
        hired_errf(err, HIRED_ENOMEM, "%s: tensor '%s' too large", f->path, e->name);
        return NULL;
    }
    float *out = mem_alloc_aligned(n * 4);
    if (!out) {
        hired_errf(err, HIRED_ENOMEM, "%s: out of memory loading tensor '%s' (%zu floats)", f->path, e->name, n);
        return NULL;
    }
    const uint8_t *src = f->data + e->begin;
    if ((uintptr_t)src % es == 0) {
        tensor_convert_to_f32(out, src, (tensor_dtype_t)tdt, n);
    } else {
        uint32_t bounce[1024]; /* 4 KB, aligned for every supported dtype */
        size_t per = sizeof bounce / es;
        for (size_t i = 0; i < n; i += per) {
            size_t k = n - i < per ? n - i : per;
            memcpy(bounce, src + i * es, k * es);
            tensor_convert_to_f32(out + i, bounce, (tensor_dtype_t)tdt, k);
        }
    }
    return out;
}

// ---- model directory -------------------------------------------------------------------------

void st_model_close(st_model_t **m) {
    if (!m || !*m) return;
    st_model_t *x = *m;
    for (int i = 0; i < x->n_files; i++) st_file_close(&x->files[i]);
    mem_free(x->files);
    mem_free(x->slots);
    mem_free(x->dir);
    mem_free(x);
    *m = NULL;
}

static int cmp_slot(const void *a, const void *b) {
    return strcmp(((const st_slot_t *)a)->name, ((const st_slot_t *)b)->name);
}

static int cmp_key_slot(const void *key, const void *elem) { return strcmp(key, ((const st_slot_t *)elem)->name); }

/* Caller owns the result (mem_free). */
static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = mem_alloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int model_open_single(st_model_t *m, char *err) {
    char *path = path_join(m->dir, ST_SINGLE_NAME);
    m->files = mem_calloc(1, sizeof *m->files);
    if (!path || !m->files) {
        mem_free(path);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", m->dir);
    }
    st_file_t *f = NULL;
    int rc = st_file_open_rc(path, &f, err);
    mem_free(path);
    if (rc) return rc;
    m->files[0] = f;
    m->n_files = 1;
    m->slots = mem_calloc((size_t)f->n + 1, sizeof *m->slots);
    if (!m->slots) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", m->dir);
    for (int i = 0; i < f->n; i++) m->slots[i] = (st_slot_t){f->by_name[i]->name, f};
    m->n = f->n; /* by_name is already sorted and duplicate-free */
    return HIRED_OK;
}

static bool shard_name_ok(const char *s) {
    return s[0] != '\0' && !strchr(s, '/') && !strstr(s, "..");
}

static int model_open_index(st_model_t *m, const char *index_path, char *err) {
    cJSON *root = NULL;
    int rc = json_read_file(index_path, ST_MAX_INDEX, &root, err);
    if (rc) return rc;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: weight_map missing or not an object", index_path);
        goto done;
    }
    int n = cJSON_GetArraySize(wm);
    if (n == 0) {
        rc = hired_errf(err, HIRED_EFORMAT, "%s: weight_map is empty", index_path);
        goto done;
    }
    /* distinct shard names, in order of first appearance (borrowed from the JSON) */
    const char **shards = mem_calloc((size_t)n, sizeof *shards);
    m->files = mem_calloc((size_t)n, sizeof *m->files);
    m->slots = mem_calloc((size_t)n, sizeof *m->slots);
    if (!shards || !m->files || !m->slots) {
        mem_free(shards);
        rc = hired_errf(err, HIRED_ENOMEM, "%s: out of memory", index_path);
        goto done;
    }
    int n_shards = 0;
    for (const cJSON *it = wm->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->valuestring) {
            rc = hired_errf(err, HIRED_EFORMAT, "%s: weight_map['%s'] must be a shard file name", index_path, it->string);
            goto done_shards;
        }
        if (!shard_name_ok(it->valuestring)) {
            rc = hired_errf(err, HIRED_EFORMAT, "%s: weight_map['%s'] names shard '%.200s': not a plain file name",
                            index_path, it->string, it->valuestring);
            goto done_shards;
        }
        int s = 0;
        while (s < n_shards && strcmp(shards[s], it->valuestring)) s++;
        if (s == n_shards) shards[n_shards++] = it->valuestring;
    }
    for (int s = 0; s < n_shards; s++) {
        char *path = path_join(m->dir, shards[s]);
        if (!path) {
            rc = hired_errf(err, HIRED_ENOMEM, "%s: out of memory", index_path);
            goto done_shards;
        }
        rc = st_file_open_rc(path, &m->files[s], err);
        mem_free(path);
        if (rc) goto done_shards;
        m->n_files++;
    }
    /* every mapped tensor must be in its shard */
    for (const cJSON *it = wm->child; it; it = it->next) {
        int s = 0;
        while (strcmp(shards[s], it->valuestring)) s++;
        const st_entry_t *e = file_find(m->files[s], it->string);
        if (!e) {
            rc = hired_errf(err, HIRED_ENOTFOUND, "%s: tensor '%s' (listed in %s) not found", m->files[s]->path,
                            it->string, ST_INDEX_NAME);
            goto done_shards;
        }
        m->slots[m->n++] = (st_slot_t){e->name, m->files[s]};
    }
    qsort(m->slots, (size_t)m->n, sizeof *m->slots, cmp_slot);
    for (int i = 1; i < m->n; i++)
        if (!strcmp(m->slots[i - 1].name, m->slots[i].name)) {
            rc = hired_errf(err, HIRED_EFORMAT, "%s: tensor '%s' listed twice (after renaming to the pre-4.52 layout)",
                            index_path, m->slots[i].name);
            goto done_shards;
        }
    rc = HIRED_OK;
done_shards:
    mem_free(shards);
done:
    cJSON_Delete(root);
    return rc;
}

int st_model_open_rc(const char *dir, st_model_t **out, char *err) {
    *out = NULL;
    st_model_t *m = mem_calloc(1, sizeof *m);
    if (!m || !(m->dir = mem_strdup(dir))) {
        mem_free(m);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory", dir);
    }
    size_t dl = strlen(m->dir);
    while (dl > 1 && m->dir[dl - 1] == '/') m->dir[--dl] = '\0';

    char *index_path = path_join(m->dir, ST_INDEX_NAME);
    char *single_path = path_join(m->dir, ST_SINGLE_NAME);
    int rc;
    struct stat st;
    if (!index_path || !single_path) {
        rc = hired_errf(err, HIRED_ENOMEM, "%s: out of memory", dir);
    } else if (stat(index_path, &st) == 0) {
        m->indexed = true;
        rc = model_open_index(m, index_path, err);
    } else if (stat(single_path, &st) == 0) {
        rc = model_open_single(m, err);
    } else {
        rc = hired_errf(err, HIRED_ENOTFOUND, "no %s or %s in %s", ST_SINGLE_NAME, ST_INDEX_NAME, m->dir);
    }
    mem_free(index_path);
    mem_free(single_path);
    if (rc) {
        st_model_close(&m);
        return rc;
    }
    *out = m;
    return HIRED_OK;
}

st_model_t *st_model_open(const char *dir, char *err) {
    st_model_t *m = NULL;
    st_model_open_rc(dir, &m, err);
    return m;
}

static const st_slot_t *model_find(const st_model_t *m, const char *name) {
    char buf[1024];
    const char *q = canon_into(name, buf, sizeof buf);
    return bsearch(q, m->slots, (size_t)m->n, sizeof *m->slots, cmp_key_slot);
}

/* The not-found message names the single file, or the directory when the index lacks the name. */
static int model_not_found(const st_model_t *m, const char *name, char *err) {
    if (m->indexed) return hired_errf(err, HIRED_ENOTFOUND, "%s: tensor '%s' not found", m->dir, name);
    return hired_errf(err, HIRED_ENOTFOUND, "%s: tensor '%s' not found", m->files[0]->path, name);
}

bool st_model_has(const st_model_t *m, const char *name) { return model_find(m, name) != NULL; }

int st_model_count(const st_model_t *m) { return m->n; }

const char *st_model_name(const st_model_t *m, int i) { return i >= 0 && i < m->n ? m->slots[i].name : NULL; }

void st_model_release(const st_model_t *m, const tensor_t *view) {
    if (!m || !view || !view->data) return;
    const uint8_t *p = view->data;
    size_t bytes = tensor_nbytes(view);
    for (int i = 0; i < m->n_files; i++) {
        const st_file_t *f = m->files[i];
        if (p < f->map || p > f->map + f->map_len || bytes > (size_t)(f->map + f->map_len - p)) continue;
        /* only whole pages: the first and last may hold a neighbouring tensor still in use */
        const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)p + pg - 1) / pg * pg,
                        hi = ((uintptr_t)p + bytes) / pg * pg;
        /* a private read-only file mapping: dropped pages come back from the file when read */
        if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
        return;
    }
}

const char *st_model_file_of(const st_model_t *m, const char *name) {
    const st_slot_t *s = model_find(m, name);
    return s ? s->file->path : NULL;
}

int st_model_get(const st_model_t *m, const char *name, tensor_t *view, char *err) {
    const st_slot_t *s = model_find(m, name);
    if (!s) return model_not_found(m, name, err);
    return st_file_get(s->file, s->name, view, err);
}

/* The slot and entry of `name` when it has exactly this shape; NULL with err filled otherwise. */
static const st_entry_t *model_find_shaped(const st_model_t *m, const char *name, int ndim, const int64_t *shape,
                                           const st_slot_t **slot, char *err) {
    const st_slot_t *s = model_find(m, name);
    if (!s) {
        model_not_found(m, name, err);
        return NULL;
    }
    const st_entry_t *e = file_find(s->file, s->name);
    bool same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same) {
        char have[160], want[160];
        hired_errf(err, HIRED_ESHAPE, "%s: tensor '%s' has shape %s, expected %s", s->file->path, e->name,
                   shape_str(e->ndim, e->shape, have, sizeof have),
                   shape_str(ndim < 0 ? 0 : ndim > ST_MAX_DIMS ? ST_MAX_DIMS : ndim, shape, want, sizeof want));
        return NULL;
    }
    *slot = s;
    return e;
}

float *st_model_load_f32(const st_model_t *m, const char *name, int ndim, const int64_t *shape, char *err) {
    const st_slot_t *s;
    const st_entry_t *e = model_find_shaped(m, name, ndim, shape, &s, err);
    return e ? entry_load_f32(s->file, e, err) : NULL;
}

int st_model_get_shaped(const st_model_t *m, const char *name, int ndim, const int64_t *shape, tensor_t *view,
                        char *err) {
    const st_slot_t *s;
    if (!model_find_shaped(m, name, ndim, shape, &s, err)) return model_find(m, name) ? HIRED_ESHAPE : HIRED_ENOTFOUND;
    return st_file_get(s->file, s->name, view, err);
}
