// Block-quantized (q8, q4) weights: quantization, dequantization and products. Layouts are described in
// lc_quant.h. Like kernels.c there are three paths: AVX2 (target attribute, chosen at run time), NEON
// and portable C. Integer block dot products are exact on every path, so paths differ only in the order
// of the float sums; activation quantization gives identical bytes on every path (for finite inputs).
//
// Per block of 32 the vector paths do the integer work in registers and one float multiply-add with
// scale_w * scale_x. The products of a block's scales are formed eight blocks at a time (one F16C
// conversion and one multiply) and picked per block with a lane permute.
#include "lc_quant.h"
#include "lc_kernels.h"
#include "lc_simd.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define QB LC_QUANT_BLOCK

int64_t lc_quant_row_bytes(int32_t format, int64_t cols) { return format == LC_QUANT_Q8 ? cols : cols / 2; }

// ---------------------------------------------------------------------------------------------------------
// Weights

// A block scale as float16. Scales past float16's range (|w| > 8e6) saturate; the quants then clamp.
static uint16_t scale_to_f16(float d) {
    uint16_t h = lc_f32_to_f16(d);
    if ((h & 0x7fff) == 0x7c00) h = (uint16_t)((h & 0x8000) | 0x7bff);
    return h;
}

static inline int clamp_int(long v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : (int)v); }

// q = round(w / d), d = max|w| / 127, rounded to float16 first so the quants fit the stored scale.
static void quantize_block_q8(const float *w, int8_t *q, uint16_t *scale) {
    float amax = 0;
    for (int i = 0; i < QB; i++) amax = fmaxf(amax, fabsf(w[i]));
    const uint16_t h = scale_to_f16(amax / 127.0f);
    const float d = lc_f16_to_f32(h), id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < QB; i++) q[i] = (int8_t)clamp_int(lrintf(w[i] * id), -127, 127);
    *scale = h;
}

// Like llama.cpp's Q4_0: the element of largest magnitude maps to -8 exactly, so all 16 levels are used
// (the other side reaches +7 before it clamps).
static void quantize_block_q4(const float *w, uint8_t *q, uint16_t *scale) {
    float amax = 0, max = 0;
    for (int i = 0; i < QB; i++) {
        if (fabsf(w[i]) > amax) {
            amax = fabsf(w[i]);
            max = w[i];
        }
    }
    const uint16_t h = scale_to_f16(max / -8.0f);
    const float d = lc_f16_to_f32(h), id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QB / 2; j++) {
        const int lo = clamp_int(lrintf(w[j] * id) + 8, 0, 15);
        const int hi = clamp_int(lrintf(w[j + QB / 2] * id) + 8, 0, 15);
        q[j] = (uint8_t)(lo | hi << 4);
    }
    *scale = h;
}

