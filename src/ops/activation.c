// activation.c — SiLU, GELU (erf and tanh forms), QuickGELU: forward and backward.
//
// Every function is written once as an 8-lane AVX2 kernel; the tail (< 8 elements) runs the
// same kernel on a zero-padded copy, so every element gets identical arithmetic whatever its
// position, and results never depend on the thread count.
#include "ops/activation.h"

#include <immintrin.h>
#include <string.h>

#include "core/error.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "activation.c needs AVX2 and FMA (CMake passes -march=native or -mavx2 -mfma)"
#endif

// Below this many elements the OpenMP fork/join costs more than the work.
#define ACT_PAR_MIN 32768

// e^y for y <= 0 (Cephes expf: Cody–Waite reduction, degree-6 polynomial, ≤ 1 ulp in the
// normal range). Results below FLT_MIN are flushed to +0 instead of building a bad 2^n;
// -inf gives 0 and NaN stays NaN (max_ps returns its second operand when one is NaN).
static inline __m256 exp_nonpos8(__m256 y) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f);  // ln(FLT_MIN)
    __m256 under = _mm256_cmp_ps(y, lo, _CMP_LT_OQ);
    y = _mm256_max_ps(lo, y);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);   // ln2 split: n·hi is exact
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    // 1 + (r + p·r²): the small part first, so the result is rounded once more only.
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    // n ∈ [-126, 0] after the clamp: 2^n is a normal float built from its exponent bits.
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// s = σ(v) and sm = 1 − σ(v) = σ(−v), both accurate to ~2 ulp in relative terms: they are
// built from e = e^{−|v|} ∈ [0, 1] (never overflows) as 1/(1+e) and e/(1+e), so neither
// tail cancels. Saturates to exactly 0/1 for |v| > 87.
static inline void sigmoid8(__m256 v, __m256 *s, __m256 *sm) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp_nonpos8(_mm256_or_ps(v, _mm256_set1_ps(-0.0f)));   // e^{−|v|}
    __m256 d = _mm256_add_ps(one, e);
    // Two divisions rather than e·(1/d): one rounding less, and the kernels are memory-bound.
    __m256 big = _mm256_div_ps(one, d);    // σ(|v|)
    __m256 small = _mm256_div_ps(e, d);    // σ(−|v|)
    *s = _mm256_blendv_ps(big, small, v);   // sign bit of v selects
    *sm = _mm256_blendv_ps(small, big, v);
}

// erf(a), max error 0.99 ulp over all floats (measured against double erf; the large-|a|
// branch costs one more exp of ≤ 1 ulp on a value ≤ 0.19, i.e. ≤ 0.2 ulp of the result).
// Two minimax pieces (N. Juffa's erff): a·P(a²) for |a| ≤ 0.9277, and 1 − e^{Q(|a|)} above,
// with |a| clamped to 4 where erf is 1.0f. Both branches are computed and blended.
static inline __m256 erf8(__m256 a) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_andnot_ps(sign, a);
    __m256 tc = _mm256_min_ps(_mm256_set1_ps(4.0f), t);   // NaN stays NaN (second operand)
    __m256 s = _mm256_mul_ps(tc, tc);
    __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(-1.72853470e-5f), tc, _mm256_set1_ps(3.83197126e-4f));
    __m256 u = _mm256_fmadd_ps(_mm256_set1_ps(-3.88396438e-3f), tc, _mm256_set1_ps(2.42546219e-2f));
    r = _mm256_fmadd_ps(r, s, u);
    r = _mm256_fmadd_ps(r, tc, _mm256_set1_ps(-1.06777877e-1f));
    r = _mm256_fmadd_ps(r, tc, _mm256_set1_ps(-6.34846687e-1f));
    r = _mm256_fmadd_ps(r, tc, _mm256_set1_ps(-1.28717512e-1f));
    r = _mm256_fmsub_ps(r, tc, tc);
    __m256 large = _mm256_sub_ps(_mm256_set1_ps(1.0f), exp_nonpos8(r));
    large = _mm256_or_ps(large, _mm256_and_ps(sign, a));
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 q = _mm256_set1_ps(-5.96761703e-4f);
    q = _mm256_fmadd_ps(q, a2, _mm256_set1_ps(4.99119423e-3f));
    q = _mm256_fmadd_ps(q, a2, _mm256_set1_ps(-2.67681349e-2f));
    q = _mm256_fmadd_ps(q, a2, _mm256_set1_ps(1.12819925e-1f));
    q = _mm256_fmadd_ps(q, a2, _mm256_set1_ps(-3.76125336e-1f));
    q = _mm256_fmadd_ps(q, a2, _mm256_set1_ps(1.28379166e-1f));
    __m256 smallv = _mm256_fmadd_ps(q, a, a);
    return _mm256_blendv_ps(smallv, large, _mm256_cmp_ps(t, _mm256_set1_ps(0.927734375f), _CMP_GT_OQ));
}

