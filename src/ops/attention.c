// attention.c — flash-style multi-head attention on the CPU (see attention.h for the contract).
//
// Both passes work per (b, h) on packed copies of that head's data in per-thread scratch:
//   qs [Nq, hdp]  scale·q, channels zero-padded to hdp = round8(head_dim)
//   kt [hd, Ntp]  keys transposed (context keys first), columns zero-padded to Ntp = round8(Nt)
//   v  [Nt, hdp]  values, channels zero-padded
//   bias [Ntp]    0 for a visible key, −inf for a masked or padding key
// so every product is one small GEMM shape, C[M, 8·n] (+)= A[M, K] · B[K, 8·n], done by an
// AVX2 register-tile kernel (3 rows × 32 columns, 12 accumulators) with no tails to handle:
// B is always zero-padded to a multiple of 8 columns, and M, K are arbitrary.
// Packing costs O(N·hd) per head against O(N²·hd) arithmetic, and keeps the kernels free of
// the caller's strides (q/k/v usually live interleaved in one qkv buffer).
//
// Forward: tasks are (b, h, query block of FWD_BQ) in a static schedule; a thread repacks k/v
// only when its next task moves to another (b, h). Per query row the running max m and the
// softmax denominator l are kept across key blocks (l in double, ENGINE.md "Precision"; each
// block adds an f32 sum of at most FWD_BK terms in [0, 1]). A row's arithmetic does not depend
// on which block or thread it lands in, so results are identical for any thread count.
// Backward (FlashAttention-2): tasks are (b, h); outer loop over key blocks holding dK/dV, inner
// over query blocks, P recomputed as exp(s − lse), D_i = dO_i·O_i, dQ accumulated per head.
#include "ops/attention.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

// Block sizes. A forward step touches qs/o [BQ, hdp] + S [BQ, BK] + a kt/v block [BK, hdp]:
// with hd = 64 that is 8 + 8 + 8 + 2·16 KB, i.e. L1/L2-resident on Zen 3 (32 KB L1, 512 KB L2).
enum { FWD_BQ = 32, FWD_BK = 64, BWD_BQ = 32, BWD_BK = 64 };

static inline long round8(long n) { return (n + 7) & ~7L; }
static inline long round16(long n) { return (n + 15) & ~15L; }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

// ---------------------------------------------------------------- small GEMM kernel

// C[R, 8·NV] (= or += when acc) Σ_k A(r, k) · B[k, 0:8·NV], with A(r, k) = A[r·ars + k·aks]
// (so A may be read transposed) and B row-major. R ≤ 3, NV ≤ 4: 12 accumulators + 4 B vectors.
static inline __attribute__((always_inline)) void micro(const int R, const int NV, int K, const float *A, long ars,
                                                        long aks, const float *B, long ldb, float *C, long ldc,
                                                        int acc) {
    __m256 c[3][4];
#pragma GCC unroll 3
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) c[r][v] = acc ? _mm256_loadu_ps(C + r * ldc + 8 * v) : _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = B + (long)k * ldb;
        const float *a = A + (long)k * aks;
        __m256 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 3
        for (int r = 0; r < R; r++) {
            __m256 av = _mm256_broadcast_ss(a + r * ars);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) c[r][v] = _mm256_fmadd_ps(av, bv[v], c[r][v]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm256_storeu_ps(C + r * ldc + 8 * v, c[r][v]);
}

