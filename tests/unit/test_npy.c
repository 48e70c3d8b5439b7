/* Tests of driver/npy.c: round trips of every dtype, the header forms NumPy writes, every
 * validation error of the reader, the parameter conversions, and that npycmp (the numeric
 * tests' comparison tool) really reports mismatches. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver/npy.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_npy_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    StrBuf cmd = {0};
    sb_printf(&cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(sb_cstr(&cmd)), 0);
    sb_free(&cmd);
}

TestSuite(npy, .init = make_tmpdir, .fini = remove_tmpdir);

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    TD_ASSERT(strlen(tmpdir) + strlen(name) + 2 <= sizeof buf[0]);
    strcpy(p, tmpdir);
    strcat(p, "/");
    strcat(p, name);
    return p;
}

static TensorData make(DType dt, int rank, const int64_t *shape)
{
    TensorData t = {.dtype = dt, .rank = rank};
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        t.shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    cr_assert(dtype_storage_bytes(dt, n, &t.nbytes));
    t.data = calloc(1, t.nbytes + 1);
    return t;
}

/* A whole .npy file built by hand: preamble of the given version, header text padded to
 * 64 bytes, then `ndata` data bytes. */
static size_t build_file(unsigned char *buf, int major, const char *header, size_t ndata)
{
    size_t pre = major == 1 ? 10 : 12, hl = strlen(header);
    size_t padded = hl + 1;
    while ((pre + padded) % 64) padded++;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(padded >> (8 * i));
    memcpy(buf + pre, header, hl);
    memset(buf + pre + hl, ' ', padded - hl - 1);
    buf[pre + padded - 1] = '\n';
    for (size_t i = 0; i < ndata; i++) buf[pre + padded + i] = (unsigned char)i;
    return pre + padded + ndata;
}

/* Parses a hand-built file and returns the error text ("" on success). */
static const char *parse_error(int major, const char *header, size_t ndata)
{
    static unsigned char buf[4096];
    static StrBuf err;
    sb_clear(&err);
    size_t len = build_file(buf, major, header, ndata);
    TensorData t;
    bool ok = npy_parse("x.npy", buf, len, &t, &err);
    if (ok) npy_free(&t);
    return ok ? "" : sb_cstr(&err);
}

Test(npy, round_trip_every_dtype)
{
    const DType types[] = {DT_F64, DT_F32, DT_F16, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL};
    const int64_t shape[] = {2, 3};
    for (int k = 0; k < TD_COUNTOF(types); k++) {
        TensorData t = make(types[k], 2, shape);
        for (size_t i = 0; i < 6; i++) {
            if (types[k] == DT_BOOL) dtype_store_i(DT_BOOL, t.data, i, (int64_t)(i % 2));
            else if (dtype_is_float(types[k])) dtype_store_f(types[k], t.data, i, (double)i - 2.5);
            else dtype_store_i(types[k], t.data, i, (int64_t)i * 7 - 20);
        }
        StrBuf err = {0};
        const char *path = tmp_path("rt.npy");
        cr_assert(npy_save(path, &t, &err), "%s", sb_cstr(&err));
        TensorData r;
        cr_assert(npy_read(path, &r, &err), "%s: %s", dtype_name(types[k]), sb_cstr(&err));
        cr_assert_eq(r.dtype, types[k]);
        cr_assert_eq(r.rank, 2);
        cr_assert_eq(r.shape[0], 2);
        cr_assert_eq(r.shape[1], 3);
        cr_assert_eq(r.nbytes, t.nbytes);
        cr_assert_eq(memcmp(r.data, t.data, t.nbytes), 0, "%s data differs", dtype_name(types[k]));
        npy_free(&r);
        npy_free(&t);
        sb_free(&err);
    }
}

Test(npy, writes_numpy_header_bytes)
{
    /* np.save of np.float32([1, 2, 3]): a 118-byte header so the data starts at byte 128. */
    const int64_t shape[] = {3};
    TensorData t = make(DT_F32, 1, shape);
    const char *path = tmp_path("h.npy");
    StrBuf err = {0};
    cr_assert(npy_save(path, &t, &err));
    size_t len;
    const char *why;
    char *buf = read_file_all(path, &len, &why);
    cr_assert_not_null(buf);
    cr_assert_eq(len, 128 + 12);
    cr_assert_eq(memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10), 0);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    cr_assert_eq(memcmp(buf + 10, dict, strlen(dict)), 0);
    for (size_t i = 10 + strlen(dict); i < 127; i++) cr_assert_eq(buf[i], ' ');
    cr_assert_eq(buf[127], '\n');
    free(buf);
    npy_free(&t);
}

