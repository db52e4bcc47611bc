// attention.h — multi-head softmax attention, flash style (SPEC §2, §3 context keys, §5 masks).
//
// Per (batch b, head h): o_i = Σ_j softmax_j(scale · q_i·k_j) v_j over the concatenated key
// sequence [context keys ck/cv (Nc), then keys k/v (Nk)]. Head h owns channels
// [h·head_dim, (h+1)·head_dim) of every q/k/v/ck/cv/out row (SPEC §2 qkv layout), so q, k, v
// may be strided views into one [B, N, 3C] qkv buffer and ck/cv into one [B, Nc, 2C] ctx_kv.
//
// Memory is linear in the sequence length: the forward walks key blocks with an online
// softmax (running max and sum) and saves only the log-sum-exp per query; the backward
// (FlashAttention-2) recomputes the probabilities blockwise from it. Nothing Nq×Nk is stored.
//
// Masks: a key is visible to query i when key_mask allows it AND (not causal, or it is a context
// key, or its index j in k/v satisfies j <= i + (Nk − Nq)). A query with no visible key outputs
// 0, has lse = −inf, and gets zero gradient (no NaN).
//
// Threads: forward parallel over (b, h, query block), backward over (b, h); each output element
// has one owner and a fixed reduction order, so results are bit-identical run to run and also
// across thread counts.
#ifndef MAV_ATTENTION_H
#define MAV_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int B, H, head_dim;  // batch, heads, channels per head (C = H·head_dim)
    int Nq, Nk;          // queries; keys/values from k, v
    int Nc;              // context keys/values prepended before k/v (0 = none; ck/cv may be NULL)
    long q_stride, k_stride, v_stride, ck_stride, cv_stride, o_stride;        // row strides (floats)
    long q_bstride, k_bstride, v_bstride, ck_bstride, cv_bstride, o_bstride;  // batch strides (floats)
    int causal;               // query i sees key j of k/v iff j <= i + (Nk - Nq); context keys always visible
    const uint8_t *key_mask;  // [B, Nc + Nk], 1 = may attend; NULL = all
    float scale;              // 0 = 1/sqrt(head_dim)
} mav_attn_shape;

// Fills every stride for contiguous tensors: q/out [B, Nq, C], k/v [B, Nk, C], ck/cv [B, Nc, C];
// mask NULL, not causal, default scale. Adjust fields afterwards for other layouts.
mav_attn_shape mav_attn_shape_contiguous(int B, int H, int head_dim, int Nq, int Nk, int Nc);

// Work memory (floats) for forward and backward at the current OpenMP thread count.
size_t mav_attention_scratch_floats(const mav_attn_shape *s);

// out (o_stride rows, head channels only are written) = attention; lse [B, H, Nq] (contiguous)
// = log Σ_j exp(scale·q_i·k_j) over visible keys (−inf for a query with none).
// q: [B, Nq, ·] strided; k, v: [B, Nk, ·]; ck, cv: [B, Nc, ·] (NULL when Nc = 0).
void mav_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                           const float *ck, const float *cv, const mav_attn_shape *s, float *scratch);

// Gradients of the loss given dout (same layout as out). Each gradient uses its input's strides
// and is written (=) on the head channels only; a NULL gradient is skipped. out and lse are the
// forward's results.
void mav_attention_backward(float *dq, float *dk, float *dv, float *dck, float *dcv, const float *dout,
                            const float *out, const float *lse, const float *q, const float *k, const float *v,
                            const float *ck, const float *cv, const mav_attn_shape *s, float *scratch);

#endif
