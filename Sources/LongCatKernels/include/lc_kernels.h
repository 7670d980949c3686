// Matrix kernels for weights kept in their file dtype. Everything the model multiplies by a weight goes
// through here: weights are converted to float32 on the fly, inside the inner loop, and never widened in
// memory. The Swift layer (LongCatTensor) wraps these in safe APIs and splits work across threads.
#ifndef LC_KERNELS_H
#define LC_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LC_DTYPE_F32 = 0,
    LC_DTYPE_F16 = 1,
    LC_DTYPE_BF16 = 2,
    LC_DTYPE_F8_E4M3 = 3,
} lc_dtype;

/// A row-major [rows][cols] weight matrix. For F8_E4M3 `scales` holds one float per
/// block_rows x block_cols block, laid out [ceil(rows/block_rows)][scale_cols]; it is NULL otherwise.
typedef struct {
    const void *data;
    const float *scales;
    int64_t rows;
    int64_t cols;
    int64_t block_rows;
    int64_t block_cols;
    int64_t scale_cols;
    int32_t dtype;
} lc_matrix;

/// y[t * ldy + r] = sum_c W[r][c] * x[t * ldx + c] for r in [row_begin, row_end) and t in [0, n).
/// `scratch` must hold lc_matmul_scratch_floats(w, n) floats.
void lc_matmul(const lc_matrix *w, const float *x, int64_t ldx, int64_t n,
               float *y, int64_t ldy, int64_t row_begin, int64_t row_end, float *scratch);

/// Floats of scratch lc_matmul needs for this matrix and `n` tokens.
int64_t lc_matmul_scratch_floats(const lc_matrix *w, int64_t n);

/// out[(r - row_begin) * cols + c] = W[r][c] as float32 (block scale applied), for r in [row_begin, row_end).
void lc_dequantize_rows(const lc_matrix *w, int64_t row_begin, int64_t row_end, float *out);

/// Which code path the kernels use on this CPU: 0 portable, 1 AVX2+FMA+F16C, 2 NEON.
int lc_simd_level(void);

/// Forces the portable path (for testing the fallback on machines with a vector unit); 0 restores detection.
void lc_force_portable(int force);

/// Scalar conversions, exposed for tests and for writers.
float lc_f16_to_f32(uint16_t h);
float lc_bf16_to_f32(uint16_t b);
float lc_f8e4m3_to_f32(uint8_t v);
uint16_t lc_f32_to_bf16(float f);   // round to nearest even, NaN preserved
uint16_t lc_f32_to_f16(float f);    // round to nearest even

/// MLA attention in the latent space (kv_b absorbed into the query and the output). The cache holds per
/// position only the latent (kv_rank floats) and the shared rotated key (rope_dim), so every head reads the
/// same rows: the scores and the mix visit each cached position once for all heads. Wk_h and Wv_h are a
/// head's key rows ([nope][kv_rank]) and value rows ([v_dim][kv_rank]) of kv_b_proj as float32.
///
/// q_lat = sum_i q_nope[i] * Wk_h[i]
void lc_mla_absorb_query(const float *wk, int64_t nope, int64_t kv_rank, const float *q_nope, float *q_lat);
/// scores[h][p] = (q_lat[h] . latents[p] + q_rope[h] . ropes[p]) * scale   (q_rope[h] at q_rope + h * q_stride)
void lc_mla_scores(const float *q_lat, const float *q_rope, int64_t q_stride, int64_t heads, int64_t kv_rank,
                   int64_t rope_dim, const float *latents, const float *ropes, int64_t positions, float scale,
                   float *scores, int64_t ld_scores, float *scratch);
/// Floats of scratch lc_mla_scores needs.
int64_t lc_mla_scores_scratch_floats(int64_t heads, int64_t kv_rank, int64_t rope_dim, int64_t positions);
/// o_lat[h] += sum_p weights[h][p] * latents[p]
void lc_mla_mix(const float *weights, int64_t ld, int64_t heads, const float *latents, int64_t positions,
                int64_t kv_rank, float *o_lat);
/// out[j] = Wv_h[j] . o_lat
void lc_mla_output(const float *wv, int64_t v_dim, int64_t kv_rank, const float *o_lat, float *out);
/// Numerically stable softmax of x[0..n) in place.
void lc_softmax(float *x, int64_t n);

/// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i] (SwiGLU), with the exp of lc_softmax.
void lc_silu_multiply(float *gate, const float *up, int64_t n);

/// STREAM-style kernels for measuring memory bandwidth: a[i] = b[i] (copy) and a[i] = b[i] + s * c[i] (triad),
/// and a read-only sum (the access pattern of decode, which only reads weights).
float lc_stream_read(const float *a, int64_t n);
void lc_stream_copy(float *a, const float *b, int64_t n);
void lc_stream_triad(float *a, const float *b, const float *c, float s, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