static void dequantize_row_portable(const lc_qmatrix *m, int64_t r, float *out) {
    const int64_t nb = m->cols / QB;
    for (int64_t b = 0; b < nb; b++) {
        const float d = lc_f16_to_f32(m->scales[r * nb + b]);
        float *o = out + b * QB;
        if (m->format == LC_QUANT_Q8) {
            const int8_t *q = (const int8_t *)m->quants + r * m->cols + b * QB;
            for (int i = 0; i < QB; i++) o[i] = d * (float)q[i];
        } else {
            const uint8_t *q = (const uint8_t *)m->quants + r * (m->cols / 2) + b * QB / 2;
            for (int j = 0; j < QB / 2; j++) {
                o[j] = d * (float)((q[j] & 15) - 8);
                o[j + QB / 2] = d * (float)((q[j] >> 4) - 8);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Activations: per token, the quants (int16 for q8 matrices, int8 for q4), then one float scale per block,
// then (q4 only) per block 8 * scale * sum(quants), the term the nibbles' offset of 8 subtracts.
// q4 activations are stored by pairs of blocks A, B as A[0..15] B[0..15] A[16..31] B[16..31], the order in
// which one 32-byte load of A's and B's nibbles unpacks (pair_q4); an odd last block is stored as is.

typedef struct {
    const void *q;
    const float *d;
    const float *off;
} lc_qact;

int64_t lc_quant_activation_bytes(int32_t format, int64_t cols) {
    const int64_t nb = cols / QB;
    const int64_t bytes = format == LC_QUANT_Q8 ? cols * 2 + nb * 4 : cols + nb * 8;
    return (bytes + 63) / 64 * 64;
}

static inline int64_t q4_act_pos(int64_t nb, int64_t b, int i) {
    if ((b ^ 1) >= nb) return b * QB + i;
    return (b & ~(int64_t)1) * QB + (b & 1) * 16 + (i < 16 ? i : i + 16);
}

static lc_qact act_at(int32_t format, const void *base, int64_t cols, int64_t t) {
    const uint8_t *p = (const uint8_t *)base + t * lc_quant_activation_bytes(format, cols);
    const int64_t qbytes = format == LC_QUANT_Q8 ? cols * 2 : cols;
    const float *d = (const float *)(p + qbytes);
    return (lc_qact){p, d, format == LC_QUANT_Q8 ? NULL : d + cols / QB};
}

// The inverse scale of a block whose largest magnitude is amax and whose largest quant is qmax. Blocks of
// zeros (or of values so small the inverse would overflow) quantize to zeros with scale 0: no NaN.
static inline float act_scale(float amax, float qmax, float *inverse) {
    const float d = amax / qmax;
    *inverse = d >= FLT_MIN ? 1.0f / d : 0.0f;
    return d >= FLT_MIN ? d : 0.0f;
}

static void quantize_act_portable(int32_t format, const float *x, int64_t cols, lc_qact a) {
    for (int64_t b = 0; b < cols / QB; b++) {
        const float *xb = x + b * QB;
        float amax = 0, id;
        for (int i = 0; i < QB; i++) amax = fmaxf(amax, fabsf(xb[i]));
        if (format == LC_QUANT_Q8) {
            ((float *)a.d)[b] = act_scale(amax, 32767.0f, &id);
            int16_t *q = (int16_t *)a.q + b * QB;
            for (int i = 0; i < QB; i++) q[i] = (int16_t)clamp_int(lrintf(xb[i] * id), -32768, 32767);
        } else {
            const float d = act_scale(amax, 127.0f, &id);
            int8_t *q = (int8_t *)a.q;
            int sum = 0;
            for (int i = 0; i < QB; i++) {
                const int v = clamp_int(lrintf(xb[i] * id), -128, 127);
                q[q4_act_pos(cols / QB, b, i)] = (int8_t)v;
                sum += v;
            }
            ((float *)a.d)[b] = d;
            ((float *)a.off)[b] = (float)(8 * sum) * d;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Portable products

static float dot_portable(const lc_qmatrix *m, int64_t r, lc_qact a) {
    const int64_t nb = m->cols / QB;
    const uint16_t *ws = m->scales + r * nb;
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        const float dw = lc_f16_to_f32(ws[b]);
        int32_t acc = 0;
        if (m->format == LC_QUANT_Q8) {
            const int8_t *w = (const int8_t *)m->quants + r * m->cols + b * QB;
            const int16_t *x = (const int16_t *)a.q + b * QB;
            for (int i = 0; i < QB; i++) acc += (int32_t)w[i] * x[i];
            s += (float)acc * (dw * a.d[b]);
        } else {
            const uint8_t *w = (const uint8_t *)m->quants + r * (m->cols / 2) + b * QB / 2;
            const int8_t *lo = (const int8_t *)a.q + q4_act_pos(nb, b, 0), *hi = (const int8_t *)a.q + q4_act_pos(nb, b, 16);
            for (int j = 0; j < QB / 2; j++) acc += (w[j] & 15) * lo[j] + (w[j] >> 4) * hi[j];
            s += (float)acc * (dw * a.d[b]) - dw * a.off[b];
        }
    }
    return s;
}

// ---------------------------------------------------------------------------------------------------------
// AVX2 path

#if LC_X86
// Scales of `count` (<= 8) consecutive blocks as float, zeros past count.
LC_AVX2 static inline __m256 load_wscales(const uint16_t *p, int count) {
    if (count == 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t h[8] = {0};
    memcpy(h, p, (size_t)count * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}
LC_AVX2 static inline __m256 load_floats(const float *p, int count) {
    if (count == 8) return _mm256_loadu_ps(p);
    float f[8] = {0};
    memcpy(f, p, (size_t)count * 4);
    return _mm256_loadu_ps(f);
}

// One block: eight int32 partial sums of q8 weights times int16 activations.
LC_AVX2 static inline __m256i block_q8(const int8_t *w, const int16_t *x) {
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w)),
                                         _mm256_loadu_si256((const __m256i *)x));
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16))),
                                         _mm256_loadu_si256((const __m256i *)(x + 16)));
    return _mm256_add_epi32(lo, hi);
}

// A q4 block's 16 bytes as 32 bytes 0..15 in element order.
LC_AVX2 static inline __m256i unpack_q4(const uint8_t *w) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)w);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
}