Test(npy, zero_d_array)
{
    TensorData t = make(DT_F64, 0, NULL);
    dtype_store_f(DT_F64, t.data, 0, 2.5);
    const char *path = tmp_path("s.npy");
    StrBuf err = {0};
    cr_assert(npy_save(path, &t, &err));
    size_t len;
    const char *why;
    char *buf = read_file_all(path, &len, &why);
    cr_assert(strstr(buf + 10, "'shape': (), }") != NULL);
    free(buf);
    TensorData r;
    cr_assert(npy_read(path, &r, &err), "%s", sb_cstr(&err));
    cr_assert_eq(r.rank, 0);
    cr_assert_eq(r.nbytes, 8);
    cr_assert_eq(dtype_load_f(DT_F64, r.data, 0), 2.5);
    npy_free(&r);
    npy_free(&t);
    cr_assert_str_eq(parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4), "");
}

Test(npy, versions_2_and_3)
{
    const char *h = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }";
    cr_assert_str_eq(parse_error(2, h, 16), "");
    cr_assert_str_eq(parse_error(3, h, 16), "");
    cr_assert_str_eq(parse_error(4, h, 16),
                     "x.npy: .npy format version 4.0 is not supported (1.0, 2.0 and 3.0 are)");
}

Test(npy, lenient_header_forms)
{
    /* Key order, double quotes and a missing trailing comma are all valid Python. */
    cr_assert_str_eq(parse_error(1, "{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f2\"}", 8), "");
    cr_assert_str_eq(parse_error(1, "{'descr':'|u1','fortran_order':False,'shape':(1,2,3,)}", 6), "");
    cr_assert_str_eq(parse_error(1, "{'descr': '<i1', 'fortran_order': False, 'shape': (5,), }", 5), "");
}

Test(npy, bad_magic)
{
    StrBuf err = {0};
    TensorData t;
    const unsigned char junk[] = "PK\x03\x04 this is a zip file";
    cr_assert_not(npy_parse("x.npy", junk, sizeof junk, &t, &err));
    cr_assert_str_eq(sb_cstr(&err), "x.npy: not a .npy file (bad magic; expected \\x93NUMPY)");
    cr_assert_null(t.data);
    sb_free(&err);
}

Test(npy, truncated)
{
    const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    cr_assert_str_eq(parse_error(1, h, 20), "x.npy: file is truncated: expected 48 data bytes, found 20");
    cr_assert_str_eq(parse_error(1, h, 52),
                     "x.npy: file has 4 bytes after the data (expected 48 data bytes, found 52)");
    /* A header cut short. */
    unsigned char buf[256];
    size_t len = build_file(buf, 1, h, 0);
    StrBuf err = {0};
    TensorData t;
    cr_assert_not(npy_parse("x.npy", buf, 40, &t, &err));
    cr_assert_str_eq(sb_cstr(&err), "x.npy: file is truncated: header says 118 header bytes, found 30");
    sb_clear(&err);
    cr_assert_not(npy_parse("x.npy", buf, 9, &t, &err));
    cr_assert(strstr(sb_cstr(&err), "too short") != NULL);
    (void)len;
    sb_free(&err);
}

Test(npy, fortran_order)
{
    cr_assert_str_eq(parse_error(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 48),
                     "x.npy: fortran_order arrays are not supported; save with np.ascontiguousarray");
}

Test(npy, dtypes_not_supported)
{
    cr_assert_str_eq(parse_error(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12),
                     "x.npy: dtype '>f4' (big-endian) is not supported; save it little-endian "
                     "with a.astype('<f4')");
    const char *e = parse_error(1, "{'descr': '<u4', 'fortran_order': False, 'shape': (3,), }", 12);
    cr_assert(strncmp(e, "x.npy: dtype '<u4' is not supported; supported: <f8 (f64)", 57) == 0, "%s", e);
    e = parse_error(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 12);
    cr_assert_str_eq(e, "x.npy: structured dtypes are not supported");
    /* One-byte types have no byte order: NumPy writes '|', but '<' and '>' mean the same. */
    cr_assert_str_eq(parse_error(1, "{'descr': '>i1', 'fortran_order': False, 'shape': (3,), }", 3), "");
}

