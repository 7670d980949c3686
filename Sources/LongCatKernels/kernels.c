// Dtype-aware dot products and matrix products. Three paths share one structure:
//   - AVX2 + FMA + F16C on x86-64, compiled with a target attribute and chosen at run time;
//   - NEON on arm64 (always present there);
//   - a portable path in plain C for anything else.
// FP8 E4M3 is widened through half precision: the byte's sign/exponent/mantissa bits placed in a binary16
// give exactly value / 256 (normals and subnormals alike), which the F16C / NEON converters handle in one
// instruction; the 256 is folded into the block scale.
#include "lc_kernels.h"
#include "lc_simd.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------------
// Scalar conversions

float lc_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    float value;
    if (exp == 0) {
        value = ldexpf((float)mant, -24);
    } else if (exp == 31) {
        value = mant ? NAN : INFINITY;
    } else {
        value = ldexpf((float)(mant | 0x400), (int)exp - 25);
    }
    uint32_t u;
    memcpy(&u, &value, 4);
    u |= sign;
    memcpy(&value, &u, 4);
    return value;
}

float lc_f8e4m3_to_f32(uint8_t v) {
    uint32_t exp = (v >> 3) & 0xf;
    uint32_t mant = v & 0x7;
    float value;
    if (exp == 15 && mant == 7) {
        value = NAN;  // E4M3FN has no infinities; S.1111.111 is NaN
    } else if (exp == 0) {
        value = ldexpf((float)mant, -9);
    } else {
        value = ldexpf((float)(mant | 0x8), (int)exp - 10);
    }
    return (v & 0x80) ? -value : value;
}

uint16_t lc_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    uint32_t rounding = 0x7fff + ((u >> 16) & 1);
    return (uint16_t)((u + rounding) >> 16);
}

uint16_t lc_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000) return sign | 0x7e00;
    if (abs >= 0x477ff000) return sign | 0x7c00;  // rounds to >= 65520: infinity
    if (abs < 0x38800000) {                        // below 2^-14: subnormal half
        float a;
        memcpy(&a, &abs, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f);  // multiples of 2^-24, ties to even
    }
    uint32_t rounding = 0xfff + ((abs >> 13) & 1);
    return sign | (uint16_t)((abs - 0x38000000 + rounding) >> 13);
}

// ---------------------------------------------------------------------------------------------------------
// Dispatch

static int lc_detected_level = 0;
static int lc_detected_avx512 = 0;
static int lc_forced_portable = 0;
static float lc_f8_table[256];
static pthread_once_t lc_once = PTHREAD_ONCE_INIT;

static void lc_init(void) {
    for (int i = 0; i < 256; i++) lc_f8_table[i] = lc_f8e4m3_to_f32((uint8_t)i);
#if LC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        lc_detected_level = 1;
    lc_detected_avx512 = lc_detected_level == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
#elif LC_NEON
    lc_detected_level = 2;
#endif
}

int lc_simd_level(void) {
    pthread_once(&lc_once, lc_init);
    return lc_forced_portable ? 0 : lc_detected_level;
}

int lc_simd_avx512(void) { return lc_simd_level() == 1 && lc_detected_avx512; }

void lc_force_portable(int force) { lc_forced_portable = force; }

// Bytes of one weight of a matrix's dtype.
static inline size_t dtype_size(int32_t dtype) {
    return dtype == LC_DTYPE_F32 ? 4 : (dtype == LC_DTYPE_F8_E4M3 ? 1 : 2);
}

// ---------------------------------------------------------------------------------------------------------
// Portable path

static float dot_f32_portable(const float *w, const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += w[i + j] * x[i + j];
    float s = 0;
    for (; i < n; i++) s += w[i] * x[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

static void row_to_f32_portable(const lc_matrix *m, const void *row, int64_t n, float *out) {
    switch (m->dtype) {
    case LC_DTYPE_F32: memcpy(out, row, (size_t)n * 4); break;
    case LC_DTYPE_BF16: {
        const uint16_t *p = (const uint16_t *)row;
        for (int64_t i = 0; i < n; i++) out[i] = lc_bf16_to_f32(p[i]);
        break;
    }
    case LC_DTYPE_F16: {
        const uint16_t *p = (const uint16_t *)row;
        for (int64_t i = 0; i < n; i++) out[i] = lc_f16_to_f32(p[i]);
        break;
    }
    case LC_DTYPE_F8_E4M3: {
        const uint8_t *p = (const uint8_t *)row;
        for (int64_t i = 0; i < n; i++) out[i] = lc_f8_table[p[i]];
        break;
    }
    }
}

// Dot of n weights of the matrix's dtype with x, in chunks converted through a small stack buffer.
// FP8 results are the true value (the table is exact), so callers must not scale by 256 here.
static float dot_portable(const lc_matrix *m, const void *row, const float *x, int64_t n) {
    if (m->dtype == LC_DTYPE_F32) return dot_f32_portable((const float *)row, x, n);
    float buf[256];
    float s = 0;
    const size_t elem = dtype_size(m->dtype);
    for (int64_t i = 0; i < n; i += 256) {
        int64_t len = n - i < 256 ? n - i : 256;
        row_to_f32_portable(m, (const char *)row + i * elem, len, buf);
        s += dot_f32_portable(buf, x + i, len);
    }
    return s;
}

// Multiplies the widened FP8 values out[0..n) of row r, columns c0.., by their blocks' scales: one
// constant per block, so the loop vectorises (a division per column was 15% of an FP8 decode step).
static void scale_f8_blocks(const lc_matrix *m, int64_t r, int64_t c0, int64_t n, float *out) {
    const float *scales = m->scales + (r / m->block_rows) * m->scale_cols;
    for (int64_t i = 0; i < n;) {
        const int64_t b = (c0 + i) / m->block_cols, end = (b + 1) * m->block_cols - c0 < n ? (b + 1) * m->block_cols - c0 : n;
        const float scale = scales[b];
        for (; i < end; i++) out[i] *= scale;
    }
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 path

#if LC_X86
// Load 8 weights of the given dtype as float32 (FP8 as value / 256).
LC_AVX2 static inline __m256 load8_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
LC_AVX2 static inline __m256 load8_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
// FP8 E4M3 bytes as float32 bit patterns: each byte sign-extended to 32 bits and shifted so that its
// exponent and mantissa land at the top of float32's (bits 26..20) and its sign at bit 31. The float is the
// FP8 value x 2^-120 exactly (FP8 subnormals become float32 subnormals). Three ops per 8 weights.
LC_AVX2 static inline __m256 load8_f8_raw(const uint8_t *p) {
    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(v, 20), _mm256_set1_epi32((int)0x87F00000u)));
}
static inline float lc_f8_raw(uint8_t b) {
    const uint32_t bits = ((uint32_t)(int32_t)(int8_t)b << 20) & 0x87F00000u;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
// As value / 256, the scale the callers of the other loaders expect: a normal float32 for every code.
LC_AVX2 static inline __m256 load8_f8(const uint8_t *p) { return _mm256_mul_ps(load8_f8_raw(p), _mm256_set1_ps(0x1p112f)); }

// Eight weights of a row of `dtype` from element i on, as float32 (FP8 as value / 256), and one as a float. The
// kernels below take the dtype as an argument and are always inlined into one function per dtype, where the
// switch folds away: one kernel body, a specialisation per dtype.
LC_AVX2 static inline __m256 load8_as(int32_t dtype, const void *row, int64_t i) {
    switch (dtype) {
    case LC_DTYPE_F32: return _mm256_loadu_ps((const float *)row + i);
    case LC_DTYPE_BF16: return load8_bf16((const uint16_t *)row + i);
    case LC_DTYPE_F16: return load8_f16((const uint16_t *)row + i);
    default: return load8_f8((const uint8_t *)row + i);
    }
}
static inline float scalar_as(int32_t dtype, const void *row, int64_t i) {
    switch (dtype) {
    case LC_DTYPE_F32: return ((const float *)row)[i];
    case LC_DTYPE_BF16: return lc_bf16_to_f32(((const uint16_t *)row)[i]);
    case LC_DTYPE_F16: return lc_f16_to_f32(((const uint16_t *)row)[i]);
    default: return lc_f8e4m3_to_f32(((const uint8_t *)row)[i]);
    }
}

// Two-token products give each token the bits of a one-token product: speculative decoding verifies a draft in a
// two-row pass, and its greedy output must equal plain greedy's. The F32/F16 and FP8 matrix-vector kernels are
// written for T = 1 or 2 tokens (always inlined with a constant T) with the same accumulators per token whatever T
// is, the weights loaded once for both; BF16 runs its one-token row kernel once per token (the second pass reads the
// row from L1). Three to LC_GEMM_MIN_TOKENS - 1 tokens (batched decode) use the register tiles, whose sums differ in
// the last bits; so do the GEMM's.

// out[j] = w . x[j] for T tokens: four sums of 8 lanes per token over 32 columns, then 8 at a time into the
// first, the rest through a zero-padded vector.
__attribute__((always_inline)) LC_AVX2 static inline void dot_tokens_as_avx2(int32_t dtype, const void *w, const float *const *x,
                                                                           const int T, int64_t n, float *out) {
    __m256 a[2][4];
    for (int j = 0; j < T; j++)
        for (int k = 0; k < 4; k++) a[j][k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            const __m256 v = load8_as(dtype, w, i + 8 * k);
            for (int j = 0; j < T; j++) a[j][k] = _mm256_fmadd_ps(v, _mm256_loadu_ps(x[j] + i + 8 * k), a[j][k]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 v = load8_as(dtype, w, i);
        for (int j = 0; j < T; j++) a[j][0] = _mm256_fmadd_ps(v, _mm256_loadu_ps(x[j] + i), a[j][0]);
    }
    __m256 wv = _mm256_setzero_ps();
    if (i < n) {
        const size_t elem = dtype_size(dtype);
        unsigned char wt[8 * 4];
        memset(wt, 0, sizeof wt);
        memcpy(wt, (const char *)w + i * elem, (size_t)(n - i) * elem);
        wv = load8_as(dtype, wt, 0);
    }
    for (int j = 0; j < T; j++) {
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a[j][0], a[j][1]), _mm256_add_ps(a[j][2], a[j][3])));
        if (i < n) {
            float tail[8] = {0};
            for (int64_t c = 0; i + c < n; c++) tail[c] = x[j][i + c];
            s += hsum256(_mm256_mul_ps(wv, _mm256_loadu_ps(tail)));
        }
        out[j] = s;
    }
}