// One q4 block on its own (the last of an odd count): unsigned nibbles times int8 activations (products fit
// int16: 15 * 128 * 2), pairs summed to int32.
LC_AVX2 static inline __m256i block_q4(const uint8_t *w, const int8_t *x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(unpack_q4(w), _mm256_loadu_si256((const __m256i *)x)), _mm256_set1_epi16(1));
}

// Two q4 blocks A, B from one 32-byte load: low nibbles are A[0..15] | B[0..15], high nibbles A[16..31] |
// B[16..31], the order the activations are stored in (see q4_act_pos). Lanes 0-3 of the result are A's
// sums, lanes 4-7 B's: one conversion and one multiply-add serve two blocks.
LC_AVX2 static inline __m256i unpack_pair_lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
LC_AVX2 static inline __m256i unpack_pair_hi(__m256i v) {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}
LC_AVX2 static inline __m256i pair_q4(__m256i lo, __m256i hi, const int8_t *x) {
    const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x)),
                                       _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 32))));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

// Lane k of v in every lane; lanes k and k + 1 in the low and high four.
LC_AVX2 static inline __m256 lane(__m256 v, int k) { return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(k)); }
LC_AVX2 static inline __m256 lanes2(__m256 v, int k) {
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1));
}

// sum_b scale_w[b] * off[b]: what the q4 offset of 8 takes away from a row's product.
LC_AVX2 static float q4_offset_avx2(const uint16_t *ws, const float *off, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b += 8) {
        const int g = nb - b < 8 ? (int)(nb - b) : 8;
        acc = _mm256_fmadd_ps(load_wscales(ws + b, g), load_floats(off + b, g), acc);
    }
    return hsum256(acc);
}

