// Kernels of the training step (float32; wrapped by LongCatTensor/TrainingKernels.swift). Each splits its work over
// `threads` threads of the pool so that the results are the same bits for every thread count.
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// y[j * ldy + i] (+)= sum over k < `k` of a[i * a_i + kk * a_k] * b[j * b_j + kk * b_k], for i < m and j < n: any
/// strides on the inputs, so x·Wᵀ, dy·W and dyᵀ·x all run without transposed copies. `accumulate` adds to y.
void lc_train_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_i, int64_t a_k, const float *b,
                   int64_t b_j, int64_t b_k, float *y, int64_t ldy, int accumulate, int threads);

/// One AdamW update of n values (PyTorch's arithmetic in float64, moments stored in float32): g = grads·scale,
/// m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g², value = value·decay − lr/correction1 · m / (sqrt(v)/correction2 + eps).
void lc_train_adamw(float *values, const float *grads, float *m, float *v, int64_t n, double scale, double beta1,
                    double beta2, double lr, double correction1, double correction2, double eps, float decay, int threads);

/// Sum of x² in float64 (over fixed chunks, added in order).
double lc_train_sum_squares(const float *x, int64_t n, int threads);

/// Per row t of logits [rows][width]: losses[t] = -log softmax(row)[targets[t]] and grads[t] = (softmax(row) -
/// onehot) · grad_scale; a negative target gives a zero loss and gradient.
void lc_train_cross_entropy(const float *logits, const int64_t *targets, int64_t rows, int64_t width, float grad_scale,
                            float *grads, double *losses, int threads);

/// y = x / sqrt(mean(x²) + eps) · w per row, and each row's 1 / sqrt(mean(x²) + eps) in `inverse`.
void lc_train_rms_norm(const float *x, const float *w, int64_t rows, int64_t width, float eps, float *y, float *inverse,
                       int threads);

/// RMSNorm's backward: adds to dx [rows][width] and to dw [width].
void lc_train_rms_norm_backward(const float *x, const float *w, const float *inverse, const float *dy, int64_t rows,
                                int64_t width, float *dx, float *dw, int threads);

/// out = silu(g) · u = g / (1 + exp(-g)) · u (SwiGLU), and its backward: dg = dy · u · s · (1 + g · (1 - s)) and
/// du = dy · g · s with s = sigmoid(g).
void lc_train_silu_multiply(const float *g, const float *u, float *out, int64_t n, int threads);
void lc_train_silu_multiply_backward(const float *g, const float *u, const float *dy, float *dg, float *du, int64_t n, int threads);

/// out += scale · a.
void lc_train_add_scaled(const float *a, float scale, float *out, int64_t n, int threads);

/// Keeps freed memory in the allocator's heap (glibc: no mmap/trim for large blocks), so the activation arrays a
/// training step allocates and frees again and again reuse memory instead of faulting in fresh zeroed pages.
void lc_train_keep_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif
