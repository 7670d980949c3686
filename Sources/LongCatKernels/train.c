// Kernels of the training step (float32 throughout): a strided matrix product that serves the forward product and
// both backward products without transposed copies, AdamW, the gradient norm, cross-entropy and RMSNorm.
// Work is split over the pool so that every output element is computed by one task in a fixed order, and sums
// that span tasks are taken over fixed chunks and added in order: results do not depend on the thread count.
#include "lc_train.h"
#include "lc_kernels.h"
#include "lc_pool.h"
#include "lc_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

void lc_train_keep_freed_memory(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Strided product: y[j][i] (+)= sum_k a(i, k) b(j, k)
//
// GotoBLAS blocking. a is packed once per product into panels of MR "i" rows per block of KC values of k, column
// by column ([k][MR]). Each task owns a block of up to NC "j" rows and a range of panels: it packs its b rows for
// one k block ([j][k], stays in L2) and runs the micro-kernel over them for each panel (in L1), keeping MR x NR
// sums in registers. The packings read any strides, which is what spares the transposed copies. MR is 16 (two
// AVX2 vectors) or 32 (two AVX-512 vectors).

enum { NR = 6, KC = 256, NC = 192 };

typedef enum { MICRO_PORTABLE, MICRO_AVX2, MICRO_AVX512 } micro_kind;

typedef struct {
    int64_t m, n, k;
    const float *a; int64_t a_i, a_k;
    const float *b; int64_t b_j, b_k;
    float *y; int64_t ldy;
    int accumulate;
    micro_kind kind;
    int64_t mr, panels, k_blocks;
    float *packed_a;  // [k block][panel][KC][mr]
    int64_t nc, panels_per_task, i_tasks;
} gemm_job;

// dst[c * dst_stride + r] = src[r * src_stride + c] for r < rows, c < cols: the packings' strided reads, in 8 x 8
// register transposes (lc_simd.h) on AVX2.

static void copy_transposed(const float *src, int64_t src_stride, int64_t rows, int64_t cols, float *dst, int64_t dst_stride) {
    int64_t r0 = 0;
#if LC_X86
    if (lc_simd_level() == 1) {
        for (; r0 + 8 <= rows; r0 += 8) {
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8) transpose8x8_avx2(src + r0 * src_stride + c, src_stride, dst + c * dst_stride + r0, dst_stride);
            for (; c < cols; c++)
                for (int64_t r = r0; r < r0 + 8; r++) dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
#endif
    for (int64_t r = r0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * dst_stride + r] = src[r * src_stride + c];
}

// bp[j][k] = b(j0 + j, k0 + k), rows KC apart, and zero rows up to the next multiple of NR: the micro-kernels
// always compute whole groups of rows and store the real ones.
static void pack_b(const gemm_job *g, int64_t j0, int64_t nj, int64_t k0, int64_t kc, float *bp) {
    const float *src = g->b + j0 * g->b_j + k0 * g->b_k;
    const int64_t padded = (nj + NR - 1) / NR * NR;
    if (padded > nj) memset(bp + nj * KC, 0, (size_t)((padded - nj) * KC) * sizeof(float));
    if (g->b_j == 1 && g->b_k != 1) {
        copy_transposed(src, g->b_k, kc, nj, bp, KC);
        return;
    }
    for (int64_t j = 0; j < nj; j++) {
        float *dst = bp + j * KC;
        if (g->b_k == 1) memcpy(dst, src + j * g->b_j, (size_t)kc * sizeof(float));
        else for (int64_t kk = 0; kk < kc; kk++) dst[kk] = src[j * g->b_j + kk * g->b_k];
    }
}

// One panel of a for one k block: ap[k][i] = a(i0 + i, k0 + k), mr values per k (zeros past the last row).
static void pack_a_task(void *context, int64_t task) {
    const gemm_job *g = context;
    const int64_t kb = task / g->panels, i0 = task % g->panels * g->mr, k0 = kb * KC, mr = g->mr;
    const int64_t kc = g->k - k0 < KC ? g->k - k0 : KC, mi = g->m - i0 < mr ? g->m - i0 : mr;
    float *ap = g->packed_a + task * KC * mr;
    if (mi < mr) memset(ap, 0, (size_t)(kc * mr) * sizeof(float));
    const float *src = g->a + i0 * g->a_i + k0 * g->a_k;
    if (g->a_i == 1) {
        // Constant sizes for whole panels, so each copy is a few vector moves rather than a call.
        if (mi == 32) for (int64_t kk = 0; kk < kc; kk++) memcpy(ap + kk * mr, src + kk * g->a_k, 32 * sizeof(float));
        else if (mi == 16) for (int64_t kk = 0; kk < kc; kk++) memcpy(ap + kk * mr, src + kk * g->a_k, 16 * sizeof(float));
        else for (int64_t kk = 0; kk < kc; kk++) memcpy(ap + kk * mr, src + kk * g->a_k, (size_t)mi * sizeof(float));
    } else if (g->a_k == 1) {
        copy_transposed(src, g->a_i, mi, kc, ap, mr);
    } else {
        for (int64_t i = 0; i < mi; i++)
            for (int64_t kk = 0; kk < kc; kk++) ap[kk * mr + i] = src[i * g->a_i + kk * g->a_k];
    }
}

// Stores one j row's sums: written when this is the first k block of a plain product, added otherwise.
static inline void store_sums(float *out, const float *sums, int64_t mi, int add) {
    for (int64_t i = 0; i < mi; i++) out[i] = add ? out[i] + sums[i] : sums[i];
}

// The micro-kernels: y[j][i] (+)= sum_k ap[k][i] bp[j][k] for NR rows of bp (nj of them stored) and mi <= mr.
static void micro_portable(const float *ap, const float *bp, int64_t kc, int64_t nj, float *y, int64_t ldy, int64_t mi, int add) {
    enum { MR = 16 };
    for (int64_t j = 0; j < nj; j++) {
        float sums[MR] = {0};
        for (int64_t kk = 0; kk < kc; kk++)
            for (int i = 0; i < MR; i++) sums[i] += ap[kk * MR + i] * bp[j * KC + kk];
        store_sums(y + j * ldy, sums, mi, add);
    }
}

#if LC_X86
LC_AVX2 static void micro_avx2(const float *ap, const float *bp, int64_t kc, int64_t nj, float *y, int64_t ldy, int64_t mi, int add) {
    enum { MR = 16 };
    __m256 s[NR][2];
    for (int j = 0; j < NR; j++) s[j][0] = s[j][1] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++) {
        const __m256 a0 = _mm256_loadu_ps(ap + kk * MR), a1 = _mm256_loadu_ps(ap + kk * MR + 8);
        for (int j = 0; j < NR; j++) {
            const __m256 v = _mm256_broadcast_ss(bp + j * KC + kk);
            s[j][0] = _mm256_fmadd_ps(a0, v, s[j][0]);
            s[j][1] = _mm256_fmadd_ps(a1, v, s[j][1]);
        }
    }
    for (int64_t j = 0; j < nj; j++) {
        float sums[MR];
        _mm256_storeu_ps(sums, s[j][0]);
        _mm256_storeu_ps(sums + 8, s[j][1]);
        store_sums(y + j * ldy, sums, mi, add);
    }
}

LC_AVX512 static void micro_avx512(const float *ap, const float *bp, int64_t kc, int64_t nj, float *y, int64_t ldy, int64_t mi, int add) {
    enum { MR = 32 };
    __m512 s[NR][2];
    for (int j = 0; j < NR; j++) s[j][0] = s[j][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++) {
        const __m512 a0 = _mm512_loadu_ps(ap + kk * MR), a1 = _mm512_loadu_ps(ap + kk * MR + 16);
        for (int j = 0; j < NR; j++) {
            const __m512 v = _mm512_set1_ps(bp[j * KC + kk]);
            s[j][0] = _mm512_fmadd_ps(a0, v, s[j][0]);
            s[j][1] = _mm512_fmadd_ps(a1, v, s[j][1]);
        }
    }
    const __mmask16 lo = (__mmask16)(mi >= 16 ? 0xFFFF : (1u << mi) - 1), hi = (__mmask16)(mi >= 32 ? 0xFFFF : mi > 16 ? (1u << (mi - 16)) - 1 : 0);
    for (int64_t j = 0; j < nj; j++) {
        float *out = y + j * ldy;
        __m512 v0 = s[j][0], v1 = s[j][1];
        if (add) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(lo, out));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(hi, out + 16));
        }
        _mm512_mask_storeu_ps(out, lo, v0);
        _mm512_mask_storeu_ps(out + 16, hi, v1);
    }
}
#endif