// Matrix-vector rows. Full groups of eight blocks are unrolled with four accumulators (the multiply-add
// latency would otherwise bound the loop); a last partial group runs block by block. Prefetching 2 KB
// ahead (one group's lines) was measured on bench-1b shapes, one thread: q4 ~215 us for 4096x1536 against
// ~440 without; q8 ~10% faster. Two rows at a time (sharing activation loads) measured slower for q4.
#define LC_PREFETCH_BYTES 2048
// Written for T = 1 or 2 tokens (always inlined with a constant T): each token keeps the same accumulators in
// the same order whatever T is, and the weight blocks are loaded once for both, so a token's result does not
// depend on the other tokens of its product (products of fewer than LC_QTILE_MIN_TOKENS tokens go two at a time;
// see kernels.c on batch invariance).
__attribute__((always_inline)) LC_AVX2 static inline void dot_q8_tokens_avx2(const int8_t *w, const uint16_t *ws, const lc_qact *a,
                                                                           const int T, int64_t nb, float *out) {
    __m256 acc[2][4];
    for (int j = 0; j < T; j++)
        for (int k = 0; k < 4; k++) acc[j][k] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        for (int p = 0; p < 8 * QB; p += 64) _mm_prefetch((const char *)(w + b * QB + LC_PREFETCH_BYTES + p), _MM_HINT_T0);
        const __m256 dw = load_wscales(ws + b, 8);
        __m256 s[2];
        for (int j = 0; j < T; j++) s[j] = _mm256_mul_ps(dw, load_floats(a[j].d + b, 8));
        for (int k = 0; k < 8; k++) {
            const int64_t o = (b + k) * QB;
            const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + o)));
            const __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + o + 16)));
            for (int j = 0; j < T; j++) {
                const int16_t *x = (const int16_t *)a[j].q + o;
                const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x)),
                                                   _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 16))));
                acc[j][k & 3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), lane(s[j], k), acc[j][k & 3]);
            }
        }
    }
    if (b < nb) {
        const int g = (int)(nb - b);
        const __m256 dw = load_wscales(ws + b, g);
        __m256 s[2];
        for (int j = 0; j < T; j++) s[j] = _mm256_mul_ps(dw, load_floats(a[j].d + b, g));
        for (int k = 0; k < g; k++) {
            const int64_t o = (b + k) * QB;
            for (int j = 0; j < T; j++)
                acc[j][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_q8(w + o, (const int16_t *)a[j].q + o)), lane(s[j], k), acc[j][0]);
        }
    }
    for (int j = 0; j < T; j++) out[j] = hsum256(_mm256_add_ps(_mm256_add_ps(acc[j][0], acc[j][1]), _mm256_add_ps(acc[j][2], acc[j][3])));
}

__attribute__((always_inline)) LC_AVX2 static inline void dot_q4_tokens_avx2(const uint8_t *w, const uint16_t *ws, const lc_qact *a,
                                                                           const int T, int64_t nb, float *out) {
    __m256 acc[2][4];
    for (int j = 0; j < T; j++)
        for (int k = 0; k < 4; k++) acc[j][k] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        _mm_prefetch((const char *)(w + b * 16 + LC_PREFETCH_BYTES), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * 16 + LC_PREFETCH_BYTES + 64), _MM_HINT_T0);
        const __m256 dw = load_wscales(ws + b, 8);
        __m256 s[2];
        for (int j = 0; j < T; j++) s[j] = _mm256_mul_ps(dw, load_floats(a[j].d + b, 8));
        for (int k = 0; k < 8; k += 2) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w + (b + k) * 16));
            const __m256i lo = unpack_pair_lo(v), hi = unpack_pair_hi(v);
            for (int j = 0; j < T; j++)
                acc[j][k / 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_q4(lo, hi, (const int8_t *)a[j].q + (b + k) * QB)),
                                                lanes2(s[j], k), acc[j][k / 2]);
        }
    }
    if (b < nb) {
        const int g = (int)(nb - b);
        const __m256 dw = load_wscales(ws + b, g);
        __m256 s[2];
        for (int j = 0; j < T; j++) s[j] = _mm256_mul_ps(dw, load_floats(a[j].d + b, g));
        int k = 0;
        for (; k + 2 <= g; k += 2) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(w + (b + k) * 16));
            const __m256i lo = unpack_pair_lo(v), hi = unpack_pair_hi(v);
            for (int j = 0; j < T; j++)
                acc[j][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_q4(lo, hi, (const int8_t *)a[j].q + (b + k) * QB)), lanes2(s[j], k), acc[j][0]);
        }
        if (k < g)
            for (int j = 0; j < T; j++)
                acc[j][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_q4(w + (b + k) * 16, (const int8_t *)a[j].q + (b + k) * QB)),
                                            lane(s[j], k), acc[j][1]);
    }
    for (int j = 0; j < T; j++)
        out[j] = hsum256(_mm256_add_ps(_mm256_add_ps(acc[j][0], acc[j][1]), _mm256_add_ps(acc[j][2], acc[j][3]))) - q4_offset_avx2(ws, a[j].off, nb);
}

