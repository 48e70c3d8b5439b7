/* npy: the .npy reader and writer and the conversions to and from kernel parameters; see
 * npy.h. The file layout (NumPy's format.py):
 *
 *     "\x93NUMPY" major minor  header_len (u16 LE for 1.0, u32 LE for 2.0/3.0)  header  data
 *
 * where header is a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a final newline so that the data starts at a multiple of 64. */
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { NPY_PREAMBLE_V1 = 10, NPY_PREAMBLE_V2 = 12, NPY_ALIGN = 64 };

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* The dtypes .npy can hold: kind letter and item size after the byte-order character. */
static const struct {
    DType       dtype;
    const char *descr;   /* as NumPy writes it */
} NPY_TYPES[] = {
    {DT_F64, "<f8"}, {DT_F32, "<f4"}, {DT_F16, "<f2"}, {DT_I64, "<i8"}, {DT_I32, "<i4"},
    {DT_I16, "<i2"}, {DT_I8, "|i1"},  {DT_U8, "|u1"},  {DT_BOOL, "|b1"},
};

const char *npy_descr(DType t)
{
    for (int i = 0; i < TD_COUNTOF(NPY_TYPES); i++)
        if (NPY_TYPES[i].dtype == t) return NPY_TYPES[i].descr;
    return NULL;
}

size_t npy_count(const TensorData *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->shape[i];
    return n;
}