static void gemm_task(void *context, int64_t task) {
    const gemm_job *g = context;
    const int64_t p0 = task % g->i_tasks * g->panels_per_task, j0 = task / g->i_tasks * g->nc;
    const int64_t p1 = p0 + g->panels_per_task < g->panels ? p0 + g->panels_per_task : g->panels;
    const int64_t nj = g->n - j0 < g->nc ? g->n - j0 : g->nc, mr = g->mr;
    if (p0 >= p1) return;
    float *bp = malloc(sizeof(float) * (NC * KC));
    for (int64_t kb = 0; kb < g->k_blocks; kb++) {
        const int64_t kc = g->k - kb * KC < KC ? g->k - kb * KC : KC;
        const int add = g->accumulate || kb > 0;
        pack_b(g, j0, nj, kb * KC, kc, bp);
        for (int64_t p = p0; p < p1; p++) {
            const float *ap = g->packed_a + (kb * g->panels + p) * KC * mr;
            const int64_t i = p * mr, mi = g->m - i < mr ? g->m - i : mr;
            for (int64_t j = 0; j < nj; j += NR) {
                const int64_t nr = nj - j < NR ? nj - j : NR;
                float *y = g->y + (j0 + j) * g->ldy + i;
                switch (g->kind) {
#if LC_X86
                case MICRO_AVX512: micro_avx512(ap, bp + j * KC, kc, nr, y, g->ldy, mi, add); break;
                case MICRO_AVX2: micro_avx2(ap, bp + j * KC, kc, nr, y, g->ldy, mi, add); break;
#endif
                default: micro_portable(ap, bp + j * KC, kc, nr, y, g->ldy, mi, add);
                }
            }
        }
    }
    free(bp);
}

