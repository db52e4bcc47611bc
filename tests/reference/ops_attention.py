"""PyTorch references for src/ops/attention.c (tests/test_attention.c, group `attention`).

Plain softmax attention with materialised scores, computed in float64 from float32 inputs, so
the C float32 result is compared against the exact answer. Layout as SPEC §2: a qkv buffer
[B, N, 3C] = [q | k | v], head h owning channels [h·hd, (h+1)·hd) of each; context keys/values
from ctx_kv [B, Nc, 2C] = [k | v] placed before the pixel keys (SPEC §3).

attention_spatial.safetensors: B 3 (frames), H 2, hd 16, N 63 (7×9 pixels), Nc 4, no mask.
attention_causal.safetensors:  B 2, H 3, hd 8, N 13, causal, key mask = keys after EOT masked
                               (SPEC §5 prior; EOT at 5 and 12).
  qkv [B, N, 3C] F32, ctxkv [B, Nc, 2C] F32 (spatial only), mask [B, Nc+N] F32 (0/1, causal only),
  dout [B, N, C] F32; out [B, N, C] F64, lse [B, H, N] F64, dqkv F64, dctxkv F64 (spatial only).
"""
import math
import os

import torch

from st_io import save


def attention(q, k, v, ck, cv, heads, causal, mask):
    """q [B, Nq, C], k/v [B, Nk, C], ck/cv [B, Nc, C] or None; mask [B, Nc+Nk] bool or None.
    Returns out [B, Nq, C] and lse [B, H, Nq]; a query with no visible key gives 0 / -inf."""
    B, Nq, C = q.shape
    Nk, hd = k.shape[1], C // heads
    Nc = 0 if ck is None else ck.shape[1]
    if Nc:
        k, v = torch.cat([ck, k], 1), torch.cat([cv, v], 1)
    Nt = Nc + Nk
    qh = q.view(B, Nq, heads, hd).transpose(1, 2)
    kh = k.view(B, Nt, heads, hd).transpose(1, 2)
    vh = v.view(B, Nt, heads, hd).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / math.sqrt(hd)  # [B, H, Nq, Nt]
    vis = torch.ones(B, 1, Nq, Nt, dtype=torch.bool)
    if mask is not None:
        vis = vis & mask[:, None, None, :]
    if causal:
        i = torch.arange(Nq)[:, None]
        j = torch.arange(Nt)[None, :]
        vis = vis & ((j < Nc) | (j - Nc <= i + (Nk - Nq)))
    s = s.masked_fill(~vis, float("-inf"))
    anyk = vis.any(-1, keepdim=True)
    s = torch.where(anyk, s, torch.zeros_like(s))  # empty rows: finite dummy, zeroed below
    p = torch.softmax(s, -1) * anyk
    lse = torch.where(anyk[..., 0], torch.logsumexp(s, -1), torch.full_like(s[..., 0], float("-inf")))
    out = (p @ vh).transpose(1, 2).reshape(B, Nq, C)
    return out, lse


def case(path, B, H, hd, N, Nc, causal, eots, seed):
    g = torch.Generator().manual_seed(seed)
    C = H * hd
    qkv = torch.randn(B, N, 3 * C, generator=g)
    ctxkv = torch.randn(B, Nc, 2 * C, generator=g) if Nc else None
    dout = torch.randn(B, N, C, generator=g)
    mask = None
    if eots is not None:
        mask = torch.zeros(B, Nc + N, dtype=torch.bool)
        for b, e in enumerate(eots):
            mask[b, :Nc + e + 1] = True
    x = qkv.double().requires_grad_(True)
    cx = ctxkv.double().requires_grad_(True) if Nc else None
    q, k, v = x[..., :C], x[..., C:2 * C], x[..., 2 * C:]
    ck, cv = (cx[..., :C], cx[..., C:]) if Nc else (None, None)
    out, lse = attention(q, k, v, ck, cv, H, causal, mask)
    out.backward(dout.double())
    t = {"qkv": qkv, "dout": dout}
    if Nc:
        t["ctxkv"] = ctxkv
    if mask is not None:
        t["mask"] = mask.float()
    t.update({"out": out.detach(), "lse": lse.detach(), "dqkv": x.grad})
    if Nc:
        t["dctxkv"] = cx.grad
    save(path, t, {"B": B, "H": H, "head_dim": hd, "N": N, "Nc": Nc, "causal": int(causal)})


def generate(outdir):
    torch.manual_seed(0)
    case(os.path.join(outdir, "attention_spatial.safetensors"), 3, 2, 16, 63, 4, False, None, 1)
    case(os.path.join(outdir, "attention_causal.safetensors"), 2, 3, 8, 13, 0, True, [5, 12], 2)


if __name__ == "__main__":
    import sys
    generate(sys.argv[1] if len(sys.argv) > 1 else ".")
