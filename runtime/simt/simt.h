/* simt.h: CUDA C++ device code compiled for the host, for the SIMT emulator.
 *
 *     g++ -std=c++17 -O1 -fPIC -shared -include runtime/simt/simt.h -x c++ kernel.cu
 *
 * (loader.c runs exactly that, plus the entry stubs it appends.) Each CUDA thread of a block
 * runs as one fiber on the launching OS thread; fiber.c schedules them, round-robin between
 * barriers. This header turns the CUDA constructs into C++ and into calls to the runtime
 * through the SimtApi table (simt_abi.h) the loader binds after dlopen:
 *
 *   threadIdx, blockIdx, blockDim, gridDim   the running fiber's values, by value
 *   __syncthreads() and its _count/_and/_or  a barrier of the fibers of the block
 *   __shfl*_sync, __ballot/__any/__all_sync,  a rendezvous of the lanes named in the mask:
 *   __syncwarp, __match_any, __reduce_*_sync  each posts its value, the last one computes all
 *   atomics                                   plain read-modify-writes: fibers never preempt
 *                                             one another, and a launch runs on one OS thread
 *   __half, __nv_bfloat16                     16-bit patterns, conversions round to nearest
 *                                             even (NaN becomes the canonical 0x7fff, as on
 *                                             the GPU); arithmetic in float, rounded once
 *   math (expf, rsqrtf, __fdividef, ...)      libm; the fast intrinsics are the exact ones
 *
 * __shared__ is `static thread_local`. Invariant that makes this correct: the fibers of one
 * block all run on the OS thread that launched the kernel, and a launch runs its blocks one
 * after another, never two at a time; so one object per OS thread is exactly "one object per
 * block, seen by all its threads". Two OS threads launching kernels of the same module get
 * their own copies. Like CUDA shared memory it is not initialised: the runtime fills this
 * library's thread-local storage (which holds only the __shared__ variables) with 0xff bytes
 * (NaN floats, -1 integers) before every block, so a block that reads shared memory before
 * writing it sees garbage, as on a GPU, rather than the previous block's data. Hence: no
 * other thread_local variables, and no __shared__ type with a non-trivial constructor.
 * `extern __shared__ T name[];` (dynamic shared memory) is rewritten by the loader, inside a
 * function, to `T *const name = (T *)simt_dynamic_shared();`.
 *
 * Line numbers: barriers and warp operations pass __LINE__ so that a deadlock report names
 * the lines of the generated source where threads wait. */
#ifndef TDSL_SIMT_H
#define TDSL_SIMT_H

#include <cassert>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <math.h>
#include <type_traits>
#include <utility>

#include "simt_abi.h"

/* ---- qualifiers ------------------------------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __shared__ static thread_local
/* __restrict__ is a g++ keyword already. */

static const SimtApi *simt_api_;  /* set by simt_module_bind (appended by the loader) */

/* ---- vector types ----------------------------------------------------------------------------- */

#define SIMT_VEC1(N, T, A)                                                                       \
    struct __attribute__((aligned(A))) N { T x; };                                               \
    inline N make_##N(T x) { N v; v.x = x; return v; }
#define SIMT_VEC2(N, T, A)                                                                       \
    struct __attribute__((aligned(A))) N { T x, y; };                                            \
    inline N make_##N(T x, T y) { N v; v.x = x; v.y = y; return v; }
#define SIMT_VEC3(N, T, A)                                                                       \
    struct __attribute__((aligned(A))) N { T x, y, z; };                                         \
    inline N make_##N(T x, T y, T z) { N v; v.x = x; v.y = y; v.z = z; return v; }
#define SIMT_VEC4(N, T, A)                                                                       \
    struct __attribute__((aligned(A))) N { T x, y, z, w; };                                      \
    inline N make_##N(T x, T y, T z, T w) { N v; v.x = x; v.y = y; v.z = z; v.w = w; return v; }
/* X(element type, name prefix, alignment of the 1-, 2-, 3- and 4-vector), as CUDA lays them out */
#define SIMT_VECTOR_TYPES(X)                           \
    X(signed char, char, 1, 2, 1, 4)                   \
    X(unsigned char, uchar, 1, 2, 1, 4)                \
    X(short, short, 2, 4, 2, 8)                        \
    X(unsigned short, ushort, 2, 4, 2, 8)              \
    X(int, int, 4, 8, 4, 16)                           \
    X(unsigned int, uint, 4, 8, 4, 16)                 \
    X(long long, longlong, 8, 16, 8, 16)               \
    X(unsigned long long, ulonglong, 8, 16, 8, 16)     \
    X(float, float, 4, 8, 4, 16)                       \
    X(double, double, 8, 16, 8, 16)