void npy_format_shape(const TensorData *t, StrBuf *sb)
{
    sb_putc(sb, '(');
    for (int i = 0; i < t->rank; i++) sb_printf(sb, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    sb_puts(sb, t->rank == 1 ? ",)" : ")");
}

void npy_format_index(const TensorData *t, size_t flat, StrBuf *sb)
{
    int64_t idx[IR_MAX_RANK];
    for (int i = t->rank - 1; i >= 0; i--) {
        idx[i] = t->shape[i] > 0 ? (int64_t)(flat % (size_t)t->shape[i]) : 0;
        if (t->shape[i] > 0) flat /= (size_t)t->shape[i];
    }
    sb_putc(sb, '[');
    for (int i = 0; i < t->rank; i++) sb_printf(sb, "%s%lld", i ? ", " : "", (long long)idx[i]);
    sb_putc(sb, ']');
}

void npy_free(TensorData *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* ---- header parsing ------------------------------------------------------------------------ */

typedef struct HeaderParser {
    const char *name;   /* file name for messages */
    const char *s;      /* header text */
    size_t      len;
    size_t      pos;
    StrBuf     *err;
} HeaderParser;

static bool hp_fail(HeaderParser *p, const char *what)
{
    sb_printf(p->err, "%s: malformed .npy header: %s (at header byte %zu)", p->name, what, p->pos);
    return false;
}

static void hp_skip_ws(HeaderParser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static bool hp_eat(HeaderParser *p, char c)
{
    hp_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes, without escapes. */
static bool hp_string(HeaderParser *p, char *buf, size_t cap)
{
    hp_skip_ws(p);
    if (p->pos >= p->len || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
        return hp_fail(p, "expected a quoted string");
    char q = p->s[p->pos++];
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != q) {
        char c = p->s[p->pos];
        if (c == '\\' || c == '\n' || n + 1 >= cap) return hp_fail(p, "unexpected string contents");
        buf[n++] = c;
        p->pos++;
    }
    if (p->pos >= p->len) return hp_fail(p, "unterminated string");
    p->pos++;
    buf[n] = 0;
    return true;
}

static bool hp_word(HeaderParser *p, const char *w)
{
    hp_skip_ws(p);
    size_t n = strlen(w);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0) {
        p->pos += n;
        return true;
    }
    return false;
}

/* Maps a descr string to a dtype, or explains why it cannot. */
static bool parse_descr(HeaderParser *p, const char *d, DType *out)
{
    char order = d[0];
    const char *code = order ? d + 1 : d;
    for (int i = 0; i < TD_COUNTOF(NPY_TYPES); i++) {
        if (strcmp(code, NPY_TYPES[i].descr + 1) != 0) continue;
        bool one_byte = NPY_TYPES[i].descr[0] == '|';
        if (order == '<' || (one_byte && (order == '|' || order == '>' || order == '='))) {
            *out = NPY_TYPES[i].dtype;
            return true;
        }
        if (order == '>') {
            sb_printf(p->err, "%s: dtype '%s' (big-endian) is not supported; save it little-endian "
                      "with a.astype('<%s')", p->name, d, code);
            return false;
        }
        break;
    }
    sb_printf(p->err, "%s: dtype '%s' is not supported; supported:", p->name, d);
    for (int i = 0; i < TD_COUNTOF(NPY_TYPES); i++)
        sb_printf(p->err, " %s (%s)", NPY_TYPES[i].descr, dtype_name(NPY_TYPES[i].dtype));
    return false;
}

static bool parse_shape(HeaderParser *p, TensorData *t)
{
    if (!hp_eat(p, '(')) return hp_fail(p, "expected '(' to start the shape");
    t->rank = 0;
    for (;;) {
        hp_skip_ws(p);
        if (hp_eat(p, ')')) return true;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return hp_fail(p, "expected a non-negative integer in the shape");
        int64_t v = 0;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            if (!ck_mul_i64(v, 10, &v) || !ck_add_i64(v, p->s[p->pos] - '0', &v)) {
                sb_printf(p->err, "%s: shape dimension overflows 64 bits", p->name);
                return false;
            }
            p->pos++;
        }
        if (t->rank == IR_MAX_RANK) {
            sb_printf(p->err, "%s: arrays of more than %d dimensions are not supported",
                      p->name, IR_MAX_RANK);
            return false;
        }
        t->shape[t->rank++] = v;
        if (hp_eat(p, ',')) continue;
        if (hp_eat(p, ')')) return true;
        return hp_fail(p, "expected ',' or ')' in the shape");
    }
}

static bool parse_header(HeaderParser *p, TensorData *t)
{
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char key[32], descr[64];
    if (!hp_eat(p, '{')) return hp_fail(p, "expected '{'");
    for (;;) {
        if (hp_eat(p, '}')) break;
        if (!hp_string(p, key, sizeof key)) return false;
        if (!hp_eat(p, ':')) return hp_fail(p, "expected ':' after a key");
        bool *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            hp_skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '[') {
                sb_printf(p->err, "%s: structured dtypes are not supported", p->name);
                return false;
            }
            if (!hp_string(p, descr, sizeof descr)) return false;
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_order;
            if (hp_word(p, "True")) fortran = true;
            else if (hp_word(p, "False")) fortran = false;
            else return hp_fail(p, "expected True or False for 'fortran_order'");
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            if (!parse_shape(p, t)) return false;
        } else {
            sb_printf(p->err, "%s: malformed .npy header: unexpected key '%s'", p->name, key);
            return false;
        }
        if (*seen) {
            sb_printf(p->err, "%s: malformed .npy header: key '%s' appears twice", p->name, key);
            return false;
        }
        *seen = true;
        if (hp_eat(p, ',')) continue;
        if (hp_eat(p, '}')) break;
        return hp_fail(p, "expected ',' or '}'");
    }
    hp_skip_ws(p);
    if (p->pos != p->len) return hp_fail(p, "unexpected text after the dict");
    const char *missing = !have_descr ? "descr" : !have_order ? "fortran_order" : !have_shape ? "shape" : NULL;
    if (missing) {
        sb_printf(p->err, "%s: malformed .npy header: key '%s' is missing", p->name, missing);
        return false;
    }
    if (!parse_descr(p, descr, &t->dtype)) return false;
    if (fortran) {
        sb_printf(p->err, "%s: fortran_order arrays are not supported; save with np.ascontiguousarray",
                  p->name);
        return false;
    }
    return true;
}