void lc_train_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_i, int64_t a_k, const float *b,
                   int64_t b_j, int64_t b_k, float *y, int64_t ldy, int accumulate, int threads) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!accumulate)
            for (int64_t j = 0; j < n; j++) memset(y + j * ldy, 0, (size_t)m * sizeof(float));
        return;
    }
    micro_kind kind = MICRO_PORTABLE;
#if LC_X86
    if (lc_simd_level() == 1) kind = lc_simd_avx512() ? MICRO_AVX512 : MICRO_AVX2;
#endif
    const int64_t mr = kind == MICRO_AVX512 ? 32 : 16, panels = (m + mr - 1) / mr, k_blocks = (k + KC - 1) / KC;
    // A few tasks per thread: blocks of j rows (at most NC, at least 4 x NR), split further by panels only when
    // there are too few j rows (each such task packs the same b rows again). Inside another parallel task this one
    // runs on its thread alone.
    if (lc_in_parallel_task()) threads = 1;
    const int64_t wanted = threads > 1 ? 4 * (int64_t)threads : 1;
    int64_t nc = ((n + wanted - 1) / wanted + NR - 1) / NR * NR;
    nc = nc < 4 * NR ? 4 * NR : nc > NC ? NC : nc;
    const int64_t j_tasks = (n + nc - 1) / nc;
    int64_t i_tasks = (wanted + j_tasks - 1) / j_tasks;
    if (i_tasks > panels) i_tasks = panels;
    const int64_t panels_per_task = (panels + i_tasks - 1) / i_tasks;
    gemm_job g = {m, n, k, a, a_i, a_k, b, b_j, b_k, y, ldy, accumulate, kind, mr, panels, k_blocks,
                  malloc(sizeof(float) * (size_t)(k_blocks * panels * KC * mr)), nc, panels_per_task,
                  (panels + panels_per_task - 1) / panels_per_task};
    lc_parallel_for(k_blocks * panels, threads, pack_a_task, &g);
    lc_parallel_for(j_tasks * g.i_tasks, threads, gemm_task, &g);
    free(g.packed_a);
}