__attribute__((always_inline)) LC_AVX2 static inline float dot_as_avx2(int32_t dtype, const void *w, const float *x, int64_t n) {
    float s;
    dot_tokens_as_avx2(dtype, w, &x, 1, n, &s);
    return s;
}

LC_AVX2 static float dot_f32_avx2(const float *w, const float *x, int64_t n) { return dot_as_avx2(LC_DTYPE_F32, w, x, n); }
LC_AVX2 static float dot_f16_avx2(const uint16_t *w, const float *x, int64_t n) { return dot_as_avx2(LC_DTYPE_F16, w, x, n); }

// How far ahead the matrix-vector kernels prefetch (see matvec_bf16_avx2).
enum { LC_MATVEC_PREFETCH = 1024 };
// From this many tokens on, the packed GEMM (prefill); below, the register tiles.
enum { LC_GEMM_MIN_TOKENS = 32 };

// FP8 matrix-vector with per-block scales. Weights are used raw (value x 2^-120, see load8_f8_raw) against
// x scaled by 2^k, k chosen so the largest |x| lands near 2^64: every product is then value * x * 2^(k-120),
// a normal float32 for all weights and all x within 2^-61 of the largest, so it rounds exactly as value * x
// would. Block sums are scaled by their block's scale and each row's sum by 2^(120-k) once. Prefetching 1 KB ahead as in matvec_bf16_avx2: 1.6x the old half-precision route over
// bench shapes (24-26 GB/s against 15 on two threads).
// x scaled into xs as described above; returns the factor 2^(120-k) that undoes the scaling of a row's sum.
LC_AVX2 static double scale_f8_input_avx2(const float *x, int64_t cols, float *xs) {
    __m256 top = _mm256_setzero_ps();
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) top = _mm256_max_ps(top, _mm256_and_ps(_mm256_loadu_ps(x + c), magnitude));
    float lanes[8], amax = 0;
    _mm256_storeu_ps(lanes, top);
    for (int i = 0; i < 8; i++) amax = fmaxf(amax, lanes[i]);
    for (; c < cols; c++) amax = fmaxf(amax, fabsf(x[c]));
    int k = amax > 0 && isfinite(amax) ? 64 - ilogbf(amax) : 0;
    k = k < -126 ? -126 : (k > 127 ? 127 : k);
    const float up = ldexpf(1.0f, k);
    for (c = 0; c + 8 <= cols; c += 8) _mm256_storeu_ps(xs + c, _mm256_mul_ps(_mm256_loadu_ps(x + c), _mm256_set1_ps(up)));
    for (; c < cols; c++) xs[c] = x[c] * up;
    return ldexp(1.0, 120 - k);
}

// One FP8 row against T scaled inputs (xs[j], with their factors down[j]).
__attribute__((always_inline)) LC_AVX2 static inline void f8_row_tokens_avx2(const lc_matrix *m, int64_t r, const float *const *xs,
                                                                           const double *down, const int T, float *out) {
    const int64_t cols = m->cols, bc = m->block_cols;
    const uint8_t *row = (const uint8_t *)m->data + r * cols;
    const float *scales = m->scales + (r / m->block_rows) * m->scale_cols;
    __m256 total[2];
    float tail[2] = {0, 0};
    for (int j = 0; j < T; j++) total[j] = _mm256_setzero_ps();
    for (int64_t cb = 0, b = 0; cb < cols; cb += bc, b++) {
        const int64_t end = cb + bc < cols ? cb + bc : cols;
        __m256 a[2][4];
        for (int j = 0; j < T; j++)
            for (int k = 0; k < 4; k++) a[j][k] = _mm256_setzero_ps();
        int64_t i = cb;
        for (; i + 32 <= end; i += 32) {
            _mm_prefetch((const char *)(row + i) + LC_MATVEC_PREFETCH, _MM_HINT_NTA);
            for (int k = 0; k < 4; k++) {
                const __m256 v = load8_f8_raw(row + i + 8 * k);
                for (int j = 0; j < T; j++) a[j][k] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xs[j] + i + 8 * k), a[j][k]);
            }
        }
        for (; i + 8 <= end; i += 8) {
            const __m256 v = load8_f8_raw(row + i);
            for (int j = 0; j < T; j++) a[j][0] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xs[j] + i), a[j][0]);
        }
        for (int j = 0; j < T; j++) {
            float part = 0;
            for (int64_t c = i; c < end; c++) part += lc_f8_raw(row[c]) * xs[j][c];
            const __m256 sum = _mm256_add_ps(_mm256_add_ps(a[j][0], a[j][1]), _mm256_add_ps(a[j][2], a[j][3]));
            total[j] = _mm256_fmadd_ps(sum, _mm256_set1_ps(scales[b]), total[j]);
            tail[j] += part * scales[b];
        }
    }
    for (int j = 0; j < T; j++) out[j] = (float)((double)(hsum256(total[j]) + tail[j]) * down[j]);
}

