// Helpers of the training products (LongCatTensor/TrainingProducts.swift), which run on the inference kernels.
#ifndef LC_TRAIN_H
#define LC_TRAIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out[c][r] = a[r][c]   (a [rows][cols], out [cols][rows]), in cache-sized tiles.
void lc_train_transpose(const float *a, int64_t rows, int64_t cols, float *out);

/// Keeps freed memory in the allocator's heap (glibc: no mmap/trim for large blocks), so the activation arrays a
/// training step allocates and frees again and again reuse memory instead of faulting in fresh zeroed pages.
void lc_train_keep_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif
