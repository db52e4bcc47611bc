#include "ops/loss.h"

#include <math.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"

// ---------------------------------------------------------------- MSE

// The sum is split into at most MSE_CHUNKS chunks whose bounds depend only on n; each chunk is
// summed in double in order and the chunk sums are added in order, so the value is the same
// for any thread count.
enum { MSE_CHUNKS = 256, MSE_MIN_CHUNK = 4096 };

double mav_mse_forward(const float *x, const float *y, long n) {
    MAV_ASSERT(n > 0);
    long nch = (n + MSE_MIN_CHUNK - 1) / MSE_MIN_CHUNK;
    if (nch > MSE_CHUNKS) nch = MSE_CHUNKS;
    double part[MSE_CHUNKS];
    #pragma omp parallel for schedule(static) if (nch > 1)
    for (long k = 0; k < nch; k++) {
        long i0 = n * k / nch, i1 = n * (k + 1) / nch;
        // four independent accumulators: the adds pipeline instead of waiting on one chain
        double s[4] = {0, 0, 0, 0};
        long i = i0;
        for (; i + 4 <= i1; i += 4)
            for (int l = 0; l < 4; l++) {
                double d = (double)x[i + l] - (double)y[i + l];
                s[l] += d * d;
            }
        for (; i < i1; i++) {
            double d = (double)x[i] - (double)y[i];
            s[0] += d * d;
        }
        part[k] = (s[0] + s[1]) + (s[2] + s[3]);
    }
    double sum = 0;
    for (long k = 0; k < nch; k++) sum += part[k];
    return sum / (double)n;
}

void mav_mse_backward(float *dx, const float *x, const float *y, long n, float dloss) {
    MAV_ASSERT(n > 0);
    float scale = (float)(2.0 * (double)dloss / (double)n);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) dx[i] = (x[i] - y[i]) * scale;
}

// ---------------------------------------------------------------- CLIP contrastive loss

// F.normalize's clamp: a row with norm below this is divided by it instead.
#define CLIP_NORM_EPS 1e-12

// saved layout: A [B,D] | Bn [B,D] | L [B,B] | norm_a [B] | norm_b [B] | lse_row [B] double |
// lse_col [B] double (doubles stored through memcpy: two floats each, no alignment needed).
typedef struct {
    float *a, *b, *logits, *norm_a, *norm_b;
    float *lse_row, *lse_col;  // B doubles each
} clip_saved;

static clip_saved clip_layout(const float *saved, int B, int D) {
    float *p = (float *)saved;
    clip_saved s;
    s.a = p; p += (long)B * D;
    s.b = p; p += (long)B * D;
    s.logits = p; p += (long)B * B;
    s.norm_a = p; p += B;
    s.norm_b = p; p += B;
    s.lse_row = p; p += 2 * B;
    s.lse_col = p;
    return s;
}

static inline double get_d(const float *p, long i) { double v; memcpy(&v, p + 2 * i, sizeof v); return v; }
static inline void put_d(float *p, long i, double v) { memcpy(p + 2 * i, &v, sizeof v); }

long mav_clip_loss_saved_floats(int B, int D) { return 2L * B * D + (long)B * B + 6L * B; }
long mav_clip_loss_scratch_floats(int B) { return (long)B * B + 2L * B; }

// out = x / max(‖x‖, eps) per row, the norm (sum of squares in double) saved.
static void normalize_rows(float *out, float *norm, const float *x, int B, int D) {
    #pragma omp parallel for schedule(static) if ((long)B * D > 32768)
    for (int i = 0; i < B; i++) {
        const float *xi = x + (long)i * D;
        double ss = 0;
        for (int k = 0; k < D; k++) ss += (double)xi[k] * xi[k];
        double nrm = sqrt(ss), inv = 1.0 / fmax(nrm, CLIP_NORM_EPS);
        norm[i] = (float)nrm;
        for (int k = 0; k < D; k++) out[(long)i * D + k] = (float)(xi[k] * inv);
    }
}

// log Σ_k exp(v[k·stride]) in double, and the first index of the maximum.
static double lse_strided(const float *v, long stride, int n, int *argmax) {
    float m = v[0];
    int am = 0;
    for (int k = 1; k < n; k++)
        if (v[k * stride] > m) { m = v[k * stride]; am = k; }
    double s = 0;
    for (int k = 0; k < n; k++) s += exp((double)v[k * stride] - m);
    *argmax = am;
    return m + log(s);
}