LC_AVX2 static void matvec_f8_avx2(const lc_matrix *m, const float *x, float *xs, float *y, int64_t r0, int64_t r1) {
    const double down = scale_f8_input_avx2(x, m->cols, xs);
    const float *in[1] = {xs};
    for (int64_t r = r0; r < r1; r++) f8_row_tokens_avx2(m, r, in, &down, 1, y + r);
}

// Two tokens (xs: 2 x cols of scratch), the weights loaded once for both.
LC_AVX2 static void pair_f8_avx2(const lc_matrix *m, const float *x, int64_t ldx, float *y, int64_t ldy, int64_t r0, int64_t r1, float *xs) {
    const double down[2] = {scale_f8_input_avx2(x, m->cols, xs), scale_f8_input_avx2(x + ldx, m->cols, xs + m->cols)};
    const float *in[2] = {xs, xs + m->cols};
    for (int64_t r = r0; r < r1; r++) {
        float out[2];
        f8_row_tokens_avx2(m, r, in, down, 2, out);
        y[r] = out[0];
        y[ldy + r] = out[1];
    }
}

// Rows of F32 and F16 (BF16 and FP8 rows go through their matrix-vector kernels above).
LC_AVX2 static float dot_avx2(const lc_matrix *m, const void *row, const float *x, int64_t n) {
    switch (m->dtype) {
    case LC_DTYPE_F32: return dot_f32_avx2((const float *)row, x, n);
    case LC_DTYPE_F16: return dot_f16_avx2((const uint16_t *)row, x, n);
    default: return dot_portable(m, row, x, n);
    }
}

// BF16 matrix-vector. A 32-bit lane holding two bf16 weights gives both as float32 in one op each: the odd
// one by masking the low half away, the even one by shifting it up. So x is first split, per 16 columns,
// into its 8 even and 8 odd entries (`xs`, once per product), and each 32-byte weight load then costs two
// integer ops and two FMAs. Columns past the last multiple of 16 go scalar.
// Rows go one at a time, so each core reads one sequential stream, which the hardware prefetcher follows
// best: four rows at once (four streams sharing x loads, with software prefetch) streamed 10-15% slower from
// memory, although they are as fast in L1. Eight sums keep the FMA latency off the critical path.
// Each 128-byte step also prefetches the two lines 1 KB ahead (non-temporal: they are used once). Without it
// the four ops per load that wait for the data fill the scheduler long before the load queue, so fewer
// lines are in flight than a plain read-sum keeps (decode streamed ~30 GB/s where the sum read 35-37);
// with it, 5-10% faster in the model; 512 B-1.25 KB ahead are alike, 1.5 KB+ or T0/T1 hints gain less.

LC_AVX2 static void split_even_odd_avx2(const float *x, int64_t cols, float *xs) {
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int64_t c = 0; c + 16 <= cols; c += 16) {
        const __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + c), order);      // a0 a2 a4 a6 a1 a3 a5 a7
        const __m256 b = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x + c + 8), order);  // b0 b2 b4 b6 b1 b3 b5 b7
        _mm256_storeu_ps(xs + c, _mm256_permute2f128_ps(a, b, 0x20));
        _mm256_storeu_ps(xs + c + 8, _mm256_permute2f128_ps(a, b, 0x31));
    }
}

// One BF16 row against one token (x and its even/odd split xs): eight sums over 64 columns, then 16 at a time.
__attribute__((always_inline)) LC_AVX2 static inline float bf16_row_avx2(const uint16_t *row, int64_t cols, const float *x, const float *xs) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
#define LC_BF16_STEP(C, E, O)                                                                            \
    {                                                                                                    \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(row + (C)));                             \
        E = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(xs + (C)), E); \
        O = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v, high)), _mm256_loadu_ps(xs + (C) + 8), O); \
    }
    __m256 e0 = _mm256_setzero_ps(), o0 = e0, e1 = e0, o1 = e0, e2 = e0, o2 = e0, e3 = e0, o3 = e0;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
        _mm_prefetch((const char *)(row + c) + LC_MATVEC_PREFETCH, _MM_HINT_NTA);
        _mm_prefetch((const char *)(row + c) + LC_MATVEC_PREFETCH + 64, _MM_HINT_NTA);
        LC_BF16_STEP(c, e0, o0) LC_BF16_STEP(c + 16, e1, o1) LC_BF16_STEP(c + 32, e2, o2) LC_BF16_STEP(c + 48, e3, o3)
    }
    for (; c + 16 <= cols; c += 16) LC_BF16_STEP(c, e0, o0)
#undef LC_BF16_STEP
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(e0, o0), _mm256_add_ps(e1, o1)),
                                    _mm256_add_ps(_mm256_add_ps(e2, o2), _mm256_add_ps(e3, o3))));
    for (; c < cols; c++) s += lc_bf16_to_f32(row[c]) * x[c];
    return s;
}

LC_AVX2 static void matvec_bf16_avx2(const uint16_t *w, int64_t cols, const float *x, const float *xs,
                                     float *y, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) y[r] = bf16_row_avx2(w + r * cols, cols, x, xs);
}

// Two tokens with AVX2's 16 vector registers: each row once per token with the one-token kernel (its eight sums per
// token would not fit the registers twice); the second pass reads the row from cache.
LC_AVX2 static void pair_bf16_avx2(const lc_matrix *m, const float *x, int64_t ldx, float *y, int64_t ldy,
                                   int64_t r0, int64_t r1, float *xs) {
    const int64_t cols = m->cols;
    for (int64_t t = 0; t < 2; t++) split_even_odd_avx2(x + t * ldx, cols, xs + t * cols);
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = (const uint16_t *)m->data + r * cols;
        for (int64_t t = 0; t < 2; t++) y[t * ldy + r] = bf16_row_avx2(row, cols, x + t * ldx, xs + t * cols);
    }
}