// Rows [r0, r1) for tokens [0, n), two at a time.
LC_AVX2 static void pairs_avx2(const lc_qmatrix *m, const void *xq, int64_t n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = m->cols / QB, row_bytes = lc_quant_row_bytes(m->format, m->cols);
    const int q8 = m->format == LC_QUANT_Q8;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *q = (const uint8_t *)m->quants + r * row_bytes;
        const uint16_t *ws = m->scales + r * nb;
        for (int64_t t = 0; t < n; t += 2) {
            const lc_qact a[2] = {act_at(m->format, xq, m->cols, t), act_at(m->format, xq, m->cols, t + 1 < n ? t + 1 : t)};
            float out[2];
            if (n - t >= 2) {
                if (q8) dot_q8_tokens_avx2((const int8_t *)q, ws, a, 2, nb, out);
                else dot_q4_tokens_avx2(q, ws, a, 2, nb, out);
            } else {
                if (q8) dot_q8_tokens_avx2((const int8_t *)q, ws, a, 1, nb, out);
                else dot_q4_tokens_avx2(q, ws, a, 1, nb, out);
            }
            for (int j = 0; j < 2 && t + j < n; j++) y[(t + j) * ldy + r] = out[j];
        }
    }
}

// From this many tokens on (prefill), products use the tiles below; fewer go through pairs_avx2.
enum { LC_QTILE_MIN_TOKENS = 32 };

// Matrix-matrix tile: one row x 4 tokens (measured faster than 2 or 4 rows, whose accumulators and scale
// products spill). Each weight block is loaded and unpacked once for four tokens. Tokens past the end
// repeat the last valid one and are not stored. `g` blocks from `b` (g = 8 in full groups, where it unrolls).
typedef struct {
    const uint8_t *w;
    const uint16_t *ws;
    lc_qact a[4];
} lc_tile;

__attribute__((always_inline)) LC_AVX2 static inline void tile_group_q8(const lc_tile *t, int64_t b, int g, __m256 acc[4]) {
    __m256 s[4];
    const __m256 dw = load_wscales(t->ws + b, g);
    for (int j = 0; j < 4; j++) s[j] = _mm256_mul_ps(dw, load_floats(t->a[j].d + b, g));
    for (int k = 0; k < g; k++) {
        const int64_t o = (b + k) * QB;
        const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t->w + o)));
        const __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(t->w + o + 16)));
        for (int j = 0; j < 4; j++) {
            const int16_t *x = (const int16_t *)t->a[j].q + o;
            const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256((const __m256i *)x)),
                                               _mm256_madd_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 16))));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), lane(s[j], k), acc[j]);
        }
    }
}

__attribute__((always_inline)) LC_AVX2 static inline void tile_group_q4(const lc_tile *t, int64_t b, int g, __m256 acc[4]) {
    __m256 s[4];
    const __m256 dw = load_wscales(t->ws + b, g);
    for (int j = 0; j < 4; j++) s[j] = _mm256_mul_ps(dw, load_floats(t->a[j].d + b, g));
    int k = 0;
    for (; k + 2 <= g; k += 2) {
        const int64_t o = (b + k) * QB;
        const __m256i v = _mm256_loadu_si256((const __m256i *)(t->w + o / 2));
        const __m256i lo = unpack_pair_lo(v), hi = unpack_pair_hi(v);
        for (int j = 0; j < 4; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_q4(lo, hi, (const int8_t *)t->a[j].q + o)), lanes2(s[j], k), acc[j]);
    }
    if (k < g) {
        const int64_t o = (b + k) * QB;
        for (int j = 0; j < 4; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_q4(t->w + o / 2, (const int8_t *)t->a[j].q + o)), lane(s[j], k), acc[j]);
    }
}