Test(npy, shape_overflow_and_rank)
{
    const char *e = parse_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0);
    cr_assert_str_eq(e, "x.npy: shape (4611686018427387904, 4) is too large: its size overflows");
    e = parse_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0);
    cr_assert_str_eq(e, "x.npy: shape dimension overflows 64 bits");
    /* Huge but representable: rejected against the file size, never allocated. */
    e = parse_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", 8);
    cr_assert_str_eq(e, "x.npy: file is truncated: expected 8000000000000 data bytes, found 8");
    e = parse_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 8);
    cr_assert_str_eq(e, "x.npy: arrays of more than 8 dimensions are not supported");
    e = parse_error(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", 8);
    cr_assert(strstr(e, "expected a non-negative integer in the shape") != NULL, "%s", e);
}

Test(npy, malformed_dicts)
{
    cr_assert(strstr(parse_error(1, "{'descr': '<f4', 'fortran_order': False}", 4), "key 'shape' is missing"));
    cr_assert(strstr(parse_error(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4),
                     "key 'descr' appears twice"));
    cr_assert(strstr(parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4),
                     "unexpected key 'x'"));
    cr_assert(strstr(parse_error(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", 4),
                     "expected True or False"));
    cr_assert(strstr(parse_error(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()} junk", 4),
                     "unexpected text after the dict"));
    cr_assert(strstr(parse_error(1, "{'descr: '<f4'", 4), "malformed .npy header"));
    cr_assert(strstr(parse_error(1, "", 4), "expected '{'"));
}

Test(npy, bool_is_normalised)
{
    const char *h = "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }";
    unsigned char buf[256];
    size_t len = build_file(buf, 1, h, 4);   /* data bytes 0, 1, 2, 3 */
    StrBuf err = {0};
    TensorData t;
    cr_assert(npy_parse("x.npy", buf, len, &t, &err));
    const unsigned char *d = t.data;
    cr_assert(d[0] == 0 && d[1] == 1 && d[2] == 1 && d[3] == 1);
    npy_free(&t);
}

Test(npy, convert_to_packed_params)
{
    const int64_t shape[] = {2, 3};
    TensorData a = make(DT_I16, 2, shape);
    const int64_t vals[] = {-8, 7, 0, 3, -1, 5};
    for (int i = 0; i < 6; i++) dtype_store_i(DT_I16, a.data, (size_t)i, vals[i]);
    TensorData p;
    StrBuf err = {0};
    cr_assert(npy_to_param(&a, DT_I4, "w", "w.npy", &p, &err), "%s", sb_cstr(&err));
    cr_assert_eq(p.dtype, DT_I4);
    cr_assert_eq(p.nbytes, 3);
    for (int i = 0; i < 6; i++) cr_assert_eq(dtype_load_i(DT_I4, p.data, (size_t)i), vals[i]);
    /* Back to .npy: unpacked int8 with the same values. */
    TensorData back;
    cr_assert(npy_from_tensor(&p, &back, &err));
    cr_assert_eq(back.dtype, DT_I8);
    for (int i = 0; i < 6; i++) cr_assert_eq(((int8_t *)back.data)[i], vals[i]);
    npy_free(&back);
    npy_free(&p);

    cr_assert_not(npy_to_param(&a, DT_I2, "w", "w.npy", &p, &err));
    cr_assert_str_eq(sb_cstr(&err), "element [0, 0] of w.npy is -8, outside the range of w (i2: -2 to 1)");
    sb_clear(&err);
    cr_assert_not(npy_to_param(&a, DT_U4, "w", "w.npy", &p, &err));
    cr_assert_str_eq(sb_cstr(&err), "element [0, 0] of w.npy is -8, outside the range of w (u4: 0 to 15)");
    sb_clear(&err);
    dtype_store_i(DT_I16, a.data, 0, 0);
    dtype_store_i(DT_I16, a.data, 4, 0);
    cr_assert(npy_to_param(&a, DT_U4, "w", "w.npy", &p, &err), "%s", sb_cstr(&err));
    cr_assert(npy_from_tensor(&p, &back, &err));
    cr_assert_eq(back.dtype, DT_U8);
    cr_assert_eq(((uint8_t *)back.data)[1], 7);
    npy_free(&back);
    npy_free(&p);
    npy_free(&a);
    sb_free(&err);
}

