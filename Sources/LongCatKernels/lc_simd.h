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

#if LC_X86
#define LC_AVX2 __attribute__((target("avx2,fma,f16c")))

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
#endif

#endif