// Tokens [t0, t1) for rows [r0, r1).
LC_AVX2 static void tile_rows_avx2(const lc_qmatrix *m, const void *xq, int64_t t0, int64_t t1, float *y, int64_t ldy,
                                   int64_t r0, int64_t r1) {
    const int64_t cols = m->cols, nb = cols / QB, row_bytes = lc_quant_row_bytes(m->format, cols);
    const int q8 = m->format == LC_QUANT_Q8;
    for (int64_t r = r0; r < r1; r++) {
        lc_tile t = {.w = (const uint8_t *)m->quants + r * row_bytes, .ws = m->scales + r * nb};
        for (int64_t tok = t0; tok < t1; tok += 4) {
            const int toks = t1 - tok < 4 ? (int)(t1 - tok) : 4;
            for (int j = 0; j < 4; j++) t.a[j] = act_at(m->format, xq, cols, tok + (j < toks ? j : toks - 1));
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            int64_t b = 0;
            if (q8) {
                for (; b + 8 <= nb; b += 8) tile_group_q8(&t, b, 8, acc);
                if (b < nb) tile_group_q8(&t, b, (int)(nb - b), acc);
            } else {
                for (; b + 8 <= nb; b += 8) tile_group_q4(&t, b, 8, acc);
                if (b < nb) tile_group_q4(&t, b, (int)(nb - b), acc);
            }
            for (int j = 0; j < toks; j++)
                y[(tok + j) * ldy + r] = hsum256(acc[j]) - (q8 ? 0.0f : q4_offset_avx2(t.ws, t.a[j].off, nb));
        }
    }
}

// Tokens go in blocks whose activations fit in L2 (~256 KB): otherwise, with hundreds of tokens (prefill),
// every row would fetch all of them again from L3 or memory. The rows are read once per block instead.
LC_AVX2 static void tile_avx2(const lc_qmatrix *m, const void *xq, int64_t n, float *y, int64_t ldy,
                              int64_t r0, int64_t r1) {
    const int64_t fit = (262144 / lc_quant_activation_bytes(m->format, m->cols)) / 4 * 4;
    const int64_t block = fit > 4 ? fit : 4;
    for (int64_t t0 = 0; t0 < n; t0 += block) tile_rows_avx2(m, xq, t0, n - t0 < block ? n : t0 + block, y, ldy, r0, r1);
}

// max |v| over a block's 32 values.
LC_AVX2 static inline float absmax32(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                   _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// Weight blocks as quantize_block_q8 / quantize_block_q4 do them, with identical results.
LC_AVX2 static void quantize_block_avx2(int32_t format, const float *w, uint8_t *q, uint16_t *scale) {
    const __m256 v0 = _mm256_loadu_ps(w), v1 = _mm256_loadu_ps(w + 8);
    const __m256 v2 = _mm256_loadu_ps(w + 16), v3 = _mm256_loadu_ps(w + 24);
    const float amax = absmax32(v0, v1, v2, v3);
    float peak = amax;  // q4: the signed value of the first element of largest magnitude
    if (format == LC_QUANT_Q4) {
        const __m256 a = _mm256_set1_ps(amax), abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        const uint32_t hit = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v0, abs_mask), a, _CMP_EQ_OQ)) |
                             (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v1, abs_mask), a, _CMP_EQ_OQ)) << 8 |
                             (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v2, abs_mask), a, _CMP_EQ_OQ)) << 16 |
                             (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(v3, abs_mask), a, _CMP_EQ_OQ)) << 24;
        peak = amax > 0 ? w[__builtin_ctz(hit)] : 0.0f;
    }
    const uint16_t h = scale_to_f16(format == LC_QUANT_Q8 ? amax / 127.0f : peak / -8.0f);
    const float d = _cvtsh_ss(h);
    const __m256 k = _mm256_set1_ps(d != 0 ? 1.0f / d : 0.0f);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, k)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, k));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, k)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, k));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // packs work within 128-bit lanes
    if (format == LC_QUANT_Q8) {
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)q, _mm256_max_epi8(_mm256_permutevar8x32_epi32(p, order), _mm256_set1_epi8(-127)));
    } else {
        const __m256i eight = _mm256_set1_epi32(8), lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(15);
        i0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i0, eight), lo), hi);
        i1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i1, eight), lo), hi);
        i2 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i2, eight), lo), hi);
        i3 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i3, eight), lo), hi);
        const __m256i p = _mm256_permutevar8x32_epi32(
            _mm256_packus_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3)), order);
        // Nibbles of at most 15: shifting 16-bit lanes left by 4 keeps each byte's bits in that byte.
        const __m128i low = _mm256_castsi256_si128(p), high = _mm256_extracti128_si256(p, 1);
        _mm_storeu_si128((__m128i *)q, _mm_or_si128(low, _mm_slli_epi16(high, 4)));
    }
    *scale = h;
}