// Two tokens where AVX-512VL gives 32 registers to the same 256-bit instructions: both tokens' eight sums stay in
// registers, so each weight load and conversion serves both. Per token the operations and their order are
// bf16_row_avx2's, so each token gets the one-token bits.
LC_AVX512VL static void pair_bf16_avx512vl(const lc_matrix *m, const float *x, int64_t ldx, float *y, int64_t ldy,
                                           int64_t r0, int64_t r1, float *xs) {
    const int64_t cols = m->cols;
    for (int64_t t = 0; t < 2; t++) split_even_odd_avx2(x + t * ldx, cols, xs + t * cols);
    const float *xa = xs, *xb = xs + cols;
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
#define LC_BF16_PAIR_STEP(C, K)                                                                           \
    {                                                                                                     \
        const __m256i v = _mm256_loadu_si256((const __m256i *)(row + (C)));                              \
        const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));                                 \
        const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(v, high));                                \
        e[0][K] = _mm256_fmadd_ps(we, _mm256_loadu_ps(xa + (C)), e[0][K]);                               \
        o[0][K] = _mm256_fmadd_ps(wo, _mm256_loadu_ps(xa + (C) + 8), o[0][K]);                           \
        e[1][K] = _mm256_fmadd_ps(we, _mm256_loadu_ps(xb + (C)), e[1][K]);                               \
        o[1][K] = _mm256_fmadd_ps(wo, _mm256_loadu_ps(xb + (C) + 8), o[1][K]);                           \
    }
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = (const uint16_t *)m->data + r * cols;
        __m256 e[2][4], o[2][4];
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 4; k++) e[t][k] = o[t][k] = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            _mm_prefetch((const char *)(row + c) + LC_MATVEC_PREFETCH, _MM_HINT_NTA);
            _mm_prefetch((const char *)(row + c) + LC_MATVEC_PREFETCH + 64, _MM_HINT_NTA);
            LC_BF16_PAIR_STEP(c, 0) LC_BF16_PAIR_STEP(c + 16, 1) LC_BF16_PAIR_STEP(c + 32, 2) LC_BF16_PAIR_STEP(c + 48, 3)
        }
        for (; c + 16 <= cols; c += 16) LC_BF16_PAIR_STEP(c, 0)
        for (int t = 0; t < 2; t++) {
            const float *xt = x + t * ldx;
            float s = hsum256(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(e[t][0], o[t][0]), _mm256_add_ps(e[t][1], o[t][1])),
                                            _mm256_add_ps(_mm256_add_ps(e[t][2], o[t][2]), _mm256_add_ps(e[t][3], o[t][3]))));
            for (int64_t k = c; k < cols; k++) s += lc_bf16_to_f32(row[k]) * xt[k];
            y[t * ldy + r] = s;
        }
    }
#undef LC_BF16_PAIR_STEP
}

// F32 and F16 rows against two tokens, the weights loaded once for both.
__attribute__((always_inline)) LC_AVX2 static inline void pair_as_avx2(int32_t dtype, const lc_matrix *m, const float *x, int64_t ldx,
                                                                     float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const size_t row_bytes = (size_t)m->cols * dtype_size(dtype);
    const float *in[2] = {x, x + ldx};
    for (int64_t r = r0; r < r1; r++) {
        float out[2];
        dot_tokens_as_avx2(dtype, (const char *)m->data + (size_t)r * row_bytes, in, 2, m->cols, out);
        y[r] = out[0];
        y[ldy + r] = out[1];
    }
}
LC_AVX2 static void pair_f32_avx2(const lc_matrix *m, const float *x, int64_t ldx, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    pair_as_avx2(LC_DTYPE_F32, m, x, ldx, y, ldy, r0, r1);
}
LC_AVX2 static void pair_f16_avx2(const lc_matrix *m, const float *x, int64_t ldx, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    pair_as_avx2(LC_DTYPE_F16, m, x, ldx, y, ldy, r0, r1);
}

// Four rows against one vector at once: each x load serves four weight rows.
LC_AVX2 static void dot4_f32_avx2(const float *w, int64_t ldw, const float *x, int64_t n, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (; i < n; i++) {
        s0 += w0[i] * x[i];
        s1 += w1[i] * x[i];
        s2 += w2[i] * x[i];
        s3 += w3[i] * x[i];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}

LC_AVX2 static void row_to_f32_avx2(const lc_matrix *m, const void *row, int64_t n, float *out) {
    int64_t i = 0;
    switch (m->dtype) {
    case LC_DTYPE_F32: memcpy(out, row, (size_t)n * 4); return;
    case LC_DTYPE_BF16:
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8_bf16((const uint16_t *)row + i));
        break;
    case LC_DTYPE_F16:
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8_f16((const uint16_t *)row + i));
        break;
    default: {
        const __m256 k = _mm256_set1_ps(0x1p120f);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(load8_f8_raw((const uint8_t *)row + i), k));
        break;
    }
    }
    const size_t elem = dtype_size(m->dtype);
    if (i < n) row_to_f32_portable(m, (const char *)row + i * elem, n - i, out + i);
}

// The tiles below read several rows at once, short row streams that keep restarting: the hardware
// prefetcher alone stalls there, so they prefetch 24 KB ahead in memory order (a few row groups on).
#define LC_PREFETCH_FAR(P) _mm_prefetch((const char *)(P) + 24576, _MM_HINT_T0)

// Matrix-matrix micro-kernel: a tile of 2 weight rows x 4 tokens, 8 accumulators. Each weight vector is
// converted once in registers and used for four tokens; each token vector serves two rows. FP8 partial
// sums are scaled per 128-column block. Rows and tokens beyond the edges reuse the last valid one and
// are not stored.
__attribute__((always_inline)) LC_AVX2 static inline void tile_as_avx2(int32_t dtype, const lc_matrix *m, const float *x, int64_t ldx,
                                                                     int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t cols = m->cols;
    const int fp8 = dtype == LC_DTYPE_F8_E4M3;
    const size_t elem = dtype_size(dtype);
    const int64_t bc = fp8 ? m->block_cols : cols;
    for (int64_t r = r0; r < r1; r += 2) {
        const int rows = r + 1 < r1 ? 2 : 1;
        const char *w0 = (const char *)m->data + r * cols * elem, *w1 = rows == 2 ? w0 + cols * elem : w0;
        for (int64_t t = 0; t < n; t += 4) {
            const int toks = n - t < 4 ? (int)(n - t) : 4;
            const float *xs[4];
            for (int j = 0; j < 4; j++) xs[j] = x + (t + (j < toks ? j : toks - 1)) * ldx;
            __m256 t00 = _mm256_setzero_ps(), t01 = t00, t02 = t00, t03 = t00;
            __m256 t10 = t00, t11 = t00, t12 = t00, t13 = t00;
            float tail[2][4] = {{0}};
            for (int64_t cb = 0, b = 0; cb < cols; cb += bc, b++) {
                const int64_t ce = cb + bc < cols ? cb + bc : cols;
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
                __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
                float s[2][4] = {{0}};
                int64_t c = cb;
                for (; c + 8 <= ce; c += 8) {
                    LC_PREFETCH_FAR(w0 + c * elem); LC_PREFETCH_FAR(w1 + c * elem);
                    const __m256 v0 = load8_as(dtype, w0, c), v1 = load8_as(dtype, w1, c);
                    __m256 xv = _mm256_loadu_ps(xs[0] + c);
                    a00 = _mm256_fmadd_ps(v0, xv, a00); a10 = _mm256_fmadd_ps(v1, xv, a10);
                    xv = _mm256_loadu_ps(xs[1] + c);
                    a01 = _mm256_fmadd_ps(v0, xv, a01); a11 = _mm256_fmadd_ps(v1, xv, a11);
                    xv = _mm256_loadu_ps(xs[2] + c);
                    a02 = _mm256_fmadd_ps(v0, xv, a02); a12 = _mm256_fmadd_ps(v1, xv, a12);
                    xv = _mm256_loadu_ps(xs[3] + c);
                    a03 = _mm256_fmadd_ps(v0, xv, a03); a13 = _mm256_fmadd_ps(v1, xv, a13);
                }
                for (; c < ce; c++) {
                    const float v0 = scalar_as(dtype, w0, c), v1 = scalar_as(dtype, w1, c);
                    for (int j = 0; j < 4; j++) { s[0][j] += v0 * xs[j][c]; s[1][j] += v1 * xs[j][c]; }
                }
                if (fp8) {
                    /* the vector loads give value/256; the scalar tail gives the value */
                    const float *sc = m->scales + b;
                    const float q0 = sc[(r / m->block_rows) * m->scale_cols];
                    const float q1 = sc[((r + rows - 1) / m->block_rows) * m->scale_cols];
                    const __m256 k0 = _mm256_set1_ps(q0 * 256.0f), k1 = _mm256_set1_ps(q1 * 256.0f);
                    t00 = _mm256_fmadd_ps(a00, k0, t00); t01 = _mm256_fmadd_ps(a01, k0, t01);
                    t02 = _mm256_fmadd_ps(a02, k0, t02); t03 = _mm256_fmadd_ps(a03, k0, t03);
                    t10 = _mm256_fmadd_ps(a10, k1, t10); t11 = _mm256_fmadd_ps(a11, k1, t11);
                    t12 = _mm256_fmadd_ps(a12, k1, t12); t13 = _mm256_fmadd_ps(a13, k1, t13);
                    for (int j = 0; j < 4; j++) { tail[0][j] += s[0][j] * q0; tail[1][j] += s[1][j] * q1; }
                } else {
                    t00 = _mm256_add_ps(t00, a00); t01 = _mm256_add_ps(t01, a01);
                    t02 = _mm256_add_ps(t02, a02); t03 = _mm256_add_ps(t03, a03);
                    t10 = _mm256_add_ps(t10, a10); t11 = _mm256_add_ps(t11, a11);
                    t12 = _mm256_add_ps(t12, a12); t13 = _mm256_add_ps(t13, a13);
                    for (int j = 0; j < 4; j++) { tail[0][j] += s[0][j]; tail[1][j] += s[1][j]; }
                }
            }
            const float out[2][4] = {{hsum256(t00), hsum256(t01), hsum256(t02), hsum256(t03)},
                                     {hsum256(t10), hsum256(t11), hsum256(t12), hsum256(t13)}};
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < toks; j++) y[(t + j) * ldy + r + i] = out[i][j] + tail[i][j];
        }
    }
}

LC_AVX2 static void tile_f32_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    tile_as_avx2(LC_DTYPE_F32, m, x, ldx, n, y, ldy, r0, r1);
}
LC_AVX2 static void tile_bf16_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    tile_as_avx2(LC_DTYPE_BF16, m, x, ldx, n, y, ldy, r0, r1);
}
LC_AVX2 static void tile_f16_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    tile_as_avx2(LC_DTYPE_F16, m, x, ldx, n, y, ldy, r0, r1);
}
LC_AVX2 static void tile_f8_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    tile_as_avx2(LC_DTYPE_F8_E4M3, m, x, ldx, n, y, ldy, r0, r1);
}

LC_AVX2 static void tile_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy,
                              int64_t r0, int64_t r1) {
    switch (m->dtype) {
    case LC_DTYPE_F32: tile_f32_avx2(m, x, ldx, n, y, ldy, r0, r1); break;
    case LC_DTYPE_BF16: tile_bf16_avx2(m, x, ldx, n, y, ldy, r0, r1); break;
    case LC_DTYPE_F16: tile_f16_avx2(m, x, ldx, n, y, ldy, r0, r1); break;
    default: tile_f8_avx2(m, x, ldx, n, y, ldy, r0, r1); break;
    }
}

// BF16 matrix-matrix for a handful of tokens (batched decode): 4 rows x 2 tokens of sums in registers,
// weights widened with the even/odd trick of matvec_bf16_avx2 and each token's x split the same way
// (`xs`, n * cols floats). An odd last token gets its own specialisation, so no register tile is spent on a
// missing token; the four rows' weights come from memory for the first pair and from L1 for the others.
enum { TILE_R = 4 };

__attribute__((always_inline)) LC_AVX2 static inline void tile_eo_group(
    const uint16_t *const *w, int rows, int64_t cols, const float *const *xt, const float *const *xr, const int T,
    float *y, int64_t ldy, int64_t r) {
    const int64_t body = cols & ~(int64_t)15;
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 a[TILE_R][2];
    for (int i = 0; i < TILE_R; i++)
        for (int j = 0; j < T; j++) a[i][j] = _mm256_setzero_ps();
    // Row by row, so only one row's widened weights are live: 8 sums, 4 x vectors and 2 weights fit the
    // 16 registers (a 4x3 tile spills, and costs twice as much).
    for (int64_t c = 0; c < body; c += 16) {
        __m256 xe[2], xo[2];
        for (int j = 0; j < T; j++) {
            xe[j] = _mm256_loadu_ps(xt[j] + c);
            xo[j] = _mm256_loadu_ps(xt[j] + c + 8);
        }
        for (int i = 0; i < TILE_R; i++) {
            LC_PREFETCH_FAR(w[i] + c);
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w[i] + c));
            const __m256 e = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
            const __m256 o = _mm256_castsi256_ps(_mm256_and_si256(v, high));
            for (int j = 0; j < T; j++) a[i][j] = _mm256_fmadd_ps(o, xo[j], _mm256_fmadd_ps(e, xe[j], a[i][j]));
        }
    }
    // Reduce with constant indices only, so the sums never leave registers inside the loop.
    float sums[TILE_R][2];
    for (int i = 0; i < TILE_R; i++)
        for (int j = 0; j < T; j++) sums[i][j] = hsum256(a[i][j]);
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < T; j++) {
            float sum = sums[i][j];
            for (int64_t c = body; c < cols; c++) sum += lc_bf16_to_f32(w[i][c]) * xr[j][c];
            y[j * ldy + r + i] = sum;
        }
    }
}

LC_AVX2 static void tile_eo_bf16_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y,
                                      int64_t ldy, int64_t r0, int64_t r1, float *xs) {
    const int64_t cols = m->cols;
    for (int64_t t = 0; t < n; t++) split_even_odd_avx2(x + t * ldx, cols, xs + t * cols);
    for (int64_t r = r0; r < r1; r += TILE_R) {
        const int rows = r1 - r < TILE_R ? (int)(r1 - r) : TILE_R;
        const uint16_t *w[TILE_R];
        for (int i = 0; i < TILE_R; i++) w[i] = (const uint16_t *)m->data + (r + (i < rows ? i : rows - 1)) * cols;
        for (int64_t t = 0; t < n; t += 2) {
            const float *xt[2], *xr[2];
            for (int j = 0; j < 2 && t + j < n; j++) {
                xt[j] = xs + (t + j) * cols;
                xr[j] = x + (t + j) * ldx;
            }
            if (n - t == 1)
                tile_eo_group(w, rows, cols, xt, xr, 1, y + t * ldy, ldy, r);
            else
                tile_eo_group(w, rows, cols, xt, xr, 2, y + t * ldy, ldy, r);
        }
    }
}