#define SIMT_VECS(T, P, A1, A2, A3, A4) \
    SIMT_VEC1(P##1, T, A1) SIMT_VEC2(P##2, T, A2) SIMT_VEC3(P##3, T, A3) SIMT_VEC4(P##4, T, A4)
SIMT_VECTOR_TYPES(SIMT_VECS)
#undef SIMT_VECS
#undef SIMT_VECTOR_TYPES
#undef SIMT_VEC1
#undef SIMT_VEC2
#undef SIMT_VEC3
#undef SIMT_VEC4

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    operator uint3() const { return make_uint3(x, y, z); }
};

/* ---- the running thread ----------------------------------------------------------------------- */

static constexpr int warpSize = 32;

namespace simt {
inline const SimtThreadInfo *self() { return simt_api_->self(); }
inline uint3 idx(const SimtDim3 &d) { return make_uint3(d.x, d.y, d.z); }
inline dim3 dim(const SimtDim3 &d) { return dim3(d.x, d.y, d.z); }
}  // namespace simt

#define threadIdx (::simt::idx(::simt::self()->thread_idx))
#define blockIdx (::simt::idx(::simt::self()->block_idx))
#define blockDim (::simt::dim(::simt::self()->block_dim))
#define gridDim (::simt::dim(::simt::self()->grid_dim))

/* ---- barriers and warp operations -------------------------------------------------------------- */

namespace simt {
template <class T> inline uint64_t to_bits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "warp operations exchange values of at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    return b;
}
template <class T> inline T from_bits(uint64_t b)
{
    T v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}
template <class T> inline T shfl(int op, int line, unsigned mask, T var, int arg, int width = warpSize)
{
    return from_bits<T>(simt_api_->warp(op, mask, to_bits(var), arg, width, line));
}
inline unsigned vote(int op, int line, unsigned mask, int pred)
{
    return (unsigned)simt_api_->warp(op, mask, pred != 0, 0, warpSize, line);
}
template <class T> inline unsigned match_any(int line, unsigned mask, T value)
{
    return (unsigned)simt_api_->warp(SIMT_MATCH_ANY, mask, to_bits(value), 0, warpSize, line);
}
inline unsigned reduce(int op, int line, unsigned mask, unsigned v)
{
    return (unsigned)simt_api_->warp(op, mask, v, 0, warpSize, line);
}
struct SyncWarp {  /* __syncwarp() and __syncwarp(mask): a call with the line bound */
    int line;
    void operator()(unsigned mask = 0xffffffffu) const { simt_api_->warp(SIMT_WARP_SYNC, mask, 0, 0, warpSize, line); }
};
inline unsigned reduce_min(int line, unsigned mask, unsigned v) { return reduce(SIMT_REDUCE_MIN_U, line, mask, v); }
inline int reduce_min(int line, unsigned mask, int v) { return (int)reduce(SIMT_REDUCE_MIN_S, line, mask, (unsigned)v); }
inline unsigned reduce_max(int line, unsigned mask, unsigned v) { return reduce(SIMT_REDUCE_MAX_U, line, mask, v); }
inline int reduce_max(int line, unsigned mask, int v) { return (int)reduce(SIMT_REDUCE_MAX_S, line, mask, (unsigned)v); }
inline unsigned reduce_add(int line, unsigned mask, unsigned v) { return reduce(SIMT_REDUCE_ADD, line, mask, v); }
inline int reduce_add(int line, unsigned mask, int v) { return (int)reduce(SIMT_REDUCE_ADD, line, mask, (unsigned)v); }
}  // namespace simt

