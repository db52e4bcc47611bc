// activation.h — elementwise activations, forward and backward (SPEC §2–§5).
//
//   SiLU        x·σ(x)                       (U-Net, MLP_emb)
//   GELU        x·Φ(x) = ½x(1 + erf(x/√2))    (exact erf; prior transformer)
//   GELU tanh   ½x(1 + tanh(√(2/π)(x + 0.044715x³)))   (PyTorch approximate='tanh')
//   QuickGELU   x·σ(1.702x)                  (OpenAI CLIP)
//
// Forward: out[i] = f(inp[i]); out == inp (in place) is allowed.
// Backward: dinp[i] = dout[i]·f'(inp[i]) (written, not accumulated, as for every activation
// gradient); dinp == dout is allowed. Both are parallel over elements (OpenMP static) and
// bit-identical for any thread count (each element is a pure function of its inputs).
//
// Accuracy (tests/test_activation.c, against double and PyTorch float64): exp ≤ 1.4·2⁻²⁴
// relative, erf ≤ 1 ulp (N. Juffa's minimax erff), σ(v) and 1 − σ(v) both relative (no
// cancelling tail). Outputs are within ~3.5·2⁻²⁴ relative (≤ 4 ulp) of the exact values, except:
// GELU at x ≪ 0, where ½(1 + erf) cancels: absolute error ≲ |x|·2⁻²⁵ (as PyTorch's f32 kernel);
// and tails σ(v) ≈ e^v at v ≪ 0, whose relative error is |v| times the f32 rounding of v (any f32
// kernel has it). Results below FLT_MIN flush to 0; huge |x| saturate (finite); NaN propagates.
#ifndef MAV_OPS_ACTIVATION_H
#define MAV_OPS_ACTIVATION_H

typedef enum {
    MAV_ACT_SILU = 0,
    MAV_ACT_GELU,        // exact (erf)
    MAV_ACT_GELU_TANH,   // tanh approximation
    MAV_ACT_QUICK_GELU,  // x·σ(1.702x)
    MAV_ACT_COUNT
} mav_act;

const char *mav_act_name(mav_act a);           // "silu", "gelu", "gelu_tanh", "quick_gelu"
int mav_act_from_name(const char *name);       // the mav_act, or -1 when unknown

void mav_silu_forward(float *out, const float *inp, long n);                         // out, inp: (n)
void mav_silu_backward(float *dinp, const float *dout, const float *inp, long n);    // all (n)
void mav_gelu_forward(float *out, const float *inp, long n);
void mav_gelu_backward(float *dinp, const float *dout, const float *inp, long n);
void mav_gelu_tanh_forward(float *out, const float *inp, long n);
void mav_gelu_tanh_backward(float *dinp, const float *dout, const float *inp, long n);
void mav_quick_gelu_forward(float *out, const float *inp, long n);
void mav_quick_gelu_backward(float *dinp, const float *dout, const float *inp, long n);

// Dispatch on a config-selected activation (asserts a < MAV_ACT_COUNT).
void mav_act_forward(mav_act a, float *out, const float *inp, long n);
void mav_act_backward(mav_act a, float *dinp, const float *dout, const float *inp, long n);

#endif
