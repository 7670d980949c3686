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
/// `scratch` must hold lc_matmul_scratch_floats(w) floats.
void lc_matmul(const lc_matrix *w, const float *x, int64_t ldx, int64_t n,
               float *y, int64_t ldy, int64_t row_begin, int64_t row_end, float *scratch);

/// Floats of scratch lc_matmul needs for this matrix.
int64_t lc_matmul_scratch_floats(const lc_matrix *w);

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

#ifdef __cplusplus
}
#endif

#endif

#ifdef __cplusplus
extern "C" {
#endif

/// One head of MLA attention in the latent space (kv_b absorbed into query and output), for one query:
///   q_lat = Wk^T q_nope                       Wk: [nope][kv_rank]  (this head's key rows of kv_b, float32)
///   s_p   = (q_lat . latent_p + q_rope . rope_p) * scale     for p in [0, positions)
///   o_lat = sum_p softmax(s)_p latent_p
///   out   = Wv o_lat                          Wv: [v_dim][kv_rank] (this head's value rows of kv_b)
/// `scratch` must hold 2 * kv_rank + positions floats.
void lc_mla_head(const float *wk, const float *wv, int64_t nope, int64_t v_dim, int64_t kv_rank, int64_t rope_dim,
                 const float *q_nope, const float *q_rope, const float *latents, const float *ropes,
                 int64_t positions, float scale, float *out, float *scratch);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// STREAM-style kernels for measuring memory bandwidth: a[i] = b[i] (copy) and a[i] = b[i] + s * c[i] (triad),
/// and a read-only sum (the access pattern of decode, which only reads weights).
float lc_stream_read(const float *a, int64_t n);
void lc_stream_copy(float *a, const float *b, int64_t n);
void lc_stream_triad(float *a, const float *b, const float *c, float s, int64_t n);

#ifdef __cplusplus
}
#endif
