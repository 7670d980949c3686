// What the kernel files share: which vector path this build has (AVX2 chosen at run time on x86-64, NEON
// on arm64), the AVX2 target attribute, and the horizontal sum the AVX2 paths end with. Private to the
// target (not in include/).
#ifndef LC_SIMD_H
#define LC_SIMD_H

#if defined(__x86_64__) || defined(_M_X64)
#define LC_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define LC_NEON 1
#include <arm_neon.h>
#endif

#include <stdint.h>

#if LC_X86
#define LC_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LC_AVX512 __attribute__((target("avx512f,avx2,fma")))
// AVX2 code given AVX-512VL's 32 vector registers (ymm16-31) to keep more sums in registers.
#define LC_AVX512VL __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))

/// 1 when the vector path is on (lc_simd_level() == 1) and the CPU has AVX-512F and VL (detected with the rest,
/// kernels.c).
int lc_simd_avx512(void);

LC_AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    lo = _mm_add_ss(lo, sh);
    return _mm_cvtss_f32(lo);
}

// dst[j][i] = src[i][j] for an 8 x 8 block of floats (rows src_stride and dst_stride floats apart).
LC_AVX2 static inline void transpose8x8_avx2(const float *src, int64_t src_stride, float *dst, int64_t dst_stride) {
    __m256 r[8], t[8];
    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + j * src_stride);
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
    // r0..r3 hold columns {0,1,2,3} (+4 in the high lane) of rows 0-3, r4..r7 of rows 4-7.
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(dst + j * dst_stride, _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
        _mm256_storeu_ps(dst + (j + 4) * dst_stride, _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
    }
}

// exp(x) for 8 lanes, Cephes-style: 2^n * e^r with a degree-6 polynomial on |r| <= ln2/2 (relative error
// ~2e-7, like expf).
LC_AVX2 static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365478515625f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

#endif