// ---------------------------------------------------------------------------------------------------------
// AdamW and the global gradient norm (elementwise, or summed over fixed chunks)

enum { CHUNK = 1 << 16 };

static inline int64_t chunk_end(int64_t task, int64_t n) { return (task + 1) * CHUNK < n ? (task + 1) * CHUNK : n; }

typedef struct {
    float *values, *m, *v;
    const float *grads;
    int64_t n;
    double scale, beta1, beta2, lr_over_c1, c2, eps;
    float decay;
} adamw_job;

static void adamw_task(void *context, int64_t task) {
    const adamw_job *a = context;
    const int64_t end = chunk_end(task, a->n);
    for (int64_t i = task * CHUNK; i < end; i++) {
        const double g = (double)a->grads[i] * a->scale;
        const float m = (float)(a->beta1 * (double)a->m[i] + (1 - a->beta1) * g);
        const float v = (float)(a->beta2 * (double)a->v[i] + (1 - a->beta2) * g * g);
        a->m[i] = m;
        a->v[i] = v;
        const double p = (double)(a->values[i] * a->decay);
        a->values[i] = (float)(p - a->lr_over_c1 * (double)m / (sqrt((double)v) / a->c2 + a->eps));
    }
}

void lc_train_adamw(float *values, const float *grads, float *m, float *v, int64_t n, double scale, double beta1,
                    double beta2, double lr, double correction1, double correction2, double eps, float decay, int threads) {
    adamw_job a = {values, m, v, grads, n, scale, beta1, beta2, lr / correction1, correction2, eps, decay};
    lc_parallel_for((n + CHUNK - 1) / CHUNK, threads, adamw_task, &a);
}

typedef struct { const float *x; int64_t n; double *partial; } squares_job;

