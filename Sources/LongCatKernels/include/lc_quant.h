// Block-quantized weights (q8, q4) and their products. Decode reads every active weight once per token,
// so bytes per weight set its speed: q8 is 1 + 2/32 bytes, q4 0.5 + 2/32, against 2 for bf16.
//
// A weight row is split into blocks of 32 columns; each block has one float16 scale d:
//   q8: int8 q in [-127, 127],   w = d * q          quants [rows][cols]     int8
//   q4: uint8 nibble q in [0, 15], w = d * (q - 8)  quants [rows][cols / 2] uint8; byte j of a block holds
//       element j in its low nibble and element j + 16 in its high nibble
//   scales [rows][cols / 32] float16
// Products quantize the activations once per call (lc_quantize_activations) and take integer dot products
// per block: int16 activations for q8, int8 for q4 (whose weight rounding dominates by far). One float
// multiply-add per block applies the two scales. Why int16 for q8: on a 4096x4096 q8 matrix, int8
// activations (llama.cpp's Q8_0 x Q8_0) and int16 ones stream equally fast (~15 GB/s from memory, one
// core), but int8 rounding adds 1.2e-2 relative rms error to the product against 4.4e-5 for int16.
#ifndef LC_QUANT_H
#define LC_QUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LC_QUANT_BLOCK 32

typedef enum {
    LC_QUANT_Q8 = 0,
    LC_QUANT_Q4 = 1,
} lc_quant_format;

/// A block-quantized row-major [rows][cols] matrix; cols is a multiple of LC_QUANT_BLOCK.
typedef struct {
    const void *quants;
    const uint16_t *scales;
    int64_t rows;
    int64_t cols;
    int32_t format;
} lc_qmatrix;

/// Bytes of quants in one row.
int64_t lc_quant_row_bytes(int32_t format, int64_t cols);

/// Quantizes `rows` rows of float weights ([rows][cols]) into `quants` and `scales`, laid out as above.
void lc_quantize_rows(int32_t format, const float *w, int64_t rows, int64_t cols, void *quants, uint16_t *scales);

/// out[(r - row_begin) * cols + c] = W[r][c] as float32, for r in [row_begin, row_end).
void lc_qdequantize_rows(const lc_qmatrix *w, int64_t row_begin, int64_t row_end, float *out);

/// Bytes one token's quantized activations take (a multiple of 64) for a product with a `format` matrix.
int64_t lc_quant_activation_bytes(int32_t format, int64_t cols);

/// Quantizes n vectors x[t * ldx + c] (c < cols) for products with a `format` matrix into `out`, which
/// holds n * lc_quant_activation_bytes(format, cols) bytes. Every code path gives identical bytes (for finite x).
void lc_quantize_activations(int32_t format, const float *x, int64_t ldx, int64_t n, int64_t cols, void *out);

/// y[t * ldy + r] = sum_c W[r][c] * x_t[c] for r in [row_begin, row_end) and t in [0, n), where `xq` holds
/// the n tokens quantized by lc_quantize_activations for this matrix's format.
void lc_qmatmul(const lc_qmatrix *w, const void *xq, int64_t n, float *y, int64_t ldy,
                int64_t row_begin, int64_t row_end);

#ifdef __cplusplus
}
#endif

#endif