#define __syncthreads() ((void)simt_api_->barrier(SIMT_BAR_SYNC, 0, __LINE__))
#define __syncthreads_count(p) simt_api_->barrier(SIMT_BAR_COUNT, (p) != 0, __LINE__)
#define __syncthreads_and(p) simt_api_->barrier(SIMT_BAR_AND, (p) != 0, __LINE__)
#define __syncthreads_or(p) simt_api_->barrier(SIMT_BAR_OR, (p) != 0, __LINE__)
#define __syncwarp(...) ::simt::SyncWarp{__LINE__}(__VA_ARGS__)
#define __shfl_sync(...) ::simt::shfl(SIMT_SHFL_IDX, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::simt::shfl(SIMT_SHFL_UP, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::simt::shfl(SIMT_SHFL_DOWN, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::simt::shfl(SIMT_SHFL_XOR, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::simt::vote(SIMT_VOTE_BALLOT, __LINE__, mask, pred)
#define __any_sync(mask, pred) ((int)::simt::vote(SIMT_VOTE_ANY, __LINE__, mask, pred))
#define __all_sync(mask, pred) ((int)::simt::vote(SIMT_VOTE_ALL, __LINE__, mask, pred))
#define __uni_sync(mask, pred) ((int)::simt::vote(SIMT_VOTE_UNI, __LINE__, mask, pred))
#define __match_any_sync(mask, value) ::simt::match_any(__LINE__, mask, value)
#define __reduce_add_sync(mask, v) ::simt::reduce_add(__LINE__, mask, v)
#define __reduce_min_sync(mask, v) ::simt::reduce_min(__LINE__, mask, v)
#define __reduce_max_sync(mask, v) ::simt::reduce_max(__LINE__, mask, v)
#define __reduce_and_sync(mask, v) ::simt::reduce(SIMT_REDUCE_AND, __LINE__, mask, v)
#define __reduce_or_sync(mask, v) ::simt::reduce(SIMT_REDUCE_OR, __LINE__, mask, v)
#define __reduce_xor_sync(mask, v) ::simt::reduce(SIMT_REDUCE_XOR, __LINE__, mask, v)
inline unsigned __activemask() { return simt_api_->active_mask(); }

#define __trap() simt_api_->trap("__trap() called", __LINE__)
#define __brkpt() simt_api_->trap("__brkpt() called", __LINE__)
#undef assert
#define assert(e) ((e) ? (void)0 : simt_api_->trap("assertion '" #e "' failed", __LINE__))

inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
inline void __nanosleep(unsigned) {}
inline long long clock64() { return simt_api_->clock(); }

inline void *simt_dynamic_shared() { return simt_api_->dynamic_shared(); }

/* ---- loads and stores with cache hints: plain accesses --------------------------------------------- */

template <class T> inline T __ldg(const T *p) { return *p; }
template <class T> inline T __ldca(const T *p) { return *p; }
template <class T> inline T __ldcg(const T *p) { return *p; }
template <class T> inline T __ldcs(const T *p) { return *p; }
template <class T> inline T __ldlu(const T *p) { return *p; }
template <class T> inline T __ldcv(const T *p) { return *p; }
template <class T> inline void __stwb(T *p, T v) { *p = v; }
template <class T> inline void __stcg(T *p, T v) { *p = v; }
template <class T> inline void __stcs(T *p, T v) { *p = v; }
template <class T> inline void __stwt(T *p, T v) { *p = v; }

/* ---- atomics: read-modify-writes, never interrupted (see the top of the file) ---------------------- */

namespace simt {
template <class T, class F> inline T rmw(T *p, F f)
{
    T old = *p;
    *p = f(old);
    return old;
}
template <class T> inline T wrap_add(T a, T b)  /* two's complement, as on the GPU */
{
    typedef typename std::make_unsigned<T>::type U;
    return (T)((U)a + (U)b);
}
}  // namespace simt

#define SIMT_ATOMIC_INT(T)                                                                         \
    inline T atomicAdd(T *p, T v) { return simt::rmw(p, [v](T o) { return simt::wrap_add(o, v); }); } \
    inline T atomicSub(T *p, T v) { return simt::rmw(p, [v](T o) { return simt::wrap_add(o, (T)(0 - v)); }); } \
    inline T atomicExch(T *p, T v) { return simt::rmw(p, [v](T) { return v; }); }                  \
    inline T atomicMin(T *p, T v) { return simt::rmw(p, [v](T o) { return v < o ? v : o; }); }     \
    inline T atomicMax(T *p, T v) { return simt::rmw(p, [v](T o) { return v > o ? v : o; }); }     \
    inline T atomicAnd(T *p, T v) { return simt::rmw(p, [v](T o) { return (T)(o & v); }); }        \
    inline T atomicOr(T *p, T v) { return simt::rmw(p, [v](T o) { return (T)(o | v); }); }         \
    inline T atomicXor(T *p, T v) { return simt::rmw(p, [v](T o) { return (T)(o ^ v); }); }        \
    inline T atomicCAS(T *p, T cmp, T v) { return simt::rmw(p, [cmp, v](T o) { return o == cmp ? v : o; }); }
