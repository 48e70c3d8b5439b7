/* npy: reads and writes NumPy .npy files (format versions 1.0, 2.0 and 3.0) and converts
 * between them and kernel parameters.
 *
 * An array in memory is a TensorData (ir.h): row-major, contiguous, in the storage layout of
 * its dtype. The .npy dtypes are the nine with a NumPy equivalent: f64 f32 f16 i64 i32 i16
 * i8 u8 bool, little-endian, C order. The reader trusts nothing in the file: magic, version,
 * header length, header dict syntax, dtype, shape (with overflow checks) and the data length
 * against the file size are all validated, and every error names the file. Bool data is
 * normalised to 0/1 as NumPy reads it. Nothing here calls exit(). */
#ifndef TDSL_NPY_H
#define TDSL_NPY_H

#include <stdio.h>

#include "../ir/ir.h"

/* The NumPy descr string of an npy dtype ("<f4", "|b1", ...), NULL for dtypes .npy cannot
 * hold (bf16, i4, u4, i2). */
const char *npy_descr(DType t);

/* Parses a whole .npy file held in memory. `name` prefixes error messages. On success *out
 * owns a heap copy of the data (free with npy_free); on failure *out is zeroed and err
 * holds one line without a trailing newline. */
bool npy_parse(const char *name, const unsigned char *buf, size_t len, TensorData *out,
               StrBuf *err);
/* Reads and parses path. */
bool npy_read(const char *path, TensorData *out, StrBuf *err);

/* Writes t as .npy (version 1.0, or 2.0 when the header needs it). t->dtype must have an
 * npy_descr. Returns false on an I/O error (errno is set). */
bool npy_write(FILE *f, const TensorData *t);
/* Writes t to path directly (not atomically). */
bool npy_save(const char *path, const TensorData *t, StrBuf *err);

void npy_free(TensorData *t);

/* Converts an array read from `file` into the storage form of a kernel parameter `param`
 * of dtype `want`: an exact dtype match is copied; i4/u4/i2 accept int8/uint8/int16/int32/
 * int64 arrays whose values fit; bf16 accepts f32 (rounded to nearest even). Anything else
 * is an error like "x is f32 but x.npy holds i64 (<i8)". The shape is copied unchanged. */
bool npy_to_param(const TensorData *a, DType want, const char *param, const char *file,
                  TensorData *out, StrBuf *err);

/* Converts a kernel result into an array .npy can hold: npy dtypes are copied, i4/i2 become
 * int8, u4 becomes uint8, bf16 becomes f32. Fails only when out of memory. */
bool npy_from_tensor(const TensorData *t, TensorData *out, StrBuf *err);

/* Number of elements of a TensorData's shape (its dims were checked when it was made). */
size_t npy_count(const TensorData *t);

/* Appends the shape NumPy-style: `()`, `(3,)`, `(3, 4)`. */
void npy_format_shape(const TensorData *t, StrBuf *sb);

/* Appends `[i, j, k]`, the multi-index of flat element `flat`, to sb. */
void npy_format_index(const TensorData *t, size_t flat, StrBuf *sb);

#endif
