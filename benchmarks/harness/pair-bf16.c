// Times one-token and two-token BF16 products on one thread over a matrix larger than the caches: the one-token
// kernel, the two-token kernel that runs each row twice (AVX2) and the one that keeps both tokens' sums in registers
// (AVX-512VL). Build and run from the repository root (an AVX-512 CPU):
//   clang -O3 -fno-math-errno -ISources/LongCatKernels/include -o /tmp/pair-bf16 benchmarks/harness/pair-bf16.c -lpthread -lm && /tmp/pair-bf16
#include <stdio.h>
#include <time.h>

#include "../../Sources/LongCatKernels/kernels.c"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    const int64_t rows = 4096 * 4, cols = 1536;  // 48 MB of bf16: out of L3 (32 MB)
    uint16_t *w = aligned_alloc(64, rows * cols * 2);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = lc_f32_to_bf16((float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f);
    float *x = aligned_alloc(64, 2 * cols * 4), *y = aligned_alloc(64, 2 * rows * 4), *xs = aligned_alloc(64, 2 * cols * 4);
    for (int64_t i = 0; i < 2 * cols; i++) x[i] = (float)(i % 7) - 3;
    lc_matrix m = {.dtype = LC_DTYPE_BF16, .rows = rows, .cols = cols, .data = w};
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int k = 0; k < 5; k++) { split_even_odd_avx2(x, cols, xs); matvec_bf16_avx2(w, cols, x, xs, y, 0, rows); }
        double t1 = now();
        for (int k = 0; k < 5; k++) pair_bf16_avx2(&m, x, cols, y, rows, 0, rows, xs);
        double t2 = now();
        for (int k = 0; k < 5; k++) pair_bf16_avx512vl(&m, x, cols, y, rows, 0, rows, xs);
        double t3 = now();
        double bytes = 5.0 * rows * cols * 2;
        printf("one token %.1f GB/s | two tokens, avx2 (row twice) %.2fx one | two tokens, avx512vl %.2fx one\n",
               bytes / (t1 - t0) / 1e9, (t2 - t1) / (t1 - t0), (t3 - t2) / (t1 - t0));
    }
    return 0;
}
