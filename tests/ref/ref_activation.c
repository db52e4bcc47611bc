#include "ref/ref_activation.h"

#include <math.h>

#include "core/error.h"

// σ(x) without overflow or cancellation in either tail.
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

#define K0 0.7978845608028654  // √(2/π)
#define K1 0.044715
#define KQ 1.702

double ref_act_value(mav_act a, double x) {
    switch (a) {
    case MAV_ACT_SILU: return x * sigmoid(x);
    case MAV_ACT_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));  // = x·Φ(x), exact in both tails
    case MAV_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(K0 * (x + K1 * x * x * x)));
    case MAV_ACT_QUICK_GELU: return x * sigmoid(KQ * x);
    default: MAV_ASSERT(!"unknown activation"); return 0.0;
    }
}

double ref_act_deriv(mav_act a, double x) {
    switch (a) {
    case MAV_ACT_SILU: { double s = sigmoid(x); return s + x * s * (1.0 - s); }
    case MAV_ACT_GELU: return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case MAV_ACT_GELU_TANH: {
        double t = tanh(K0 * (x + K1 * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K0 * (1.0 + 3.0 * K1 * x * x);
    }
    case MAV_ACT_QUICK_GELU: { double s = sigmoid(KQ * x); return s + KQ * x * s * (1.0 - s); }
    default: MAV_ASSERT(!"unknown activation"); return 0.0;
    }
}

void ref_act_forward(mav_act a, double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = ref_act_value(a, inp[i]);
}

void ref_act_backward(mav_act a, double *dinp, const double *dout, const double *inp, long n) {
    for (long i = 0; i < n; i++) dinp[i] = dout[i] * ref_act_deriv(a, inp[i]);
}