static void squares_task(void *context, int64_t task) {
    const squares_job *s = context;
    const int64_t end = chunk_end(task, s->n);
    double sum[4] = {0};
    int64_t i = task * CHUNK;
    for (; i + 4 <= end; i += 4)
        for (int j = 0; j < 4; j++) sum[j] += (double)s->x[i + j] * (double)s->x[i + j];
    for (; i < end; i++) sum[0] += (double)s->x[i] * (double)s->x[i];
    s->partial[task] = (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

double lc_train_sum_squares(const float *x, int64_t n, int threads) {
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
    if (chunks == 0) return 0;
    double *partial = malloc(sizeof(double) * (size_t)chunks), total = 0;
    squares_job s = {x, n, partial};
    lc_parallel_for(chunks, threads, squares_task, &s);
    for (int64_t c = 0; c < chunks; c++) total += partial[c];
    free(partial);
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Cross-entropy of softmax rows

typedef struct {
    const float *logits;
    const int64_t *targets;
    int64_t width;
    float grad_scale;
    float *grads;
    double *losses;
} xent_job;

static void xent_task(void *context, int64_t t) {
    const xent_job *x = context;
    const int64_t w = x->width, target = x->targets[t];
    float *g = x->grads + t * w;
    if (target < 0) {
        memset(g, 0, (size_t)w * sizeof(float));
        x->losses[t] = 0;
        return;
    }
    const float *row = x->logits + t * w;
    memcpy(g, row, (size_t)w * sizeof(float));
    lc_softmax(g, w);
    if (g[target] >= 1e-30f) {
        x->losses[t] = -log((double)g[target]);
    } else {  // p underflowed: the loss from the sum of exponentials in float64
        float max = row[0];
        for (int64_t i = 1; i < w; i++) max = row[i] > max ? row[i] : max;
        double sum = 0;
        for (int64_t i = 0; i < w; i++) sum += exp((double)row[i] - (double)max);
        x->losses[t] = (double)max + log(sum) - (double)row[target];
    }
    for (int64_t i = 0; i < w; i++) g[i] = (g[i] - (i == target ? 1.0f : 0.0f)) * x->grad_scale;
}

void lc_train_cross_entropy(const float *logits, const int64_t *targets, int64_t rows, int64_t width, float grad_scale,
                            float *grads, double *losses, int threads) {
    xent_job x = {logits, targets, width, grad_scale, grads, losses};
    lc_parallel_for(rows, threads, xent_task, &x);
}

// ---------------------------------------------------------------------------------------------------------
// RMSNorm: y = x / rms(x) * w per row

enum { NORM_ROWS = 32 };

typedef struct {
    const float *x, *w, *dy;
    float *y, *inverse, *dx, *dw_partial;
    int64_t rows, width;
    float eps;
} norm_job;

static void norm_forward_task(void *context, int64_t task) {
    const norm_job *j = context;
    const int64_t end = (task + 1) * NORM_ROWS < j->rows ? (task + 1) * NORM_ROWS : j->rows;
    for (int64_t t = task * NORM_ROWS; t < end; t++) {
        const float *x = j->x + t * j->width;
        float sum = 0;
        for (int64_t i = 0; i < j->width; i++) sum += x[i] * x[i];
        const float r = 1 / sqrtf(sum / (float)j->width + j->eps);
        j->inverse[t] = r;
        for (int64_t i = 0; i < j->width; i++) j->y[t * j->width + i] = x[i] * r * j->w[i];
    }
}

void lc_train_rms_norm(const float *x, const float *w, int64_t rows, int64_t width, float eps, float *y, float *inverse,
                       int threads) {
    norm_job j = {.x = x, .w = w, .y = y, .inverse = inverse, .rows = rows, .width = width, .eps = eps};
    lc_parallel_for((rows + NORM_ROWS - 1) / NORM_ROWS, threads, norm_forward_task, &j);
}

static void norm_backward_task(void *context, int64_t task) {
    const norm_job *j = context;
    const int64_t end = (task + 1) * NORM_ROWS < j->rows ? (task + 1) * NORM_ROWS : j->rows, width = j->width;
    float *dw = j->dw_partial + task * width;
    memset(dw, 0, (size_t)width * sizeof(float));
    for (int64_t t = task * NORM_ROWS; t < end; t++) {
        const float *x = j->x + t * width, *dy = j->dy + t * width;
        const float r = j->inverse[t];
        float dot = 0;  // sum of dy * w * x
        for (int64_t i = 0; i < width; i++) dot += dy[i] * j->w[i] * x[i];
        const float c = r * r * r * dot / (float)width;
        for (int64_t i = 0; i < width; i++) {
            j->dx[t * width + i] += r * dy[i] * j->w[i] - c * x[i];
            dw[i] += dy[i] * x[i] * r;
        }
    }
}

void lc_train_rms_norm_backward(const float *x, const float *w, const float *inverse, const float *dy, int64_t rows,
                                int64_t width, float *dx, float *dw, int threads) {
    const int64_t tasks = (rows + NORM_ROWS - 1) / NORM_ROWS;
    float *partial = malloc(sizeof(float) * (size_t)(tasks * width));
    norm_job j = {.x = x, .w = w, .dy = dy, .inverse = (float *)inverse, .dx = dx, .dw_partial = partial, .rows = rows, .width = width};
    lc_parallel_for(tasks, threads, norm_backward_task, &j);
    for (int64_t t = 0; t < tasks; t++)
        for (int64_t i = 0; i < width; i++) dw[i] += partial[t * width + i];
    free(partial);
}

// ---------------------------------------------------------------------------------------------------------
// Elementwise: SwiGLU and sums of arrays

typedef struct {
    const float *g, *u, *dy, *a;
    float *out, *dg, *du;
    float scale;
    int64_t n;
} elementwise_job;

#if LC_X86
LC_AVX2 static inline __m256 sigmoid_avx2(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

LC_AVX2 static int64_t silu_forward_avx2(const elementwise_job *e, int64_t i, int64_t end) {
    for (; i + 8 <= end; i += 8) {
        const __m256 g = _mm256_loadu_ps(e->g + i);
        _mm256_storeu_ps(e->out + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid_avx2(g)), _mm256_loadu_ps(e->u + i)));
    }
    return i;
}

LC_AVX2 static int64_t silu_backward_avx2(const elementwise_job *e, int64_t i, int64_t end) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= end; i += 8) {
        const __m256 g = _mm256_loadu_ps(e->g + i), u = _mm256_loadu_ps(e->u + i), dy = _mm256_loadu_ps(e->dy + i);
        const __m256 s = sigmoid_avx2(g);
        const __m256 slope = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s))));
        _mm256_storeu_ps(e->dg + i, _mm256_mul_ps(_mm256_mul_ps(dy, u), slope));
        _mm256_storeu_ps(e->du + i, _mm256_mul_ps(_mm256_mul_ps(dy, g), s));
    }
    return i;
}
#endif