SIMT_ATOMIC_INT(int)
SIMT_ATOMIC_INT(unsigned int)
SIMT_ATOMIC_INT(long long)
SIMT_ATOMIC_INT(unsigned long long)
#undef SIMT_ATOMIC_INT
inline unsigned short atomicCAS(unsigned short *p, unsigned short cmp, unsigned short v)
{
    return simt::rmw(p, [cmp, v](unsigned short o) { return o == cmp ? v : o; });
}
inline float atomicAdd(float *p, float v) { return simt::rmw(p, [v](float o) { return o + v; }); }
inline double atomicAdd(double *p, double v) { return simt::rmw(p, [v](double o) { return o + v; }); }
inline float atomicExch(float *p, float v) { return simt::rmw(p, [v](float) { return v; }); }
inline unsigned atomicInc(unsigned *p, unsigned v)
{
    return simt::rmw(p, [v](unsigned o) { return o >= v ? 0u : o + 1; });
}
inline unsigned atomicDec(unsigned *p, unsigned v)
{
    return simt::rmw(p, [v](unsigned o) { return (o == 0 || o > v) ? v : o - 1; });
}
#define SIMT_ATOMIC_SCOPES(name) \
    template <class... A> inline auto name##_block(A... a) { return name(a...); } \
    template <class... A> inline auto name##_system(A... a) { return name(a...); }
SIMT_ATOMIC_SCOPES(atomicAdd)
SIMT_ATOMIC_SCOPES(atomicSub)
SIMT_ATOMIC_SCOPES(atomicExch)
SIMT_ATOMIC_SCOPES(atomicMin)
SIMT_ATOMIC_SCOPES(atomicMax)
SIMT_ATOMIC_SCOPES(atomicAnd)
SIMT_ATOMIC_SCOPES(atomicOr)
SIMT_ATOMIC_SCOPES(atomicXor)
SIMT_ATOMIC_SCOPES(atomicCAS)
#undef SIMT_ATOMIC_SCOPES

/* ---- 16-bit floats ------------------------------------------------------------------------------- */

