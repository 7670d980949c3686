// Float32 products for training: the forward product and both transposed products of backward. Every output
// element is summed by one caller in a fixed order, so splitting rows among threads never changes a result
// (`--threads 1` and `--threads 2` train bit-identical weights).
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// y[t][r] = sum_c x[t][c] * w[r][c]   for every t < n and r0 <= r < r1   (x [n][cols], w [rows][cols], y [n][ldy])
void lc_train_xwt(const float *x, const float *w, int64_t n, int64_t cols, float *y, int64_t ldy, int64_t r0, int64_t r1);
/// dx[t][c] += sum_r dy[t][r] * w[r][c]   for t0 <= t < t1   (dy [n][rows], dx [n][cols])
void lc_train_dyw(const float *dy, const float *w, int64_t rows, int64_t cols, float *dx, int64_t t0, int64_t t1);
/// dw[r][c] += sum_t dy[t][r] * x[t][c]   for r0 <= r < r1, summed over t < n in order   (dw [rows][cols])
void lc_train_dytx(const float *dy, const float *x, int64_t n, int64_t rows, int64_t cols, float *dw, int64_t r0, int64_t r1);

#ifdef __cplusplus
}
#endif

#endif