LC_AVX2 static void quantize_act_avx2(int32_t format, const float *x, int64_t cols, lc_qact a) {
    for (int64_t b = 0; b < cols / QB; b++) {
        const float *xb = x + b * QB;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        const __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        const float amax = absmax32(v0, v1, v2, v3);
        float id;
        const float d = act_scale(amax, format == LC_QUANT_Q8 ? 32767.0f : 127.0f, &id);
        const __m256 k = _mm256_set1_ps(id);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, k)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, k));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, k)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, k));
        // packs work within 128-bit lanes; the permutes put elements back in order.
        const __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        ((float *)a.d)[b] = d;
        if (format == LC_QUANT_Q8) {
            int16_t *q = (int16_t *)a.q + b * QB;
            _mm256_storeu_si256((__m256i *)q, _mm256_permute4x64_epi64(p01, 0xD8));
            _mm256_storeu_si256((__m256i *)(q + 16), _mm256_permute4x64_epi64(p23, 0xD8));
        } else {
            const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            int8_t *q = (int8_t *)a.q;
            _mm_storeu_si128((__m128i *)(q + q4_act_pos(cols / QB, b, 0)), _mm256_castsi256_si128(p));
            _mm_storeu_si128((__m128i *)(q + q4_act_pos(cols / QB, b, 16)), _mm256_extracti128_si256(p, 1));
            // Sum of the saturated int8 values: widen pairs and sum.
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p);
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
            ((float *)a.off)[b] = (float)(8 * _mm_cvtsi128_si32(s)) * d;
        }
    }
}

LC_AVX2 static void dequantize_row_avx2(const lc_qmatrix *m, int64_t r, float *out) {
    const int64_t nb = m->cols / QB;
    for (int64_t b = 0; b < nb; b++) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(m->scales[r * nb + b]));
        __m256i q;  // 32 int8 quants in element order
        if (m->format == LC_QUANT_Q8) {
            q = _mm256_loadu_si256((const __m256i *)((const int8_t *)m->quants + r * m->cols + b * QB));
        } else {
            q = _mm256_sub_epi8(unpack_q4((const uint8_t *)m->quants + r * (m->cols / 2) + b * QB / 2), _mm256_set1_epi8(8));
        }
        const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        float *o = out + b * QB;
        _mm256_storeu_ps(o, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
        _mm256_storeu_ps(o + 24, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
}
#endif

// ---------------------------------------------------------------------------------------------------------
// NEON path: widening multiply-accumulate into int32 lanes, one float multiply-add per block.

#if LC_NEON
static float dot_neon(const lc_qmatrix *m, int64_t r, lc_qact a) {
    const int64_t nb = m->cols / QB;
    const uint16_t *ws = m->scales + r * nb;
    float32x4_t acc = vdupq_n_f32(0);
    float off = 0;
    for (int64_t b = 0; b < nb; b++) {
        const float dw = lc_f16_to_f32(ws[b]);
        int32x4_t s = vdupq_n_s32(0);
        if (m->format == LC_QUANT_Q8) {
            const int8_t *w = (const int8_t *)m->quants + r * m->cols + b * QB;
            const int16_t *x = (const int16_t *)a.q + b * QB;
            for (int i = 0; i < QB; i += 16) {
                const int8x16_t wv = vld1q_s8(w + i);
                const int16x8_t w0 = vmovl_s8(vget_low_s8(wv)), w1 = vmovl_high_s8(wv);
                const int16x8_t x0 = vld1q_s16(x + i), x1 = vld1q_s16(x + i + 8);
                s = vmlal_s16(s, vget_low_s16(w0), vget_low_s16(x0));
                s = vmlal_high_s16(s, w0, x0);
                s = vmlal_s16(s, vget_low_s16(w1), vget_low_s16(x1));
                s = vmlal_high_s16(s, w1, x1);
            }
        } else {
            const uint8x16_t raw = vld1q_u8((const uint8_t *)m->quants + r * (m->cols / 2) + b * QB / 2);
            const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(15)));
            const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
            const int8x16_t x0 = vld1q_s8((const int8_t *)a.q + q4_act_pos(nb, b, 0));
            const int8x16_t x1 = vld1q_s8((const int8_t *)a.q + q4_act_pos(nb, b, 16));
            s = vpadalq_s16(s, vmull_s8(vget_low_s8(lo), vget_low_s8(x0)));
            s = vpadalq_s16(s, vmull_high_s8(lo, x0));
            s = vpadalq_s16(s, vmull_s8(vget_low_s8(hi), vget_low_s8(x1)));
            s = vpadalq_s16(s, vmull_high_s8(hi, x1));
            off += dw * a.off[b];
        }
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), dw * a.d[b]);
    }
    return vaddvq_f32(acc) - off;
}
#endif

// ---------------------------------------------------------------------------------------------------------
// Entry points

void lc_quantize_rows(int32_t format, const float *w, int64_t rows, int64_t cols, void *quants, uint16_t *scales) {
    const int level = lc_simd_level();
    const int64_t nb = cols / QB, block_bytes = lc_quant_row_bytes(format, QB);
    for (int64_t i = 0; i < rows * nb; i++) {  // rows are contiguous in all three arrays
        const float *src = w + i * QB;
        uint8_t *dst = (uint8_t *)quants + i * block_bytes;
#if LC_X86
        if (level == 1) {
            quantize_block_avx2(format, src, dst, scales + i);
            continue;
        }
#endif
        (void)level;
        if (format == LC_QUANT_Q8) quantize_block_q8(src, (int8_t *)dst, scales + i);
        else quantize_block_q4(src, dst, scales + i);
    }
}

void lc_quantize_activations(int32_t format, const float *x, int64_t ldx, int64_t n, int64_t cols, void *out) {
    const int level = lc_simd_level();
    for (int64_t t = 0; t < n; t++) {
        const lc_qact a = act_at(format, out, cols, t);
#if LC_X86
        if (level == 1) {
            quantize_act_avx2(format, x + t * ldx, cols, a);
            continue;
        }
#endif
        (void)level;
        quantize_act_portable(format, x + t * ldx, cols, a);
    }
}

void lc_qdequantize_rows(const lc_qmatrix *w, int64_t row_begin, int64_t row_end, float *out) {
    const int level = lc_simd_level();
    for (int64_t r = row_begin; r < row_end; r++) {
        float *o = out + (r - row_begin) * w->cols;
#if LC_X86
        if (level == 1) {
            dequantize_row_avx2(w, r, o);
            continue;
        }
#endif
        (void)level;
        dequantize_row_portable(w, r, o);
    }
}

void lc_qmatmul(const lc_qmatrix *w, const void *xq, int64_t n, float *y, int64_t ldy,
                int64_t row_begin, int64_t row_end) {
    const int level = lc_simd_level();
#if LC_X86
    if (level == 1) {
        if (n >= LC_QTILE_MIN_TOKENS) tile_avx2(w, xq, n, y, ldy, row_begin, row_end);
        else pairs_avx2(w, xq, n, y, ldy, row_begin, row_end);
        return;
    }
#endif
    for (int64_t t = 0; t < n; t++) {
        const lc_qact a = act_at(w->format, xq, w->cols, t);
        for (int64_t r = row_begin; r < row_end; r++) {
#if LC_NEON
            if (level == 2) {
                y[t * ldy + r] = dot_neon(w, r, a);
                continue;
            }
#endif
            y[t * ldy + r] = dot_portable(w, r, a);
        }
    }
}