namespace simt {
/* Round to nearest even from a double (a float converts to double exactly, so this is also
 * the float conversion): the rounded bits of a format with `mant_bits` explicit mantissa bits
 * and `exp_bits` exponent bits; NaN becomes the canonical 0x7fff. */
inline uint16_t round_to_16(double d, int exp_bits, int mant_bits)
{
    uint64_t x;
    std::memcpy(&x, &d, sizeof x);
    uint16_t sign = (uint16_t)((x >> 48) & 0x8000);
    int exp = (int)((x >> 52) & 0x7ff);
    uint64_t mant = x & 0xfffffffffffffull;
    int bias = (1 << (exp_bits - 1)) - 1, max_e = (1 << exp_bits) - 1;
    uint16_t inf = (uint16_t)(max_e << mant_bits);
    if (exp == 0x7ff) return mant ? (uint16_t)0x7fff : (uint16_t)(sign | inf);
    if (exp == 0) return sign;  /* double subnormals are far below the 16-bit formats' range */
    int e = exp - 1023 + bias;
    if (e >= max_e) return (uint16_t)(sign | inf);
    uint64_t m;
    int shift;
    if (e <= 0) {  /* a subnormal result: the implicit bit joins the mantissa */
        shift = 52 - mant_bits + 1 - e;
        if (shift > 53) return sign;  /* below half the smallest subnormal */
        m = mant | (1ull << 52);
    } else {
        shift = 52 - mant_bits;
        m = ((uint64_t)e << 52) | mant;  /* a carry out of the mantissa bumps the exponent */
    }
    uint64_t q = m >> shift, rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
}
inline float widen_16(uint16_t h, int exp_bits, int mant_bits)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int max_e = (1 << exp_bits) - 1, bias = (1 << (exp_bits - 1)) - 1;
    int e = (h >> mant_bits) & max_e;
    uint32_t mant = h & ((1u << mant_bits) - 1);
    uint32_t bits;
    if (e == max_e) {
        bits = sign | 0x7f800000u | (mant << (23 - mant_bits));
    } else if (e == 0) {
        float v = std::ldexp((float)mant, 1 - bias - mant_bits);  /* subnormal or zero: exact */
        return sign ? -v : v;
    } else {
        bits = sign | ((uint32_t)(e - bias + 127) << 23) | (mant << (23 - mant_bits));
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
inline uint16_t f64_to_f16(double d) { return round_to_16(d, 5, 10); }
inline uint16_t f64_to_bf16(double d) { return round_to_16(d, 8, 7); }
inline float f16_to_f32(uint16_t h) { return widen_16(h, 5, 10); }
inline float bf16_to_f32(uint16_t h) { return widen_16(h, 8, 7); }
}  // namespace simt

struct __half_raw { unsigned short x; };
struct __nv_bfloat16_raw { unsigned short x; };

/* As in cuda_fp16.h: converting constructors and operator float, arithmetic on two halves.
 * (Mixed `half + float` is ambiguous there too; convert explicitly.) */
#define SIMT_FLOAT16(T, RAW, TO, FROM)                                                             \
    struct T {                                                                                     \
        unsigned short __x;                                                                        \
        T() = default;                                                                             \
        constexpr T(RAW r) : __x(r.x) {}                                                           \
        T(float f) : __x(simt::TO(f)) {}                                                           \
        T(double d) : __x(simt::TO(d)) {}                                                          \
        T(int i) : __x(simt::TO((double)i)) {}                                                     \
        T(unsigned i) : __x(simt::TO((double)i)) {}                                                \
        T(long long i) : __x(simt::TO((double)i)) {}                                               \
        T(unsigned long long i) : __x(simt::TO((double)i)) {}                                      \
        operator float() const { return simt::FROM(__x); }                                         \
        operator RAW() const { RAW r; r.x = __x; return r; }                                       \
        T &operator+=(const T &o) { return *this = T(float(*this) + float(o)); }                   \
        T &operator-=(const T &o) { return *this = T(float(*this) - float(o)); }                   \
        T &operator*=(const T &o) { return *this = T(float(*this) * float(o)); }                   \
        T &operator/=(const T &o) { return *this = T(float(*this) / float(o)); }                   \
    };                                                                                             \
    inline T operator+(const T &a, const T &b) { return T(float(a) + float(b)); }                  \
    inline T operator-(const T &a, const T &b) { return T(float(a) - float(b)); }                  \
    inline T operator*(const T &a, const T &b) { return T(float(a) * float(b)); }                  \
    inline T operator/(const T &a, const T &b) { return T(float(a) / float(b)); }                  \
    inline T operator-(const T &a) { T r = a; r.__x ^= 0x8000; return r; }                         \
    inline T operator+(const T &a) { return a; }                                                   \
    inline bool operator==(const T &a, const T &b) { return float(a) == float(b); }                \
    inline bool operator!=(const T &a, const T &b) { return float(a) != float(b); }                \
    inline bool operator<(const T &a, const T &b) { return float(a) < float(b); }                  \
    inline bool operator>(const T &a, const T &b) { return float(a) > float(b); }                  \
    inline bool operator<=(const T &a, const T &b) { return float(a) <= float(b); }                \
    inline bool operator>=(const T &a, const T &b) { return float(a) >= float(b); }
SIMT_FLOAT16(__half, __half_raw, f64_to_f16, f16_to_f32)
SIMT_FLOAT16(__nv_bfloat16, __nv_bfloat16_raw, f64_to_bf16, bf16_to_f32)
#undef SIMT_FLOAT16
static_assert(sizeof(__half) == 2 && std::is_trivially_default_constructible<__half>::value,
              "__half must be a trivial 16-bit type (it may be __shared__)");

struct __align__(4) __half2 { __half x, y; };
struct __align__(4) __nv_bfloat162 { __nv_bfloat16 x, y; };
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

/* Functions over both 16-bit types; S is the type, P its name part (half or bfloat16). */
#define SIMT_F16_FUNCS(S, S2, P)                                                                   \
    inline S __float2##P(float f) { return S(f); }                                                 \
    inline S __float2##P##_rn(float f) { return S(f); }                                            \
    inline S __double2##P(double d) { return S(d); }                                               \
    inline float __##P##2float(S h) { return float(h); }                                           \
    inline unsigned short __##P##_as_ushort(S h) { return h.__x; }                                 \
    inline short __##P##_as_short(S h) { return (short)h.__x; }                                    \
    inline S __ushort_as_##P(unsigned short u) { S h; h.__x = u; return h; }                       \
    inline S __short_as_##P(short u) { S h; h.__x = (unsigned short)u; return h; }                 \
    inline S __int2##P##_rn(int i) { return S(i); }                                               \
    inline S __uint2##P##_rn(unsigned i) { return S(i); }                                          \
    inline S __ll2##P##_rn(long long i) { return S(i); }                                           \
    inline S2 __float2##P##2_rn(float f) { S2 r; r.x = S(f); r.y = S(f); return r; }              \
    inline S2 __floats2##P##2_rn(float a, float b) { S2 r; r.x = S(a); r.y = S(b); return r; }    \
    inline float2 __##P##22float2(S2 h) { return make_float2(float(h.x), float(h.y)); }           \
    inline float __low2float(S2 h) { return float(h.x); }                                          \
    inline float __high2float(S2 h) { return float(h.y); }                                         \
    inline S __low2##P(S2 h) { return h.x; }                                                       \
    inline S __high2##P(S2 h) { return h.y; }                                                      \
    inline S2 __halves2##P##2(S a, S b) { S2 r; r.x = a; r.y = b; return r; }                     \
    inline S2 __##P##2##P##2(S a) { S2 r; r.x = a; r.y = a; return r; }                           \
    inline S __hadd(S a, S b) { return a + b; }                                                    \
    inline S __hsub(S a, S b) { return a - b; }                                                    \
    inline S __hmul(S a, S b) { return a * b; }                                                    \
    inline S __hdiv(S a, S b) { return a / b; }                                                    \
    inline S __hfma(S a, S b, S c) { return S(std::fma((double)float(a), (double)float(b), (double)float(c))); } \
    inline S __hneg(S a) { return -a; }                                                            \
    inline S __habs(S a) { S r = a; r.__x &= 0x7fff; return r; }                                   \
    inline S __hmax(S a, S b) { return S(fmaxf(float(a), float(b))); }                             \
    inline S __hmin(S a, S b) { return S(fminf(float(a), float(b))); }                             \
    inline bool __heq(S a, S b) { return a == b; }                                                 \
    inline bool __hne(S a, S b) { return a != b; }                                                 \
    inline bool __hlt(S a, S b) { return a < b; }                                                  \
    inline bool __hle(S a, S b) { return a <= b; }                                                 \
    inline bool __hgt(S a, S b) { return a > b; }                                                  \
    inline bool __hge(S a, S b) { return a >= b; }                                                 \
    inline bool __hisnan(S a) { return std::isnan(float(a)); }                                     \
    inline int __hisinf(S a) { float f = float(a); return std::isinf(f) ? (f < 0 ? -1 : 1) : 0; }  \
    inline S2 __hadd2(S2 a, S2 b) { S2 r; r.x = a.x + b.x; r.y = a.y + b.y; return r; }           \
    inline S2 __hsub2(S2 a, S2 b) { S2 r; r.x = a.x - b.x; r.y = a.y - b.y; return r; }           \
    inline S2 __hmul2(S2 a, S2 b) { S2 r; r.x = a.x * b.x; r.y = a.y * b.y; return r; }           \
    inline S2 __hfma2(S2 a, S2 b, S2 c) { S2 r; r.x = __hfma(a.x, b.x, c.x); r.y = __hfma(a.y, b.y, c.y); return r; } \
    inline S hexp(S a) { return S(expf(float(a))); }                                               \
    inline S hexp2(S a) { return S(exp2f(float(a))); }                                             \
    inline S hlog(S a) { return S(logf(float(a))); }                                               \
    inline S hlog2(S a) { return S(log2f(float(a))); }                                             \
    inline S hsqrt(S a) { return S(sqrtf(float(a))); }                                             \
    inline S hrsqrt(S a) { return S(1.0f / sqrtf(float(a))); }                                     \
    inline S hrcp(S a) { return S(1.0f / float(a)); }                                              \
    inline S hsin(S a) { return S(sinf(float(a))); }                                               \
    inline S hcos(S a) { return S(cosf(float(a))); }                                               \
    inline S htanh(S a) { return S(tanhf(float(a))); }                                             \
    inline S hfloor(S a) { return S(floorf(float(a))); }                                           \
    inline S hceil(S a) { return S(ceilf(float(a))); }                                             \
    inline S htrunc(S a) { return S(truncf(float(a))); }                                           \
    inline S hrint(S a) { return S(rintf(float(a))); }
SIMT_F16_FUNCS(__half, __half2, half)
SIMT_F16_FUNCS(__nv_bfloat16, __nv_bfloat162, bfloat16)
#undef SIMT_F16_FUNCS
inline __nv_bfloat16 __float2bfloat16_rz(float f)
{
    uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(0x7fff);
    return __ushort_as_bfloat16((unsigned short)(b >> 16));
}
inline __half atomicAdd(__half *p, __half v) { return simt::rmw(p, [v](__half o) { return o + v; }); }
inline __nv_bfloat16 atomicAdd(__nv_bfloat16 *p, __nv_bfloat16 v)
{
    return simt::rmw(p, [v](__nv_bfloat16 o) { return o + v; });
}

/* ---- conversions and bit casts --------------------------------------------------------------------- */

namespace simt {
/* Float to integer as the GPU converts: saturating, NaN to 0. */
template <class I> inline I saturate(double v)
{
    if (v != v) return 0;
    if (v <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (v >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)v;
}
template <class To, class From> inline To bit_cast(From f)
{
    static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
    To t;
    std::memcpy(&t, &f, sizeof t);
    return t;
}
}  // namespace simt

#define SIMT_F2I(name, T, I)                                                                      \
    inline I __##name##_rn(T v) { return simt::saturate<I>(std::nearbyint((double)v)); }          \
    inline I __##name##_rz(T v) { return simt::saturate<I>(std::trunc((double)v)); }              \
    inline I __##name##_rd(T v) { return simt::saturate<I>(std::floor((double)v)); }              \
    inline I __##name##_ru(T v) { return simt::saturate<I>(std::ceil((double)v)); }
SIMT_F2I(float2int, float, int)
SIMT_F2I(float2uint, float, unsigned)
SIMT_F2I(float2ll, float, long long)
SIMT_F2I(float2ull, float, unsigned long long)
SIMT_F2I(double2int, double, int)
SIMT_F2I(double2uint, double, unsigned)
SIMT_F2I(double2ll, double, long long)
SIMT_F2I(double2ull, double, unsigned long long)
#undef SIMT_F2I
inline int __half2int_rz(__half h) { return __float2int_rz(float(h)); }
inline int __half2int_rn(__half h) { return __float2int_rn(float(h)); }
inline int __bfloat162int_rz(__nv_bfloat16 h) { return __float2int_rz(float(h)); }
inline float __int2float_rn(int i) { return (float)i; }
inline float __uint2float_rn(unsigned i) { return (float)i; }
inline float __ll2float_rn(long long i) { return (float)i; }
inline float __ull2float_rn(unsigned long long i) { return (float)i; }
inline double __int2double_rn(int i) { return (double)i; }
inline double __ll2double_rn(long long i) { return (double)i; }
inline float __double2float_rn(double d) { return (float)d; }
inline int __float_as_int(float f) { return simt::bit_cast<int>(f); }
inline unsigned __float_as_uint(float f) { return simt::bit_cast<unsigned>(f); }
inline float __int_as_float(int i) { return simt::bit_cast<float>(i); }
inline float __uint_as_float(unsigned i) { return simt::bit_cast<float>(i); }
inline long long __double_as_longlong(double d) { return simt::bit_cast<long long>(d); }
inline double __longlong_as_double(long long i) { return simt::bit_cast<double>(i); }
inline int __double2hiint(double d) { return (int)(simt::bit_cast<unsigned long long>(d) >> 32); }
inline int __double2loint(double d) { return (int)simt::bit_cast<unsigned long long>(d); }
inline double __hiloint2double(int hi, int lo)
{
    return simt::bit_cast<double>(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo);
}

/* ---- integer intrinsics ------------------------------------------------------------------------------ */

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x)
{
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned long long __brevll(unsigned long long x)
{
    return ((unsigned long long)__brev((unsigned)x) << 32) | __brev((unsigned)(x >> 32));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s)
{
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (((s >> (4 * i)) & 7) * 8)) & 0xff) << (8 * i);
    return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s)
{
    return (unsigned)(((((unsigned long long)hi << 32) | lo) << (s & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s)
{
    return (unsigned)((((unsigned long long)hi << 32) | lo) >> (s & 31));
}
inline unsigned __funnelshift_lc(unsigned lo, unsigned hi, unsigned s) { return s >= 32 ? lo : __funnelshift_l(lo, hi, s); }
inline unsigned __funnelshift_rc(unsigned lo, unsigned hi, unsigned s) { return s >= 32 ? hi : __funnelshift_r(lo, hi, s); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int)((unsigned)(a << 8 >> 8) * (unsigned)(b << 8 >> 8)); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffff) * (b & 0xffffff); }
inline int __hadd(int a, int b) { return (int)(((long long)a + b) >> 1); }
inline int __rhadd(int a, int b) { return (int)(((long long)a + b + 1) >> 1); }
inline unsigned __uhadd(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a + b) >> 1); }
inline unsigned __urhadd(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a + b + 1) >> 1); }
inline unsigned __sad(int a, int b, unsigned c) { return c + (unsigned)(a > b ? (long long)a - b : (long long)b - a); }
inline unsigned __usad(unsigned a, unsigned b, unsigned c) { return c + (a > b ? a - b : b - a); }
inline int __dp4a(int a, int b, int c)
{
    int r = c;
    for (int i = 0; i < 4; i++) r += (int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i));
    return r;
}
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c)
{
    unsigned r = c;
    for (int i = 0; i < 4; i++) r += ((a >> (8 * i)) & 0xff) * ((b >> (8 * i)) & 0xff);
    return r;
}