// C[M, N] (= or +=) A(M×K) · B[K, N]; N a multiple of 8; A(r, k) = A[r·ars + k·aks].
static void gemm_small(int M, int N, int K, const float *A, long ars, long aks, const float *B, long ldb, float *C,
                       long ldc, int acc) {
    for (int r = 0; r < M; r += 3) {
        const int R = imin(3, M - r);
        const float *a = A + r * ars;
        float *cr = C + r * ldc;
        for (int c = 0; c < N; c += 32) {
            const int NV = imin(4, (N - c) / 8);
#define MICRO_CASE(RR, VV) \
    case (RR) * 8 + (VV): micro(RR, VV, K, a, ars, aks, B + c, ldb, cr + c, ldc, acc); break;
            switch (R * 8 + NV) {
                MICRO_CASE(1, 1) MICRO_CASE(1, 2) MICRO_CASE(1, 3) MICRO_CASE(1, 4)
                MICRO_CASE(2, 1) MICRO_CASE(2, 2) MICRO_CASE(2, 3) MICRO_CASE(2, 4)
                MICRO_CASE(3, 1) MICRO_CASE(3, 2) MICRO_CASE(3, 3) MICRO_CASE(3, 4)
                default: MAV_ASSERT(0);
            }
#undef MICRO_CASE
        }
    }
}

// ---------------------------------------------------------------- vector exp

// e^x for 8 lanes, Cephes expf polynomial (≈1 ulp on [−87, 88]); lanes with x < −87 (−inf
// included: masked scores) give exactly 0, so masked keys never leak a denormal weight.
static inline __m256 exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.3762626647949f);
    __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------- shared per-head packing

typedef struct {
    int hd, hdp;     // head_dim, padded to a multiple of 8
    int Nt, Ntp;     // Nc + Nk, padded to a multiple of 8
    float scale;
} geom;

static geom geom_of(const mav_attn_shape *s) {
    geom g;
    g.hd = s->head_dim;
    g.hdp = (int)round8(s->head_dim);
    g.Nt = s->Nc + s->Nk;
    g.Ntp = (int)round8(g.Nt);
    g.scale = s->scale != 0.0f ? s->scale : (float)(1.0 / sqrt((double)s->head_dim));
    return g;
}

// Row j of the concatenated key (or value) sequence of batch b, head h: context rows first.
static inline const float *kv_row(const float *x, const float *cx, long st, long bst, long cst, long cbst,
                                  const mav_attn_shape *s, int b, int h, int j) {
    return j < s->Nc ? cx + b * cbst + j * cst + (long)h * s->head_dim
                     : x + b * bst + (long)(j - s->Nc) * st + (long)h * s->head_dim;
}