Test(npy, convert_bf16_and_mismatch)
{
    const int64_t shape[] = {3};
    TensorData a = make(DT_F32, 1, shape);
    float v[] = {1.0f, 1.00390625f + 1e-7f, -3.5f};  /* the middle one rounds to nearest even */
    memcpy(a.data, v, sizeof v);
    TensorData p;
    StrBuf err = {0};
    cr_assert(npy_to_param(&a, DT_BF16, "x", "x.npy", &p, &err));
    cr_assert_eq(p.nbytes, 6);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(((uint16_t *)p.data)[i], f32_to_bf16_bits(v[i]));
    cr_assert_eq(dtype_load_f(DT_BF16, p.data, 2), -3.5);
    TensorData back;
    cr_assert(npy_from_tensor(&p, &back, &err));
    cr_assert_eq(back.dtype, DT_F32);
    cr_assert_eq(((float *)back.data)[0], 1.0f);
    npy_free(&back);
    npy_free(&p);

    cr_assert_not(npy_to_param(&a, DT_I64, "x", "x.npy", &p, &err));
    cr_assert_str_eq(sb_cstr(&err), "x is i64 but x.npy holds f32 (<f4)");
    sb_clear(&err);
    cr_assert_not(npy_to_param(&a, DT_I4, "w", "w.npy", &p, &err));
    cr_assert_str_eq(sb_cstr(&err), "w is i4 but w.npy holds f32 (<f4); i4 parameters accept int8, "
                                    "uint8, int16, int32 or int64 arrays");
    sb_clear(&err);
    a.dtype = DT_I32;
    cr_assert_not(npy_to_param(&a, DT_BF16, "x", "x.npy", &p, &err));
    cr_assert_str_eq(sb_cstr(&err), "x is bf16 but x.npy holds i32 (<i4); bf16 parameters accept float32 arrays");
    npy_free(&a);
    sb_free(&err);
}

/* ---- npycmp, the numeric tests' comparison tool ---------------------------------------------- */

/* Runs npycmp on two files of the scratch directory; returns its exit status. */
static int run_npycmp(const char *actual, const char *expected, const char *extra)
{
    StrBuf cmd = {0};
    sb_printf(&cmd, "'%s' '%s/%s' '%s/%s' %s >/dev/null 2>&1", NPYCMP_PATH, tmpdir, actual,
              tmpdir, expected, extra);
    int st = system(sb_cstr(&cmd));
    sb_free(&cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void save_f32(const char *name, const float *v, int n)
{
    const int64_t shape[] = {n};
    TensorData t = make(DT_F32, 1, shape);
    memcpy(t.data, v, sizeof(float) * (size_t)n);
    StrBuf err = {0};
    cr_assert(npy_save(tmp_path(name), &t, &err));
    npy_free(&t);
}

Test(npy, npycmp_catches_mismatch)
{
    const float a[] = {1.0f, 2.0f, NAN, -4.0f};
    const float close[] = {1.0f, 2.0f + 1e-6f, NAN, -4.0f};
    const float far[] = {1.0f, 2.5f, NAN, -4.0f};
    const float nan_vs_num[] = {1.0f, 2.0f, 3.0f, -4.0f};
    save_f32("a.npy", a, 4);
    save_f32("close.npy", close, 4);
    save_f32("far.npy", far, 4);
    save_f32("nan.npy", nan_vs_num, 4);
    save_f32("short.npy", a, 3);
    cr_assert_eq(run_npycmp("a.npy", "a.npy", ""), 0, "identical files (NaN == NaN) must compare equal");
    cr_assert_eq(run_npycmp("close.npy", "a.npy", "--rtol 1e-5 --atol 0"), 0);
    cr_assert_eq(run_npycmp("close.npy", "a.npy", "--rtol 1e-9 --atol 0"), 1,
                 "a difference over the tolerance must fail");
    cr_assert_eq(run_npycmp("far.npy", "a.npy", ""), 1);
    cr_assert_eq(run_npycmp("nan.npy", "a.npy", ""), 1, "a number where NaN is expected must fail");
    cr_assert_eq(run_npycmp("short.npy", "a.npy", ""), 1, "a shape mismatch must fail");
    cr_assert_eq(run_npycmp("missing.npy", "a.npy", ""), 2, "an unreadable file is a usage error");

    /* Integer references must match exactly, whatever the tolerances. */
    const int64_t shape[] = {2};
    TensorData i1 = make(DT_I32, 1, shape), i2 = make(DT_I64, 1, shape);
    ((int32_t *)i1.data)[0] = 5, ((int32_t *)i1.data)[1] = 1000;
    ((int64_t *)i2.data)[0] = 5, ((int64_t *)i2.data)[1] = 1001;
    StrBuf err = {0};
    cr_assert(npy_save(tmp_path("i1.npy"), &i1, &err) && npy_save(tmp_path("i2.npy"), &i2, &err));
    cr_assert_eq(run_npycmp("i1.npy", "i1.npy", ""), 0);
    cr_assert_eq(run_npycmp("i1.npy", "i2.npy", "--rtol 0.5 --atol 10"), 1,
                 "integer outputs must match exactly");
    npy_free(&i1);
    npy_free(&i2);
}