/* min and max as CUDA declares them at global scope; mixed operands take the common type. */
#define SIMT_MINMAX(T)                                                \
    inline T min(T a, T b) { return a < b ? a : b; }                  \
    inline T max(T a, T b) { return a > b ? a : b; }
SIMT_MINMAX(int)
SIMT_MINMAX(unsigned int)
SIMT_MINMAX(long)
SIMT_MINMAX(unsigned long)
SIMT_MINMAX(long long)
SIMT_MINMAX(unsigned long long)
#undef SIMT_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
template <class A, class B> inline typename std::common_type<A, B>::type min(A a, B b)
{
    typedef typename std::common_type<A, B>::type C;
    return min((C)a, (C)b);
}
template <class A, class B> inline typename std::common_type<A, B>::type max(A a, B b)
{
    typedef typename std::common_type<A, B>::type C;
    return max((C)a, (C)b);
}
inline unsigned umin(unsigned a, unsigned b) { return min(a, b); }
inline unsigned umax(unsigned a, unsigned b) { return max(a, b); }
inline long long llmin(long long a, long long b) { return min(a, b); }
inline long long llmax(long long a, long long b) { return max(a, b); }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return min(a, b); }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return max(a, b); }

/* ---- math: what CUDA provides on the device beyond libm ------------------------------------------------ */

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline double rcbrt(double x) { return 1.0 / cbrt(x); }
inline float sinpif(float x) { return (float)std::sin(M_PI * (double)x); }
inline float cospif(float x) { return (float)std::cos(M_PI * (double)x); }
inline double sinpi(double x) { return std::sin(M_PI * x); }
inline double cospi(double x) { return std::cos(M_PI * x); }
inline void sincospif(float x, float *s, float *c) { *s = sinpif(x); *c = cospif(x); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * (float)M_SQRT1_2); }
inline double normcdf(double x) { return 0.5 * erfc(-x * M_SQRT1_2); }
inline double erfinv(double y)
{
    if (y <= -1) return y == -1 ? -HUGE_VAL : NAN;
    if (y >= 1) return y == 1 ? HUGE_VAL : NAN;
    /* Giles' single-precision approximation, then Newton steps on erf in double */
    double w = -std::log((1.0 - y) * (1.0 + y)), x;
    if (w < 5.0) {
        w -= 2.5;
        x = 2.81022636e-08;
        for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                         -0.00417768164, 0.246640727, 1.50140941})
            x = c + x * w;
    } else {
        w = std::sqrt(w) - 3.0;
        x = -0.000200214257;
        for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                         0.00943887047, 1.00167406, 2.83297682})
            x = c + x * w;
    }
    x *= y;
    for (int i = 0; i < 3; i++) x -= (std::erf(x) - y) / (2.0 / std::sqrt(M_PI) * std::exp(-x * x));
    return x;
}
inline float erfinvf(float y) { return (float)erfinv(y); }
inline double erfcinv(double y) { return erfinv(1.0 - y); }
inline float erfcinvf(float y) { return (float)erfcinv(y); }
inline float normcdfinvf(float y) { return (float)(-M_SQRT2 * erfcinv(2.0 * y)); }
inline double normcdfinv(double y) { return -M_SQRT2 * erfcinv(2.0 * y); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float *s, float *c) { *s = sinf(x); *c = cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return sqrt(a); }

/* ---- the entry of a kernel: unpack cuLaunchKernel-style arguments ---------------------------------------- */

namespace simt {
template <class... P, std::size_t... I>
inline void invoke_at(void (*f)(P...), void **args, std::index_sequence<I...>)
{
    f(*static_cast<typename std::remove_cv<typename std::remove_reference<P>::type>::type *>(args[I])...);
}
template <class... P> inline void invoke(void (*f)(P...), void **args)
{
    invoke_at(f, args, std::index_sequence_for<P...>{});
}
}  // namespace simt

#endif