// 8×8 transpose: dst[c·ldd + r] = src[r][c] for r, c < 8 (rows given by pointer).
static inline void transpose8(float *dst, long ldd, const float *const src[8]) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    // r0..r3: columns 0, 1, 2, 3 of rows 0-3 (low lanes) and columns 4-7 (high lanes); r4..r7 likewise for rows 4-7
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(dst + (long)i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (long)(i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

// kt [hd, Ntp] = keys transposed (padding columns 0); used as the B operand of q·kᵀ.
// 8×8 register transposes where whole tiles fit: a scalar column scatter would touch one
// cache line per element for long sequences.
static void pack_t(float *kt, const float *x, const float *cx, long st, long bst, long cst, long cbst,
                   const mav_attn_shape *s, const geom *g, int b, int h) {
    const int hd8 = g->hd & ~7, Nt8 = g->Nt & ~7;
    for (int j0 = 0; j0 < Nt8; j0 += 8) {
        const float *rows[8];
        for (int i = 0; i < 8; i++) rows[i] = kv_row(x, cx, st, bst, cst, cbst, s, b, h, j0 + i);
        for (int d0 = 0; d0 < hd8; d0 += 8) {
            const float *src[8];
            for (int i = 0; i < 8; i++) src[i] = rows[i] + d0;
            transpose8(kt + (long)d0 * g->Ntp + j0, g->Ntp, src);
        }
        for (int i = 0; i < 8; i++)
            for (int d = hd8; d < g->hd; d++) kt[(long)d * g->Ntp + j0 + i] = rows[i][d];
    }
    for (int j = Nt8; j < g->Nt; j++) {
        const float *row = kv_row(x, cx, st, bst, cst, cbst, s, b, h, j);
        for (int d = 0; d < g->hd; d++) kt[(long)d * g->Ntp + j] = row[d];
    }
    for (int d = 0; d < g->hd; d++)
        for (int j = g->Nt; j < g->Ntp; j++) kt[(long)d * g->Ntp + j] = 0.0f;
}

// vr [Nt, hdp] = rows (padding channels 0); used as the B operand of p·v and dS·k.
static void pack_rows(float *vr, const float *x, const float *cx, long st, long bst, long cst, long cbst,
                      const mav_attn_shape *s, const geom *g, int b, int h) {
    for (int j = 0; j < g->Nt; j++) {
        const float *row = kv_row(x, cx, st, bst, cst, cbst, s, b, h, j);
        float *dst = vr + (long)j * g->hdp;
        memcpy(dst, row, (size_t)g->hd * sizeof(float));
        for (int d = g->hd; d < g->hdp; d++) dst[d] = 0.0f;
    }
}

// bias [Ntp]: 0 where batch b may attend key j, −inf for masked and padding keys.
static void pack_bias(float *bias, const mav_attn_shape *s, const geom *g, int b) {
    const uint8_t *m = s->key_mask ? s->key_mask + (long)b * g->Nt : NULL;
    for (int j = 0; j < g->Ntp; j++) bias[j] = j < g->Nt && (!m || m[j]) ? 0.0f : -INFINITY;
}

// qs [n, hdp] = scale · q rows i0..i0+n of batch b, head h (padding channels 0).
static void pack_q(float *qs, const float *x, long st, long bst, const geom *g, float mul, int b, int h, int i0,
                   int n) {
    for (int i = 0; i < n; i++) {
        const float *row = x + b * bst + (long)(i0 + i) * st + (long)h * g->hd;
        float *dst = qs + (long)i * g->hdp;
        for (int d = 0; d < g->hd; d++) dst[d] = mul * row[d];
        for (int d = g->hd; d < g->hdp; d++) dst[d] = 0.0f;
    }
}

// Exclusive end of the keys query i can see under the causal rule (concatenated index):
// context keys always, then k/v keys j <= i + Nk − Nq.
static inline int causal_end(const mav_attn_shape *s, int Nt, int i) {
    if (!s->causal) return Nt;
    return imin(Nt, s->Nc + imax(0, i + s->Nk - s->Nq + 1));
}

// Sets row[cut:w] = −inf (causally hidden keys; cut may lie outside [0, w]).
static inline void cut_row(float *row, int w, int cut) {
    for (int j = imax(cut, 0); j < w; j++) row[j] = -INFINITY;
}

// Whether keys [j0, j0 + w) need the bias (a key mask, or padding past Nt); else it is all 0.
static inline int block_biased(const mav_attn_shape *s, const geom *g, int j0, int w) {
    return s->key_mask != NULL || j0 + w > g->Nt;
}

// dst[0:n] = mul · src[0:n] (src padded to a multiple of 8; dst exactly n).
static inline void scale_store(float *dst, const float *src, float mul, int n) {
    const __m256 mv = _mm256_set1_ps(mul);
    int d = 0;
    for (; d + 8 <= n; d += 8) _mm256_storeu_ps(dst + d, _mm256_mul_ps(mv, _mm256_loadu_ps(src + d)));
    for (; d < n; d++) dst[d] = mul * src[d];
}

static inline float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

// ---------------------------------------------------------------- scratch

static size_t fwd_floats(const geom *g) {
    return round16((long)g->hd * g->Ntp) + round16((long)g->Ntp * g->hdp) + round16(g->Ntp) +
           2 * round16((long)FWD_BQ * g->hdp) + round16((long)FWD_BQ * FWD_BK) + round16(FWD_BQ) +
           round16(2 * FWD_BQ);
}

static size_t bwd_floats(const mav_attn_shape *s, const geom *g) {
    long nq = s->Nq;
    return 3 * round16(nq * g->hdp) + 2 * round16(nq) +                     // qs, dop, dqa; D, lse
           2 * round16((long)g->hd * g->Ntp) + round16((long)g->Ntp * g->hdp) +  // kt, vt, kr
           round16(g->Ntp) + 2 * round16((long)BWD_BQ * BWD_BK) +            // bias, P, dS
           2 * round16((long)BWD_BK * g->hdp);                               // dK, dV block
}

size_t mav_attention_scratch_floats(const mav_attn_shape *s) {
    geom g = geom_of(s);
    size_t f = fwd_floats(&g), b = bwd_floats(s, &g);
    return (size_t)omp_get_max_threads() * (f > b ? f : b) + 16;
}

mav_attn_shape mav_attn_shape_contiguous(int B, int H, int head_dim, int Nq, int Nk, int Nc) {
    long C = (long)H * head_dim;
    mav_attn_shape s = {0};
    s.B = B, s.H = H, s.head_dim = head_dim, s.Nq = Nq, s.Nk = Nk, s.Nc = Nc;
    s.q_stride = s.k_stride = s.v_stride = s.ck_stride = s.cv_stride = s.o_stride = C;
    s.q_bstride = s.o_bstride = Nq * C;
    s.k_bstride = s.v_bstride = Nk * C;
    s.ck_bstride = s.cv_bstride = Nc * C;
    return s;
}

static void check_shape(const mav_attn_shape *s) {
    MAV_ASSERT(s->B >= 0 && s->H >= 1 && s->head_dim >= 1 && s->Nq >= 0 && s->Nk >= 0 && s->Nc >= 0);
}

// ---------------------------------------------------------------- forward

// One (b, h, query block) of the forward: online softmax over key blocks, then out and lse.
static void fwd_block(float *out, float *lse, const float *q, const mav_attn_shape *s, const geom *g,
                      const float *kt, const float *vr, const float *bias, float *qs, float *o, float *sp,
                      float *m, double *l, int b, int h, int i0, int nq) {
    const int hdp = g->hdp;
    pack_q(qs, q, s->q_stride, s->q_bstride, g, g->scale, b, h, i0, nq);
    memset(o, 0, sizeof(float) * (size_t)nq * hdp);
    for (int r = 0; r < nq; r++) m[r] = -INFINITY, l[r] = 0.0;
    const int jend = causal_end(s, g->Nt, i0 + nq - 1);  // no row of the block sees keys past it
    for (int j0 = 0; j0 < jend; j0 += FWD_BK) {
        const int kbn = imin(FWD_BK, jend - j0), kbw = (int)round8(kbn);
        const int biased = block_biased(s, g, j0, kbw);
        // S[nq, kbw] = (scale·q) · kᵀ  (columns past kbn are padding or causally hidden: masked below)
        gemm_small(nq, kbw, g->hd, qs, hdp, 1, kt + j0, g->Ntp, sp, FWD_BK, 0);
        for (int r = 0; r < nq; r++) {
            float *row = sp + (long)r * FWD_BK;
            cut_row(row, kbw, causal_end(s, g->Nt, i0 + r) - j0);
            __m256 mx = _mm256_set1_ps(-INFINITY);
            if (biased) {
                for (int j = 0; j < kbw; j += 8) {
                    __m256 x = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(bias + j0 + j));
                    _mm256_storeu_ps(row + j, x);
                    mx = _mm256_max_ps(mx, x);
                }
            } else {
                for (int j = 0; j < kbw; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(row + j));
            }
            const float mnew = fmaxf(m[r], hmax256(mx));
            if (mnew == -INFINITY) {  // nothing visible yet: contributes nothing, keeps o = 0
                memset(row, 0, sizeof(float) * (size_t)kbw);
                continue;
            }
            const __m256 mv = _mm256_set1_ps(mnew);
            __m256 sum = _mm256_setzero_ps();
            for (int j = 0; j < kbw; j += 8) {
                __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + j), mv));
                _mm256_storeu_ps(row + j, p);
                sum = _mm256_add_ps(sum, p);
            }
            const float alpha = expf(m[r] - mnew);  // rescales what earlier blocks accumulated
            l[r] = l[r] * alpha + hsum256(sum);
            m[r] = mnew;
            if (alpha != 1.0f) {
                float *orow = o + (long)r * hdp;
                const __m256 av = _mm256_set1_ps(alpha);
                for (int d = 0; d < hdp; d += 8) _mm256_storeu_ps(orow + d, _mm256_mul_ps(av, _mm256_loadu_ps(orow + d)));
            }
        }
        // o[nq, hdp] += P[nq, kbn] · v[j0:j0+kbn, hdp]
        gemm_small(nq, hdp, kbn, sp, FWD_BK, 1, vr + (long)j0 * hdp, hdp, o, hdp, 1);
    }
    for (int r = 0; r < nq; r++) {
        const int i = i0 + r;
        float *orow = out + b * s->o_bstride + (long)i * s->o_stride + (long)h * g->hd;
        float *lrow = lse + ((long)b * s->H + h) * s->Nq;
        if (l[r] == 0.0) {  // no visible key
            for (int d = 0; d < g->hd; d++) orow[d] = 0.0f;
            lrow[i] = -INFINITY;
        } else {
            scale_store(orow, o + (long)r * hdp, (float)(1.0 / l[r]), g->hd);
            lrow[i] = (float)((double)m[r] + log(l[r]));
        }
    }
}

void mav_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                           const float *ck, const float *cv, const mav_attn_shape *s, float *scratch) {
    check_shape(s);
    const geom g = geom_of(s);
    const long nqb = (s->Nq + FWD_BQ - 1) / FWD_BQ;
    const long ntask = (long)s->B * s->H * nqb;
    const size_t per = fwd_floats(&g);
    float *base = align64(scratch);
#pragma omp parallel
    {
        float *w = base + (size_t)omp_get_thread_num() * per;
        float *kt = w;                                              // [hd, Ntp]
        float *vr = kt + round16((long)g.hd * g.Ntp);               // [Ntp, hdp]
        float *bias = vr + round16((long)g.Ntp * g.hdp);            // [Ntp]
        float *qs = bias + round16(g.Ntp);                          // [BQ, hdp]
        float *o = qs + round16((long)FWD_BQ * g.hdp);              // [BQ, hdp]
        float *sp = o + round16((long)FWD_BQ * g.hdp);              // [BQ, BK]
        float *m = sp + round16((long)FWD_BQ * FWD_BK);             // [BQ]
        double *l = (double *)(m + round16(FWD_BQ));                // [BQ] (64-byte aligned)
        long packed = -1;  // (b, h) whose keys/values are in kt/vr: consecutive tasks reuse them
#pragma omp for schedule(static)
        for (long t = 0; t < ntask; t++) {
            const long bh = t / nqb;
            const int b = (int)(bh / s->H), h = (int)(bh % s->H);
            if (bh != packed) {
                pack_t(kt, k, ck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride, s, &g, b, h);
                pack_rows(vr, v, cv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride, s, &g, b, h);
                pack_bias(bias, s, &g, b);
                packed = bh;
            }
            const int i0 = (int)(t % nqb) * FWD_BQ;
            fwd_block(out, lse, q, s, &g, kt, vr, bias, qs, o, sp, m, l, b, h, i0, imin(FWD_BQ, s->Nq - i0));
        }
    }
}