// Matrix-matrix for many tokens (prefill, batched decode): a small GEMM. For each panel of 16 rows and
// block of LC_KC columns the weights are converted once into a float32 panel laid out column by column
// (`packed[k][16]`), which then serves every token: the micro-kernel keeps 16 rows x 6 tokens of sums in
// twelve registers, and per column loads two weight vectors and broadcasts six token values (12 FMAs per
// 8 loads). Sums go to y, which holds each token's 16 rows contiguously.
enum { LC_PANEL = 16, LC_KC = 256, LC_NT = 6, LC_NB = 192, LC_GROUP = 16 };

LC_AVX2 static void pack_panel_avx2(const lc_matrix *m, int64_t r, int64_t rows, int64_t c0, int64_t kc,
                                    float *tmp, float *packed) {
    const size_t elem = dtype_size(m->dtype);
    for (int64_t i = 0; i < LC_PANEL; i++) {
        float *out = tmp + i * LC_KC;
        if (i >= rows) {
            memset(out, 0, (size_t)kc * sizeof(float));
            continue;
        }
        row_to_f32_avx2(m, (const char *)m->data + ((size_t)(r + i) * (size_t)m->cols + (size_t)c0) * elem, kc, out);
        if (m->dtype == LC_DTYPE_F8_E4M3) scale_f8_blocks(m, r + i, c0, kc, out);
    }
    // Transpose [16][kc] -> [kc][16] in 8x8 tiles.
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        for (int64_t i = 0; i < LC_PANEL; i += 8) transpose8x8_avx2(tmp + i * LC_KC + k, LC_KC, packed + k * LC_PANEL + i, LC_PANEL);
    }
    for (; k < kc; k++)
        for (int64_t i = 0; i < LC_PANEL; i++) packed[k * LC_PANEL + i] = tmp[i * LC_KC + k];
}

// y[t][r..r+rows) (+)= packed panel (16 rows x kc, column-major) . x[t][c0..c0+kc) for t in [t0, t1).
LC_AVX2 static void gemm_micro_avx2(const float *packed, int64_t kc, const float *x, int64_t ldx, int64_t c0,
                                   int64_t t0, int64_t t1, float *y, int64_t ldy, int64_t r, int64_t rows) {
    for (int64_t t = t0; t < t1; t += LC_NT) {
        const int toks = t1 - t < LC_NT ? (int)(t1 - t) : LC_NT;
        const float *xs[LC_NT];
        for (int j = 0; j < LC_NT; j++) xs[j] = x + (t + (j < toks ? j : toks - 1)) * ldx + c0;
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        for (int64_t k = 0; k < kc; k++) {
            const __m256 w0 = _mm256_loadu_ps(packed + k * LC_PANEL), w1 = _mm256_loadu_ps(packed + k * LC_PANEL + 8);
            __m256 b = _mm256_broadcast_ss(xs[0] + k);
            a00 = _mm256_fmadd_ps(w0, b, a00); a01 = _mm256_fmadd_ps(w1, b, a01);
            b = _mm256_broadcast_ss(xs[1] + k);
            a10 = _mm256_fmadd_ps(w0, b, a10); a11 = _mm256_fmadd_ps(w1, b, a11);
            b = _mm256_broadcast_ss(xs[2] + k);
            a20 = _mm256_fmadd_ps(w0, b, a20); a21 = _mm256_fmadd_ps(w1, b, a21);
            b = _mm256_broadcast_ss(xs[3] + k);
            a30 = _mm256_fmadd_ps(w0, b, a30); a31 = _mm256_fmadd_ps(w1, b, a31);
            b = _mm256_broadcast_ss(xs[4] + k);
            a40 = _mm256_fmadd_ps(w0, b, a40); a41 = _mm256_fmadd_ps(w1, b, a41);
            b = _mm256_broadcast_ss(xs[5] + k);
            a50 = _mm256_fmadd_ps(w0, b, a50); a51 = _mm256_fmadd_ps(w1, b, a51);
        }
        const __m256 sums[LC_NT][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
        for (int j = 0; j < toks; j++) {
            float *out = y + (t + j) * ldy + r;
            if (rows == LC_PANEL) {
                __m256 lo = sums[j][0], hi = sums[j][1];
                if (c0 > 0) {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(out));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(out + 8));
                }
                _mm256_storeu_ps(out, lo);
                _mm256_storeu_ps(out + 8, hi);
            } else {
                float v[LC_PANEL];
                _mm256_storeu_ps(v, sums[j][0]);
                _mm256_storeu_ps(v + 8, sums[j][1]);
                for (int64_t i = 0; i < rows; i++) out[i] = c0 > 0 ? out[i] + v[i] : v[i];
            }
        }
    }
}

LC_AVX2 static void gemm_avx2(const lc_matrix *m, const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy,
                              int64_t r0, int64_t r1, float *scratch) {
    float *tmp = scratch, *packed = scratch + LC_PANEL * LC_KC;
    // GotoBLAS order: a group of row panels is packed once per column block and stays in L2 while blocks
    // of tokens (their x columns also in L2) pass over it; one panel and six tokens' x are in L1.
    for (int64_t rg = r0; rg < r1; rg += LC_PANEL * LC_GROUP) {
        const int64_t rg1 = r1 - rg < LC_PANEL * LC_GROUP ? r1 : rg + LC_PANEL * LC_GROUP;
        for (int64_t c0 = 0; c0 < m->cols; c0 += LC_KC) {
            const int64_t kc = m->cols - c0 < LC_KC ? m->cols - c0 : LC_KC;
            for (int64_t r = rg; r < rg1; r += LC_PANEL)
                pack_panel_avx2(m, r, rg1 - r < LC_PANEL ? rg1 - r : LC_PANEL, c0, kc, tmp,
                                packed + (r - rg) / LC_PANEL * LC_PANEL * LC_KC);
            for (int64_t t0 = 0; t0 < n; t0 += LC_NB) {
                const int64_t t1 = n - t0 < LC_NB ? n : t0 + LC_NB;
                for (int64_t r = rg; r < rg1; r += LC_PANEL)
                    gemm_micro_avx2(packed + (r - rg) / LC_PANEL * LC_PANEL * LC_KC, kc, x, ldx, c0, t0, t1,
                                    y, ldy, r, rg1 - r < LC_PANEL ? rg1 - r : LC_PANEL);
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------------------
// NEON path

#if LC_NEON
static inline float32x4_t neon_bf16_lo(uint16x8_t v) {
    return vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16));
}
static inline float32x4_t neon_bf16_hi(uint16x8_t v) {
    return vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(v), 16));
}
// Eight FP8 bytes as half-precision bit patterns of value / 256.
static inline float16x8_t neon_f8_as_f16(const uint8_t *p) {
    uint16x8_t b = vmovl_u8(vld1_u8(p));
    uint16x8_t sign = vshlq_n_u16(vandq_u16(b, vdupq_n_u16(0x80)), 8);
    uint16x8_t mag = vshlq_n_u16(vandq_u16(b, vdupq_n_u16(0x7f)), 7);
    return vreinterpretq_f16_u16(vorrq_u16(sign, mag));
}