double mav_clip_loss_forward(float *saved, int *correct, const float *img, const float *txt, float logit_scale, int B,
                             int D) {
    MAV_ASSERT(B > 0 && D > 0);
    clip_saved s = clip_layout(saved, B, D);
    normalize_rows(s.a, s.norm_a, img, B, D);
    normalize_rows(s.b, s.norm_b, txt, B, D);
    float scale = (float)exp((double)logit_scale);
    // L[B, B] = scale · A[B, D] · Bnᵀ
    mav_sgemm(0, 1, B, B, D, scale, s.a, D, s.b, D, 0.0f, s.logits, B);
    int hits_i2t = 0, hits_t2i = 0;
    #pragma omp parallel for schedule(static) reduction(+ : hits_i2t) if ((long)B * B > 16384)
    for (int i = 0; i < B; i++) {
        int am;
        put_d(s.lse_row, i, lse_strided(s.logits + (long)i * B, 1, B, &am));
        hits_i2t += am == i;
    }
    #pragma omp parallel for schedule(static) reduction(+ : hits_t2i) if ((long)B * B > 16384)
    for (int j = 0; j < B; j++) {
        int am;
        put_d(s.lse_col, j, lse_strided(s.logits + j, B, B, &am));
        hits_t2i += am == j;
    }
    if (correct) { correct[0] = hits_i2t; correct[1] = hits_t2i; }
    // CE of row i with label i is lse_row_i − L_ii; of column j, lse_col_j − L_jj.
    double sum = 0;
    for (int i = 0; i < B; i++) {
        double lii = s.logits[(long)i * B + i];
        sum += (get_d(s.lse_row, i) - lii) + (get_d(s.lse_col, i) - lii);
    }
    return sum / (2.0 * B);
}

// dx = (da − a·(a·da)) / ‖x‖ in place on da (the Jacobian of x/‖x‖), or da/eps when the norm
// was clamped (then x/eps is linear in x).
static void normalize_backward_rows(float *dx, const float *a, const float *norm, int B, int D) {
    #pragma omp parallel for schedule(static) if ((long)B * D > 32768)
    for (int i = 0; i < B; i++) {
        float *di = dx + (long)i * D;
        const float *ai = a + (long)i * D;
        if (norm[i] > CLIP_NORM_EPS) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)ai[k] * di[k];
            double inv = 1.0 / norm[i];
            for (int k = 0; k < D; k++) di[k] = (float)((di[k] - ai[k] * dot) * inv);
        } else {
            for (int k = 0; k < D; k++) di[k] = (float)(di[k] / CLIP_NORM_EPS);
        }
    }
}

void mav_clip_loss_backward(float *dimg, float *dtxt, float *dlogit_scale, float dloss, const float *saved,
                            float logit_scale, int B, int D, float *scratch) {
    MAV_ASSERT(B > 0 && D > 0);
    clip_saved s = clip_layout(saved, B, D);
    float *dS = scratch;                      // [B, B]: d loss / d (A·Bᵀ)
    float *part = scratch + (long)B * B;      // B doubles: row partials of d loss / d logit_scale
    double scale = (double)(float)exp((double)logit_scale);
    double c = (double)dloss / (2.0 * B);
    // d loss / d L_ij = c·(softmax_row_i(L)_j + softmax_col_j(L)_i − 2δ_ij); L = scale·S, so
    // d/dS = scale · that, and d/d logit_scale = Σ_ij (d/dL_ij)·L_ij.
    #pragma omp parallel for schedule(static) if ((long)B * B > 16384)
    for (int i = 0; i < B; i++) {
        const float *Li = s.logits + (long)i * B;
        double lr = get_d(s.lse_row, i), acc = 0;
        for (int j = 0; j < B; j++) {
            double g = exp(Li[j] - lr) + exp(Li[j] - get_d(s.lse_col, j)) - (i == j ? 2.0 : 0.0);
            g *= c;
            dS[(long)i * B + j] = (float)(scale * g);
            acc += g * Li[j];
        }
        put_d(part, i, acc);
    }
    if (dlogit_scale) {
        double g = 0;
        for (int i = 0; i < B; i++) g += get_d(part, i);
        *dlogit_scale += (float)g;
    }
    if (dimg) {  // dA[B, D] = dS[B, B] · Bn[B, D], then through the normalisation
        mav_sgemm(0, 0, B, D, B, 1.0f, dS, B, s.b, D, 0.0f, dimg, D);
        normalize_backward_rows(dimg, s.a, s.norm_a, B, D);
    }
    if (dtxt) {  // dBn[B, D] = dSᵀ · A
        mav_sgemm(1, 0, B, D, B, 1.0f, dS, B, s.a, D, 0.0f, dtxt, D);
        normalize_backward_rows(dtxt, s.b, s.norm_b, B, D);
    }
}
