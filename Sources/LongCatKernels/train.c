#include "lc_train.h"

// Eight running sums combined in a fixed tree: the compiler keeps them in one vector register.
static float dot(const float *a, const float *b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float tail = 0;
    for (; i < n; i++) tail += a[i] * b[i];
    return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail;
}

static void axpy(float a, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void lc_train_xwt(const float *x, const float *w, int64_t n, int64_t cols, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t r = r0; r < r1; r++) y[t * ldy + r] = dot(x + t * cols, w + r * cols, cols);
}

void lc_train_dyw(const float *dy, const float *w, int64_t rows, int64_t cols, float *dx, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++)
        for (int64_t r = 0; r < rows; r++) {
            float g = dy[t * rows + r];
            if (g != 0) axpy(g, w + r * cols, dx + t * cols, cols);
        }
}

void lc_train_dytx(const float *dy, const float *x, int64_t n, int64_t rows, int64_t cols, float *dw, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < n; t++) {
            float g = dy[t * rows + r];
            if (g != 0) axpy(g, x + t * cols, dw + r * cols, cols);
        }
}