static void load8_neon(const lc_matrix *m, const void *row, int64_t i, float32x4_t *lo, float32x4_t *hi) {
    switch (m->dtype) {
    case LC_DTYPE_F32:
        *lo = vld1q_f32((const float *)row + i);
        *hi = vld1q_f32((const float *)row + i + 4);
        break;
    case LC_DTYPE_BF16: {
        uint16x8_t v = vld1q_u16((const uint16_t *)row + i);
        *lo = neon_bf16_lo(v);
        *hi = neon_bf16_hi(v);
        break;
    }
    case LC_DTYPE_F16: {
        float16x8_t v = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)row + i));
        *lo = vcvt_f32_f16(vget_low_f16(v));
        *hi = vcvt_f32_f16(vget_high_f16(v));
        break;
    }
    default: {
        float16x8_t v = neon_f8_as_f16((const uint8_t *)row + i);
        *lo = vmulq_n_f32(vcvt_f32_f16(vget_low_f16(v)), 256.0f);
        *hi = vmulq_n_f32(vcvt_f32_f16(vget_high_f16(v)), 256.0f);
        break;
    }
    }
}

static float dot_neon(const lc_matrix *m, const void *row, const float *x, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        load8_neon(m, row, i, &lo, &hi);
        a0 = vfmaq_f32(a0, lo, vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, hi, vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    if (i < n) {
        const size_t elem = dtype_size(m->dtype);
        s += dot_portable(m, (const char *)row + i * elem, x + i, n - i);
    }
    return s;
}
#endif

// ---------------------------------------------------------------------------------------------------------
// Public entry points


static float dot_any(const lc_matrix *m, const void *row, const float *x, int64_t n, int level) {
#if LC_X86
    if (level == 1) return dot_avx2(m, row, x, n);
#endif
#if LC_NEON
    if (level == 2) return dot_neon(m, row, x, n);
#endif
    (void)level;
    return dot_portable(m, row, x, n);
}

static void row_to_f32_any(const lc_matrix *m, const void *row, int64_t n, float *out, int level) {
#if LC_X86
    if (level == 1) {
        row_to_f32_avx2(m, row, n, out);
        return;
    }
#endif
    (void)level;
    row_to_f32_portable(m, row, n, out);
}

static void dot4_f32_any(const float *w, int64_t ldw, const float *x, int64_t n, float *out, int level) {
#if LC_X86
    if (level == 1) {
        dot4_f32_avx2(w, ldw, x, n, out);
        return;
    }
#endif
    for (int r = 0; r < 4; r++) out[r] = dot_any(&(lc_matrix){.dtype = LC_DTYPE_F32}, w + r * ldw, x, n, level);
}

// One row of W as float32 into out, with FP8 block scales applied.
static void dequantize_row(const lc_matrix *w, int64_t r, float *out, int level) {
    const char *row = (const char *)w->data + (size_t)r * (size_t)w->cols * dtype_size(w->dtype);
    row_to_f32_any(w, row, w->cols, out, level);
    if (w->dtype == LC_DTYPE_F8_E4M3) scale_f8_blocks(w, r, 0, w->cols, out);
}

void lc_dequantize_rows(const lc_matrix *w, int64_t row_begin, int64_t row_end, float *out) {
    int level = lc_simd_level();
    for (int64_t r = row_begin; r < row_end; r++) dequantize_row(w, r, out + (r - row_begin) * w->cols, level);
}

int64_t lc_matmul_scratch_floats(const lc_matrix *w, int64_t n) {
    int64_t floats = 4 * w->cols;  // the portable path widens four rows at a time
#if LC_X86
    // The packed GEMM's panels, or each token's x split into even and odd columns.
    const int64_t vector = n >= LC_GEMM_MIN_TOKENS ? (1 + LC_GROUP) * LC_PANEL * LC_KC : n * w->cols;
    if (vector > floats) floats = vector;
#else
    (void)n;
#endif
    return floats;
}

// One token's product over rows [row_begin, row_end).
static void matvec_any(const lc_matrix *w, const float *x, float *y, int64_t row_begin, int64_t row_end, float *scratch, int level) {
#if LC_X86
    if (level == 1 && w->dtype == LC_DTYPE_BF16) {
        split_even_odd_avx2(x, w->cols, scratch);
        matvec_bf16_avx2((const uint16_t *)w->data, w->cols, x, scratch, y, row_begin, row_end);
        return;
    }
    if (level == 1 && w->dtype == LC_DTYPE_F8_E4M3) {
        matvec_f8_avx2(w, x, scratch, y, row_begin, row_end);
        return;
    }
#endif
    // Stream each weight row once, converting in registers.
    const size_t row_bytes = (size_t)w->cols * dtype_size(w->dtype);
    for (int64_t r = row_begin; r < row_end; r++) {
        const char *row = (const char *)w->data + (size_t)r * row_bytes;
        if (w->dtype != LC_DTYPE_F8_E4M3) {
            y[r] = dot_any(w, row, x, w->cols, level);
            continue;
        }
        const float *scales = w->scales + (r / w->block_rows) * w->scale_cols;
        float s = 0;
        for (int64_t c = 0, b = 0; c < w->cols; c += w->block_cols, b++) {
            int64_t len = w->cols - c < w->block_cols ? w->cols - c : w->block_cols;
            s += dot_any(w, row + c, x + c, len, level) * scales[b];
        }
        y[r] = s;
    }
}

void lc_matmul(const lc_matrix *w, const float *x, int64_t ldx, int64_t n,
               float *y, int64_t ldy, int64_t row_begin, int64_t row_end, float *scratch) {
    int level = lc_simd_level();
    if (n == 1) {
        matvec_any(w, x, y, row_begin, row_end, scratch, level);
        return;
    }
#if LC_X86
    if (level == 1) {
        if (n >= LC_GEMM_MIN_TOKENS) {
            gemm_avx2(w, x, ldx, n, y, ldy, row_begin, row_end, scratch);
            return;
        }
        if (n == 2) {
            switch (w->dtype) {
            case LC_DTYPE_BF16:
                if (lc_simd_avx512()) pair_bf16_avx512vl(w, x, ldx, y, ldy, row_begin, row_end, scratch);
                else pair_bf16_avx2(w, x, ldx, y, ldy, row_begin, row_end, scratch);
                break;
            case LC_DTYPE_F8_E4M3: pair_f8_avx2(w, x, ldx, y, ldy, row_begin, row_end, scratch); break;
            case LC_DTYPE_F16: pair_f16_avx2(w, x, ldx, y, ldy, row_begin, row_end); break;
            default: pair_f32_avx2(w, x, ldx, y, ldy, row_begin, row_end); break;
            }
        } else if (w->dtype == LC_DTYPE_BF16) {
            tile_eo_bf16_avx2(w, x, ldx, n, y, ldy, row_begin, row_end, scratch);
        } else {
            tile_avx2(w, x, ldx, n, y, ldy, row_begin, row_end);
        }
        return;
    }
#endif
    if (n == 2) {
        // Token by token, as one-token products compute them (the weights come from cache the second time).
        for (int64_t t = 0; t < n; t++) matvec_any(w, x + t * ldx, y + t * ldy, row_begin, row_end, scratch, level);
        return;
    }
    // Matrix-matrix: widen four rows once, then use them for every token.
    int64_t r = row_begin;
    for (; r + 4 <= row_end; r += 4) {
        for (int k = 0; k < 4; k++) dequantize_row(w, r + k, scratch + k * w->cols, level);
        for (int64_t t = 0; t < n; t++) {
            float out[4];
            dot4_f32_any(scratch, w->cols, x + t * ldx, w->cols, out, level);
            for (int k = 0; k < 4; k++) y[t * ldy + r + k] = out[k];
        }
    }
    for (; r < row_end; r++) {
        dequantize_row(w, r, scratch, level);
        for (int64_t t = 0; t < n; t++)
            y[t * ldy + r] = dot_any(&(lc_matrix){.dtype = LC_DTYPE_F32}, scratch, x + t * ldx, w->cols, level);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Latent attention

static float dot_f32_any(const float *a, const float *b, int64_t n, int level) {
#if LC_X86
    if (level == 1) return dot_f32_avx2(a, b, n);
#endif
    return dot_any(&(lc_matrix){.dtype = LC_DTYPE_F32}, a, b, n, level);
}

// y += a * x
static void axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void lc_mla_absorb_query(const float *wk, int64_t nope, int64_t kv_rank, const float *q_nope, float *q_lat) {
    memset(q_lat, 0, (size_t)kv_rank * sizeof(float));
    for (int64_t i = 0; i < nope; i++) axpy(q_lat, q_nope[i], wk + i * kv_rank, kv_rank);
}

void lc_mla_scores(const float *q_lat, const float *q_rope, int64_t q_stride, int64_t heads, int64_t kv_rank,
                   int64_t rope_dim, const float *latents, const float *ropes, int64_t positions, float scale,
                   float *scores, int64_t ld_scores, float *scratch) {
    // Two matrix products with the cached rows as the "weights": every latent row is read once and meets
    // all heads' queries inside the register tiles.
    lc_matrix lat = {.data = latents, .rows = positions, .cols = kv_rank, .dtype = LC_DTYPE_F32};
    lc_matrix rop = {.data = ropes, .rows = positions, .cols = rope_dim, .dtype = LC_DTYPE_F32};
    float *rope_scores = scratch, *work = scratch + heads * positions;
    lc_matmul(&lat, q_lat, kv_rank, heads, scores, ld_scores, 0, positions, work);
    lc_matmul(&rop, q_rope, q_stride, heads, rope_scores, positions, 0, positions, work);
    for (int64_t h = 0; h < heads; h++)
        for (int64_t p = 0; p < positions; p++)
            scores[h * ld_scores + p] = (scores[h * ld_scores + p] + rope_scores[h * positions + p]) * scale;
}

int64_t lc_mla_scores_scratch_floats(int64_t heads, int64_t kv_rank, int64_t rope_dim, int64_t positions) {
    lc_matrix lat = {.rows = positions, .cols = kv_rank > rope_dim ? kv_rank : rope_dim, .dtype = LC_DTYPE_F32};
    return heads * positions + lc_matmul_scratch_floats(&lat, heads);
}

#if LC_X86
// o_lat[h] += sum_p weights[h][p] * latents[p] for 8 columns at a time, all heads in registers (up to 12).
LC_AVX2 static void mla_mix_avx2(const float *weights, int64_t ld, int64_t heads, const float *latents,
                                 int64_t positions, int64_t kv_rank, float *o_lat) {
    enum { H = 12 };
    for (int64_t h0 = 0; h0 < heads; h0 += H) {
        const int64_t hn = heads - h0 < H ? heads - h0 : H;
        // Missing heads of a last partial group repeat the last one (computed, not stored): the loop
        // keeps a fixed shape and its 12 sums stay in registers.
        const float *w[H];
        for (int j = 0; j < H; j++) w[j] = weights + (h0 + (j < hn ? j : hn - 1)) * ld;
        for (int64_t k = 0; k + 8 <= kv_rank; k += 8) {
            __m256 acc[H];
            for (int j = 0; j < H; j++) acc[j] = _mm256_loadu_ps(o_lat + (h0 + (j < hn ? j : hn - 1)) * kv_rank + k);
            for (int64_t p = 0; p < positions; p++) {
                const __m256 v = _mm256_loadu_ps(latents + p * kv_rank + k);
                for (int j = 0; j < H; j++) acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(w[j] + p), v, acc[j]);
            }
            float out[H][8];
            for (int j = 0; j < H; j++) _mm256_storeu_ps(out[j], acc[j]);
            for (int j = 0; j < hn; j++) memcpy(o_lat + (h0 + j) * kv_rank + k, out[j], sizeof out[j]);
        }
    }
}
#endif

void lc_mla_mix(const float *weights, int64_t ld, int64_t heads, const float *latents, int64_t positions,
                int64_t kv_rank, float *o_lat) {
#if LC_X86
    if (lc_simd_level() == 1 && kv_rank % 8 == 0) {
        // Blocks of positions small enough that their latents stay in L2 across the column passes.
        for (int64_t p = 0; p < positions; p += 256) {
            const int64_t n = positions - p < 256 ? positions - p : 256;
            mla_mix_avx2(weights + p, ld, heads, latents + p * kv_rank, n, kv_rank, o_lat);
        }
        return;
    }
#endif
    for (int64_t p = 0; p < positions; p++)
        for (int64_t h = 0; h < heads; h++) axpy(o_lat + h * kv_rank, weights[h * ld + p], latents + p * kv_rank, kv_rank);
}

void lc_mla_output(const float *wv, int64_t v_dim, int64_t kv_rank, const float *o_lat, float *out) {
    int level = lc_simd_level();
    for (int64_t j = 0; j < v_dim; j++) out[j] = dot_f32_any(wv + j * kv_rank, o_lat, kv_rank, level);
}

// Softmax in place with the vectorised exp of lc_simd.h on AVX2.

#if LC_X86
// x[i] = exp(x[i] - max) for i in [0, n) (n a multiple of 8); returns their sum.
LC_AVX2 static float exp_sum_avx2(float *x, int64_t n, float max) {
    __m256 s = _mm256_setzero_ps();
    const __m256 m = _mm256_set1_ps(max);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    return hsum256(s);
}
#endif

void lc_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float max = x[0];
    for (int64_t i = 1; i < n; i++) max = x[i] > max ? x[i] : max;
    float sum = 0;
    int64_t i = 0;
#if LC_X86
    if (lc_simd_level() == 1) {
        i = n & ~(int64_t)7;
        sum = exp_sum_avx2(x, i, max);
    }
#endif
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (i = 0; i < n; i++) x[i] *= inv;
}

#if LC_X86
LC_AVX2 static void silu_multiply_avx2(float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(zero, g))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
}
#endif

void lc_silu_multiply(float *gate, const float *up, int64_t n) {
    int64_t i = 0;
#if LC_X86
    if (lc_simd_level() == 1) {
        i = n & ~(int64_t)7;
        silu_multiply_avx2(gate, up, i);
    }
#endif
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// ---------------------------------------------------------------------------------------------------------
// Bandwidth probes (plain loops: the compiler vectorises them; they are memory-bound either way)

float lc_stream_read(const float *a, int64_t n) {
    float s[16] = {0};  // independent sums, so the loop vectorises without -ffast-math
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += a[i + j];
    for (; i < n; i++) s[0] += a[i];
    float total = 0;
    for (int j = 0; j < 16; j++) total += s[j];
    return total;
}

void lc_stream_copy(float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) a[i] = b[i];
}

void lc_stream_triad(float *a, const float *b, const float *c, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