static void silu_forward_task(void *context, int64_t task) {
    const elementwise_job *e = context;
    int64_t i = task * CHUNK;
    const int64_t end = chunk_end(task, e->n);
#if LC_X86
    if (lc_simd_level() == 1) i = silu_forward_avx2(e, i, end);
#endif
    for (; i < end; i++) e->out[i] = e->g[i] / (1.0f + expf(-e->g[i])) * e->u[i];
}

static void silu_backward_task(void *context, int64_t task) {
    const elementwise_job *e = context;
    int64_t i = task * CHUNK;
    const int64_t end = chunk_end(task, e->n);
#if LC_X86
    if (lc_simd_level() == 1) i = silu_backward_avx2(e, i, end);
#endif
    for (; i < end; i++) {
        const float g = e->g[i], s = 1.0f / (1.0f + expf(-g));
        e->dg[i] = e->dy[i] * e->u[i] * (s * (1.0f + g * (1.0f - s)));
        e->du[i] = e->dy[i] * g * s;
    }
}

void lc_train_silu_multiply(const float *g, const float *u, float *out, int64_t n, int threads) {
    elementwise_job e = {.g = g, .u = u, .out = out, .n = n};
    lc_parallel_for((n + CHUNK - 1) / CHUNK, threads, silu_forward_task, &e);
}

void lc_train_silu_multiply_backward(const float *g, const float *u, const float *dy, float *dg, float *du, int64_t n, int threads) {
    elementwise_job e = {.g = g, .u = u, .dy = dy, .dg = dg, .du = du, .n = n};
    lc_parallel_for((n + CHUNK - 1) / CHUNK, threads, silu_backward_task, &e);
}

static void add_scaled_task(void *context, int64_t task) {
    const elementwise_job *e = context;
    const int64_t end = chunk_end(task, e->n);
    if (e->scale == 1.0f)
        for (int64_t i = task * CHUNK; i < end; i++) e->out[i] += e->a[i];
    else
        for (int64_t i = task * CHUNK; i < end; i++) e->out[i] += e->scale * e->a[i];
}

void lc_train_add_scaled(const float *a, float scale, float *out, int64_t n, int threads) {
    elementwise_job e = {.a = a, .out = out, .scale = scale, .n = n};
    lc_parallel_for((n + CHUNK - 1) / CHUNK, threads, add_scaled_task, &e);
}