// |x| clamped to 100 for derivative terms: beyond it σ' and φ are exactly 0 in f32, and the
// clamp keeps x·0 from becoming inf·0 = NaN for huge or infinite x.
static inline __m256 clamp100(__m256 x) {
    return _mm256_max_ps(_mm256_set1_ps(-100.0f), _mm256_min_ps(_mm256_set1_ps(100.0f), x));
}

// ---- the four functions: value f(x) and derivative-times-upstream dy·f'(x) ----

static inline __m256 silu_f8(__m256 x) {
    __m256 s, sm;
    sigmoid8(x, &s, &sm);
    return _mm256_mul_ps(x, s);
}
// d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
static inline __m256 silu_b8(__m256 x, __m256 dy) {
    __m256 s, sm;
    sigmoid8(x, &s, &sm);
    __m256 g = _mm256_mul_ps(s, _mm256_fmadd_ps(clamp100(x), sm, _mm256_set1_ps(1.0f)));
    return _mm256_mul_ps(dy, g);
}

static inline __m256 quick_gelu_f8(__m256 x) {
    __m256 s, sm;
    sigmoid8(_mm256_mul_ps(x, _mm256_set1_ps(1.702f)), &s, &sm);
    return _mm256_mul_ps(x, s);
}
// d/dx x·σ(kx) = σ(kx)·(1 + k·x·(1 − σ(kx))), k = 1.702
static inline __m256 quick_gelu_b8(__m256 x, __m256 dy) {
    __m256 s, sm;
    __m256 kx = _mm256_mul_ps(x, _mm256_set1_ps(1.702f));
    sigmoid8(kx, &s, &sm);
    __m256 g = _mm256_mul_ps(s, _mm256_fmadd_ps(clamp100(kx), sm, _mm256_set1_ps(1.0f)));
    return _mm256_mul_ps(dy, g);
}

// GELU tanh form via ½(1 + tanh u) = σ(2u): no cancellation in 1 + tanh for u ≪ 0.
// v = 2u = 2·√(2/π)·x·(1 + 0.044715·x²), from clamped x so x³ cannot overflow (σ is already
// saturated at |x| = 100).
#define GELU_2K0 1.5957691216057308f  // 2·√(2/π)
#define GELU_K1 0.044715f
static inline __m256 gelu_tanh_f8(__m256 x) {
    __m256 xc = clamp100(x);
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_2K0), xc),
                             _mm256_fmadd_ps(_mm256_set1_ps(GELU_K1), _mm256_mul_ps(xc, xc), _mm256_set1_ps(1.0f)));
    __m256 s, sm;
    sigmoid8(v, &s, &sm);
    return _mm256_mul_ps(x, s);
}
// d/dx x·σ(v(x)) = σ(v) + x·σ(v)(1 − σ(v))·v'(x),  v' = 2·√(2/π)·(1 + 3·0.044715·x²)
static inline __m256 gelu_tanh_b8(__m256 x, __m256 dy) {
    __m256 xc = clamp100(x);
    __m256 x2 = _mm256_mul_ps(xc, xc);
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_2K0), xc),
                             _mm256_fmadd_ps(_mm256_set1_ps(GELU_K1), x2, _mm256_set1_ps(1.0f)));
    __m256 dv = _mm256_mul_ps(_mm256_set1_ps(GELU_2K0),
                              _mm256_fmadd_ps(_mm256_set1_ps(3.0f * GELU_K1), x2, _mm256_set1_ps(1.0f)));
    __m256 s, sm;
    sigmoid8(v, &s, &sm);
    __m256 g = _mm256_mul_ps(s, _mm256_fmadd_ps(_mm256_mul_ps(xc, sm), dv, _mm256_set1_ps(1.0f)));
    return _mm256_mul_ps(dy, g);
}

// Φ(x) = ½(1 + erf(x/√2)). For x ≪ 0 the sum cancels: absolute error ≤ ~2⁻²⁵ (as PyTorch).
static inline __m256 phi_cdf8(__m256 x) {
    __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_fmadd_ps(_mm256_set1_ps(0.5f), e, _mm256_set1_ps(0.5f));
}
static inline __m256 gelu_f8(__m256 x) { return _mm256_mul_ps(x, phi_cdf8(x)); }
// d/dx x·Φ(x) = Φ(x) + x·φ(x),  φ(x) = e^{−x²/2}/√(2π)
static inline __m256 gelu_b8(__m256 x, __m256 dy) {
    __m256 xc = clamp100(x);
    __m256 pdf = _mm256_mul_ps(exp_nonpos8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(xc, xc))),
                               _mm256_set1_ps(0.39894228040143268f));
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(xc, pdf, phi_cdf8(x)));
}