// ---------------------------------------------------------------- backward

// Writes rows of a key-side gradient block (concatenated index j0..j0+n) to dx / dcx.
static void store_kv_grad(float *dx, float *dcx, long st, long bst, long cst, long cbst, const float *blk,
                          const mav_attn_shape *s, const geom *g, int b, int h, int j0, int n) {
    for (int r = 0; r < n; r++) {
        const int j = j0 + r;
        float *dst = j < s->Nc ? (dcx ? dcx + b * cbst + (long)j * cst : NULL)
                               : (dx ? dx + b * bst + (long)(j - s->Nc) * st : NULL);
        if (dst) memcpy(dst + (long)h * g->hd, blk + (long)r * g->hdp, (size_t)g->hd * sizeof(float));
    }
}

void mav_attention_backward(float *dq, float *dk, float *dv, float *dck, float *dcv, const float *dout,
                            const float *out, const float *lse, const float *q, const float *k, const float *v,
                            const float *ck, const float *cv, const mav_attn_shape *s, float *scratch) {
    check_shape(s);
    const geom g = geom_of(s);
    const int hd = g.hd, hdp = g.hdp, Nq = s->Nq, Nt = g.Nt;
    const int need_dq = dq != NULL, need_dk = dk || (dck && s->Nc), need_dv = dv || (dcv && s->Nc);
    const int need_ds = need_dq || need_dk;
    const long nbh = (long)s->B * s->H;
    const size_t per = bwd_floats(s, &g);
    float *base = align64(scratch);
#pragma omp parallel
    {
        float *w = base + (size_t)omp_get_thread_num() * per;
        float *qs = w;                                   // [Nq, hdp] scale·q
        float *dop = qs + round16((long)Nq * hdp);       // [Nq, hdp] dout
        float *dqa = dop + round16((long)Nq * hdp);      // [Nq, hdp] Σ_j dS_ij k_j
        float *D = dqa + round16((long)Nq * hdp);        // [Nq] rowsum(dout ∘ out)
        float *ls = D + round16(Nq);                     // [Nq] lse
        float *kt = ls + round16(Nq);                    // [hd, Ntp]
        float *vt = kt + round16((long)hd * g.Ntp);      // [hd, Ntp]
        float *kr = vt + round16((long)hd * g.Ntp);      // [Ntp, hdp]
        float *bias = kr + round16((long)g.Ntp * hdp);   // [Ntp]
        float *P = bias + round16(g.Ntp);                // [BQ, BK]
        float *dS = P + round16((long)BWD_BQ * BWD_BK);  // [BQ, BK] dP, then dS
        float *dkb = dS + round16((long)BWD_BQ * BWD_BK);  // [BK, hdp]
        float *dvb = dkb + round16((long)BWD_BK * hdp);    // [BK, hdp]
#pragma omp for schedule(static)
        for (long bh = 0; bh < nbh; bh++) {
            const int b = (int)(bh / s->H), h = (int)(bh % s->H);
            pack_q(qs, q, s->q_stride, s->q_bstride, &g, g.scale, b, h, 0, Nq);
            pack_q(dop, dout, s->o_stride, s->o_bstride, &g, 1.0f, b, h, 0, Nq);
            memcpy(ls, lse + bh * Nq, sizeof(float) * (size_t)Nq);
            for (int i = 0; i < Nq; i++) {  // D_i = dO_i · O_i (= Σ_j P_ij dP_ij), in double
                const float *orow = out + b * s->o_bstride + (long)i * s->o_stride + (long)h * hd;
                double acc = 0.0;
                for (int d = 0; d < hd; d++) acc += (double)dop[(long)i * hdp + d] * orow[d];
                D[i] = (float)acc;
            }
            pack_t(kt, k, ck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride, s, &g, b, h);
            if (need_ds) pack_t(vt, v, cv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride, s, &g, b, h);
            if (need_dq) {
                pack_rows(kr, k, ck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride, s, &g, b, h);
                memset(dqa, 0, sizeof(float) * (size_t)Nq * hdp);
            }
            pack_bias(bias, s, &g, b);
            for (int j0 = 0; j0 < Nt; j0 += BWD_BK) {
                const int kbn = imin(BWD_BK, Nt - j0), kbw = (int)round8(kbn);
                const int biased = block_biased(s, &g, j0, kbw);
                if (need_dk) memset(dkb, 0, sizeof(float) * (size_t)kbn * hdp);
                if (need_dv) memset(dvb, 0, sizeof(float) * (size_t)kbn * hdp);
                for (int i0 = 0; i0 < Nq; i0 += BWD_BQ) {
                    const int nq = imin(BWD_BQ, Nq - i0);
                    if (j0 >= causal_end(s, Nt, i0 + nq - 1)) continue;  // causally hidden from the whole block
                    // P = exp(scale·q·kᵀ − lse), masked entries 0
                    gemm_small(nq, kbw, hd, qs + (long)i0 * hdp, hdp, 1, kt + j0, g.Ntp, P, BWD_BK, 0);
                    for (int r = 0; r < nq; r++) {
                        float *row = P + (long)r * BWD_BK;
                        const float lr = ls[i0 + r];
                        if (lr == -INFINITY) {  // query with no visible key: no gradient flows
                            memset(row, 0, sizeof(float) * (size_t)kbw);
                            continue;
                        }
                        cut_row(row, kbw, causal_end(s, Nt, i0 + r) - j0);
                        const __m256 lv = _mm256_set1_ps(lr);
                        if (biased) {
                            for (int j = 0; j < kbw; j += 8) {
                                __m256 x = _mm256_add_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(bias + j0 + j));
                                _mm256_storeu_ps(row + j, exp256(_mm256_sub_ps(x, lv)));
                            }
                        } else {
                            for (int j = 0; j < kbw; j += 8)
                                _mm256_storeu_ps(row + j, exp256(_mm256_sub_ps(_mm256_loadu_ps(row + j), lv)));
                        }
                    }
                    // dV[kbn, hdp] += Pᵀ · dO
                    if (need_dv)
                        gemm_small(kbn, hdp, nq, P, 1, BWD_BK, dop + (long)i0 * hdp, hdp, dvb, hdp, 1);
                    if (!need_ds) continue;
                    // dP = dO · vᵀ; dS = P ∘ (dP − D)
                    gemm_small(nq, kbw, hd, dop + (long)i0 * hdp, hdp, 1, vt + j0, g.Ntp, dS, BWD_BK, 0);
                    for (int r = 0; r < nq; r++) {
                        float *prow = P + (long)r * BWD_BK, *drow = dS + (long)r * BWD_BK;
                        const __m256 Dv = _mm256_set1_ps(D[i0 + r]);
                        for (int j = 0; j < kbw; j += 8)
                            _mm256_storeu_ps(drow + j, _mm256_mul_ps(_mm256_loadu_ps(prow + j),
                                                                     _mm256_sub_ps(_mm256_loadu_ps(drow + j), Dv)));
                    }
                    // dK[kbn, hdp] += dSᵀ · (scale·q)
                    if (need_dk)
                        gemm_small(kbn, hdp, nq, dS, 1, BWD_BK, qs + (long)i0 * hdp, hdp, dkb, hdp, 1);
                    // dQ[nq, hdp] += dS · k  (times scale at the end)
                    if (need_dq)
                        gemm_small(nq, hdp, kbn, dS, BWD_BK, 1, kr + (long)j0 * hdp, hdp, dqa + (long)i0 * hdp,
                                   hdp, 1);
                }
                if (need_dk)
                    store_kv_grad(dk, dck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride, dkb, s, &g, b, h,
                                  j0, kbn);
                if (need_dv)
                    store_kv_grad(dv, dcv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride, dvb, s, &g, b, h,
                                  j0, kbn);
            }
            if (need_dq) {
                for (int i = 0; i < Nq; i++) {
                    float *dst = dq + b * s->q_bstride + (long)i * s->q_stride + (long)h * hd;
                    scale_store(dst, dqa + (long)i * hdp, g.scale, hd);
                }
            }
        }
    }
}
