// Helpers of the training products (LongCatTensor/TrainingProducts.swift), which run on the inference kernels.
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out[c][r] = a[r][c]   (a [rows][cols], out [cols][rows]), in cache-sized tiles.
void lc_train_transpose(const float *a, int64_t rows, int64_t cols, float *out);

#ifdef __cplusplus
}
#endif

#endif