static uint32_t read_le(const unsigned char *b, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

bool npy_parse(const char *name, const unsigned char *buf, size_t len, TensorData *out, StrBuf *err)
{
    memset(out, 0, sizeof *out);
    if (len < sizeof NPY_MAGIC || memcmp(buf, NPY_MAGIC, sizeof NPY_MAGIC) != 0) {
        sb_printf(err, "%s: not a .npy file (bad magic; expected \\x93NUMPY)", name);
        return false;
    }
    if (len < NPY_PREAMBLE_V1) {
        sb_printf(err, "%s: file is truncated: %zu bytes, too short for a .npy header", name, len);
        return false;
    }
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0) {
        sb_printf(err, "%s: .npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                  name, major, minor);
        return false;
    }
    size_t pre = major == 1 ? NPY_PREAMBLE_V1 : NPY_PREAMBLE_V2;
    if (len < pre) {
        sb_printf(err, "%s: file is truncated: %zu bytes, too short for a .npy header", name, len);
        return false;
    }
    size_t hlen = read_le(buf + 8, major == 1 ? 2 : 4);
    if (hlen > len - pre) {
        sb_printf(err, "%s: file is truncated: header says %zu header bytes, found %zu", name,
                  hlen, len - pre);
        return false;
    }
    HeaderParser p = {name, (const char *)buf + pre, hlen, 0, err};
    if (!parse_header(&p, out)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    size_t count = 1, nbytes;
    for (int i = 0; i < out->rank; i++) {
        if (!ck_mul_size(count, (size_t)out->shape[i], &count)) goto overflow;
    }
    if (!dtype_storage_bytes(out->dtype, count, &nbytes)) goto overflow;
    size_t have = len - pre - hlen;
    if (have < nbytes) {
        sb_printf(err, "%s: file is truncated: expected %zu data bytes, found %zu", name, nbytes, have);
        memset(out, 0, sizeof *out);
        return false;
    }
    if (have > nbytes) {
        sb_printf(err, "%s: file has %zu bytes after the data (expected %zu data bytes, found %zu)",
                  name, have - nbytes, nbytes, have);
        memset(out, 0, sizeof *out);
        return false;
    }
    out->data = malloc(nbytes ? nbytes : 1);
    if (!out->data) {
        sb_printf(err, "%s: out of memory reading %zu bytes", name, nbytes);
        memset(out, 0, sizeof *out);
        return false;
    }
    memcpy(out->data, buf + pre + hlen, nbytes);
    out->nbytes = nbytes;
    if (out->dtype == DT_BOOL)
        for (size_t i = 0; i < nbytes; i++) ((unsigned char *)out->data)[i] = ((unsigned char *)out->data)[i] != 0;
    return true;

overflow:
    sb_printf(err, "%s: shape ", name);
    npy_format_shape(out, err);
    sb_puts(err, " is too large: its size overflows");
    memset(out, 0, sizeof *out);
    return false;
}

bool npy_read(const char *path, TensorData *out, StrBuf *err)
{
    size_t len;
    const char *why;
    char *buf = read_file_all(path, &len, &why);
    if (!buf) {
        memset(out, 0, sizeof *out);
        sb_printf(err, "%s: cannot read: %s", path, why);
        return false;
    }
    bool ok = npy_parse(path, (const unsigned char *)buf, len, out, err);
    free(buf);
    return ok;
}

/* ---- writing ----------------------------------------------------------------------------- */

bool npy_write(FILE *f, const TensorData *t)
{
    const char *descr = npy_descr(t->dtype);
    TD_ASSERT(descr);
    StrBuf h = {0};
    sb_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++) sb_printf(&h, "%lld, ", (long long)t->shape[i]);
    if (t->rank > 1) h.len -= 2;   /* NumPy writes (3,) but (3, 4) */
    else if (t->rank == 1) h.len -= 1;
    sb_puts(&h, "), }");
    size_t pre = h.len + 1 + NPY_PREAMBLE_V1 <= 65535 ? NPY_PREAMBLE_V1 : NPY_PREAMBLE_V2;
    while ((pre + h.len + 1) % NPY_ALIGN != 0) sb_putc(&h, ' ');
    sb_putc(&h, '\n');
    unsigned char preamble[NPY_PREAMBLE_V2];
    memcpy(preamble, NPY_MAGIC, sizeof NPY_MAGIC);
    preamble[6] = pre == NPY_PREAMBLE_V1 ? 1 : 2;
    preamble[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) preamble[8 + i] = (unsigned char)(h.len >> (8 * i));
    bool ok = fwrite(preamble, 1, pre, f) == pre && fwrite(h.data, 1, h.len, f) == h.len &&
              (t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, f) == t->nbytes);
    sb_free(&h);
    return ok;
}

bool npy_save(const char *path, const TensorData *t, StrBuf *err)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        sb_printf(err, "%s: cannot open for writing: %s", path, strerror(errno));
        return false;
    }
    bool ok = npy_write(f, t);
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) sb_printf(err, "%s: write failed: %s", path, strerror(e));
    return ok;
}

/* ---- conversions ------------------------------------------------------------------------- */

static bool alloc_like(const TensorData *a, DType dt, TensorData *out, StrBuf *err)
{
    memset(out, 0, sizeof *out);
    out->dtype = dt;
    out->rank = a->rank;
    memcpy(out->shape, a->shape, sizeof a->shape);
    if (!dtype_storage_bytes(dt, npy_count(a), &out->nbytes)) {
        sb_puts(err, "tensor size overflows");
        return false;
    }
    out->data = calloc(1, out->nbytes ? out->nbytes : 1);
    if (!out->data) {
        sb_printf(err, "out of memory allocating %zu bytes", out->nbytes);
        return false;
    }
    return true;
}

static bool is_npy_int(DType t)
{
    return t == DT_I8 || t == DT_U8 || t == DT_I16 || t == DT_I32 || t == DT_I64;
}

bool npy_to_param(const TensorData *a, DType want, const char *param, const char *file,
                  TensorData *out, StrBuf *err)
{
    size_t n = npy_count(a);
    bool packed = want == DT_I4 || want == DT_U4 || want == DT_I2;
    if (a->dtype == want) {
        if (!alloc_like(a, want, out, err)) return false;
        memcpy(out->data, a->data, a->nbytes);
        return true;
    }
    if (packed && is_npy_int(a->dtype)) {
        int64_t lo, hi;
        dtype_int_range(want, &lo, &hi);
        for (size_t i = 0; i < n; i++) {
            int64_t v = dtype_load_i(a->dtype, a->data, i);
            if (v < lo || v > hi) {
                sb_printf(err, "element ");
                npy_format_index(a, i, err);
                sb_printf(err, " of %s is %lld, outside the range of %s (%s: %lld to %lld)", file,
                          (long long)v, param, dtype_name(want), (long long)lo, (long long)hi);
                return false;
            }
        }
        if (!alloc_like(a, want, out, err)) return false;
        for (size_t i = 0; i < n; i++) dtype_store_i(want, out->data, i, dtype_load_i(a->dtype, a->data, i));
        return true;
    }
    if (want == DT_BF16 && a->dtype == DT_F32) {
        if (!alloc_like(a, want, out, err)) return false;
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, (const char *)a->data + 4 * i, 4);
            uint16_t h = f32_to_bf16_bits(f);
            memcpy((char *)out->data + 2 * i, &h, 2);
        }
        return true;
    }
    sb_printf(err, "%s is %s but %s holds %s (%s)", param, dtype_name(want), file,
              dtype_name(a->dtype), npy_descr(a->dtype));
    if (packed) sb_printf(err, "; %s parameters accept int8, uint8, int16, int32 or int64 arrays", dtype_name(want));
    else if (want == DT_BF16) sb_puts(err, "; bf16 parameters accept float32 arrays");
    return false;
}

bool npy_from_tensor(const TensorData *t, TensorData *out, StrBuf *err)
{
    if (npy_descr(t->dtype)) {
        if (!alloc_like(t, t->dtype, out, err)) return false;
        memcpy(out->data, t->data, t->nbytes);
        return true;
    }
    size_t n = npy_count(t);
    switch (t->dtype) {
    case DT_I4:
    case DT_I2:
    case DT_U4: {
        DType dt = t->dtype == DT_U4 ? DT_U8 : DT_I8;
        if (!alloc_like(t, dt, out, err)) return false;
        for (size_t i = 0; i < n; i++) dtype_store_i(dt, out->data, i, dtype_load_i(t->dtype, t->data, i));
        return true;
    }
    case DT_BF16:
        if (!alloc_like(t, DT_F32, out, err)) return false;
        for (size_t i = 0; i < n; i++) dtype_store_f(DT_F32, out->data, i, dtype_load_f(DT_BF16, t->data, i));
        return true;
    case DT_BOOL: case DT_I8: case DT_U8: case DT_I16: case DT_I32: case DT_I64:
    case DT_F16: case DT_F32: case DT_F64: case DT_COUNT:
        break;
    }
    TD_UNREACHABLE("npy_from_tensor: dtype without an npy form");
}