// ---- drivers: blocks of 8 in parallel, then the tail through a zero-padded copy ----

#define DEFINE_ACT(name, F8, B8)                                                                 \
    void mav_##name##_forward(float *out, const float *inp, long n) {                           \
        long nb = n / 8;                                                                         \
        _Pragma("omp parallel for schedule(static) if(nb >= 4096)")                              \
        for (long b = 0; b < nb; b++) _mm256_storeu_ps(out + 8 * b, F8(_mm256_loadu_ps(inp + 8 * b))); \
        long r = n - 8 * nb;                                                                     \
        if (r > 0) {                                                                             \
            float buf[8] = {0};                                                                  \
            memcpy(buf, inp + 8 * nb, (size_t)r * sizeof(float));                               \
            _mm256_storeu_ps(buf, F8(_mm256_loadu_ps(buf)));                                     \
            memcpy(out + 8 * nb, buf, (size_t)r * sizeof(float));                                \
        }                                                                                        \
    }                                                                                            \
    void mav_##name##_backward(float *dinp, const float *dout, const float *inp, long n) {      \
        long nb = n / 8;                                                                         \
        _Pragma("omp parallel for schedule(static) if(nb >= 4096)")                              \
        for (long b = 0; b < nb; b++)                                                            \
            _mm256_storeu_ps(dinp + 8 * b, B8(_mm256_loadu_ps(inp + 8 * b), _mm256_loadu_ps(dout + 8 * b))); \
        long r = n - 8 * nb;                                                                     \
        if (r > 0) {                                                                             \
            float bx[8] = {0}, bd[8] = {0};                                                      \
            memcpy(bx, inp + 8 * nb, (size_t)r * sizeof(float));                                 \
            memcpy(bd, dout + 8 * nb, (size_t)r * sizeof(float));                                \
            _mm256_storeu_ps(bd, B8(_mm256_loadu_ps(bx), _mm256_loadu_ps(bd)));                  \
            memcpy(dinp + 8 * nb, bd, (size_t)r * sizeof(float));                                \
        }                                                                                        \
    }

// 4096 blocks = ACT_PAR_MIN elements (the _Pragma string cannot expand a macro portably).
_Static_assert(ACT_PAR_MIN == 4096 * 8, "keep the _Pragma threshold in sync");

DEFINE_ACT(silu, silu_f8, silu_b8)
DEFINE_ACT(gelu, gelu_f8, gelu_b8)
DEFINE_ACT(gelu_tanh, gelu_tanh_f8, gelu_tanh_b8)
DEFINE_ACT(quick_gelu, quick_gelu_f8, quick_gelu_b8)

static const char *const act_names[MAV_ACT_COUNT] = {"silu", "gelu", "gelu_tanh", "quick_gelu"};

const char *mav_act_name(mav_act a) { return (unsigned)a < MAV_ACT_COUNT ? act_names[a] : "?"; }

int mav_act_from_name(const char *name) {
    for (int i = 0; i < MAV_ACT_COUNT; i++)
        if (strcmp(name, act_names[i]) == 0) return i;
    return -1;
}

void mav_act_forward(mav_act a, float *out, const float *inp, long n) {
    switch (a) {
    case MAV_ACT_SILU: mav_silu_forward(out, inp, n); return;
    case MAV_ACT_GELU: mav_gelu_forward(out, inp, n); return;
    case MAV_ACT_GELU_TANH: mav_gelu_tanh_forward(out, inp, n); return;
    case MAV_ACT_QUICK_GELU: mav_quick_gelu_forward(out, inp, n); return;
    default: MAV_ASSERT(!"unknown activation");
    }
}

void mav_act_backward(mav_act a, float *dinp, const float *dout, const float *inp, long n) {
    switch (a) {
    case MAV_ACT_SILU: mav_silu_backward(dinp, dout, inp, n); return;
    case MAV_ACT_GELU: mav_gelu_backward(dinp, dout, inp, n); return;
    case MAV_ACT_GELU_TANH: mav_gelu_tanh_backward(dinp, dout, inp, n); return;
    case MAV_ACT_QUICK_GELU: mav_quick_gelu_backward(dinp, dout, inp, n); return;
    default: MAV_ASSERT(!"unknown activation");
    }
}
