"""PyTorch references for the misc ops (tests/test_linear.c, test_embedding.c, test_shape_ops.c,
test_loss.c). Inputs are F32 (what the C kernels read); outputs and gradients are F64, computed in
float64 from the same f32 values, with autograd of loss = sum(out · dout) where a dout is given.

misc_linear.safetensors    inp [R, in], weight [out, in], bias [out], dout [R, out] ->
                           out, dinp, dweight, dbias (nn.functional.linear)
misc_embedding.safetensors ids [R] (I32, repeated ids), table [V, D], dout [R, D] -> out, dtable
misc_shape.safetensors     cat.a [N, Ca, P], cat.b [N, Cb, P], cat.dout -> cat.out, cat.da, cat.db
                           (torch.cat dim 1); up.inp [N, C, H, W], up.dout [N, C, 2H, 2W] -> up.out,
                           up.dinp (F.interpolate scale_factor 2, mode nearest; odd H and W)
misc_timestep.safetensors  t [4] = {0, 1, 999.5, 1000} (F32) -> emb64 [4, 64], emb320 [4, 320]
                           (SPEC §2 timestep_embedding in float64)
misc_mse.safetensors       x [n], y [n], dloss [1] -> loss [1], dx (F.mse_loss, mean)
misc_clip.safetensors      img [B, D], txt [B, D], logit_scale [1], dloss [1] -> loss [1], dimg,
                           dtxt, dlogit_scale [1], correct [2] (I32: image->text, text->image top-1
                           hits), written from the definition: F.normalize, exp(logit_scale)·A·Bᵀ,
                           (F.cross_entropy(L, arange) + F.cross_entropy(Lᵀ, arange)) / 2.
Sizes are metadata (strings).
"""
import math
import os

import torch
import torch.nn.functional as Fn

from st_io import save


def _d(t):
    return t.double().requires_grad_(True)


def _linear(out_dir, g):
    R, I, O = 7, 13, 11
    inp, w, b, dout = (torch.randn(*s, generator=g) for s in ((R, I), (O, I), (O,), (R, O)))
    x, wd, bd = _d(inp), _d(w), _d(b)
    y = Fn.linear(x, wd, bd)
    (y * dout.double()).sum().backward()
    save(os.path.join(out_dir, "misc_linear.safetensors"),
         {"inp": inp, "weight": w, "bias": b, "dout": dout, "out": y.detach(), "dinp": x.grad,
          "dweight": wd.grad, "dbias": bd.grad}, {"R": R, "C_in": I, "C_out": O})


def _embedding(out_dir, g):
    V, D = 10, 19
    ids = torch.tensor([3, 0, 9, 3, 3, 7, 0, 2, 9], dtype=torch.int32)  # repeats, first and last id
    R = ids.numel()
    table, dout = torch.randn(V, D, generator=g), torch.randn(R, D, generator=g)
    t = _d(table)
    y = Fn.embedding(ids.long(), t)
    (y * dout.double()).sum().backward()
    save(os.path.join(out_dir, "misc_embedding.safetensors"),
         {"ids": ids, "table": table, "dout": dout, "out": y.detach(), "dtable": t.grad},
         {"R": R, "V": V, "D": D})


def _shape(out_dir, g):
    N, Ca, Cb, P = 2, 3, 2, 7
    a, b, dc = (torch.randn(*s, generator=g) for s in ((N, Ca, P), (N, Cb, P), (N, Ca + Cb, P)))
    ad, bd = _d(a), _d(b)
    c = torch.cat([ad, bd], dim=1)
    (c * dc.double()).sum().backward()
    Nu, C, H, W = 3, 2, 5, 3
    u, du = torch.randn(Nu, C, H, W, generator=g), torch.randn(Nu, C, 2 * H, 2 * W, generator=g)
    ud = _d(u)
    up = Fn.interpolate(ud, scale_factor=2, mode="nearest")
    (up * du.double()).sum().backward()
    save(os.path.join(out_dir, "misc_shape.safetensors"),
         {"cat.a": a, "cat.b": b, "cat.dout": dc, "cat.out": c.detach(), "cat.da": ad.grad, "cat.db": bd.grad,
          "up.inp": u, "up.dout": du, "up.out": up.detach(), "up.dinp": ud.grad},
         {"cat.N": N, "cat.Ca": Ca, "cat.Cb": Cb, "cat.P": P, "up.N": Nu, "up.C": C, "up.H": H, "up.W": W})


def _timestep(t, d):
    half = d // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _timestep_file(out_dir):
    t = torch.tensor([0.0, 1.0, 999.5, 1000.0], dtype=torch.float32)
    save(os.path.join(out_dir, "misc_timestep.safetensors"),
         {"t": t, "emb64": _timestep(t, 64), "emb320": _timestep(t, 320)})


def _mse(out_dir, g):
    n = 1001
    x, y = torch.randn(n, generator=g), torch.randn(n, generator=g)
    dloss = torch.tensor([0.7], dtype=torch.float32)
    xd = _d(x)
    loss = Fn.mse_loss(xd, y.double())
    (loss * dloss.double()[0]).backward()
    save(os.path.join(out_dir, "misc_mse.safetensors"),
         {"x": x, "y": y, "dloss": dloss, "loss": loss.detach().reshape(1), "dx": xd.grad}, {"n": n})


def _clip(out_dir, g):
    B, D = 6, 10
    img = torch.randn(B, D, generator=g) * 3.0
    txt = img + 5.0 * torch.randn(B, D, generator=g)  # matched pairs correlate: accuracy is neither 0 nor B
    ls = torch.tensor([math.log(1 / 0.07)], dtype=torch.float32)
    dloss = torch.tensor([1.3], dtype=torch.float32)
    i, t, s = _d(img), _d(txt), _d(ls)
    L = s.exp() * Fn.normalize(i, dim=-1) @ Fn.normalize(t, dim=-1).T
    labels = torch.arange(B)
    loss = (Fn.cross_entropy(L, labels) + Fn.cross_entropy(L.T, labels)) / 2
    (loss * dloss.double()[0]).backward()
    correct = torch.tensor([(L.argmax(1) == labels).sum().item(), (L.argmax(0) == labels).sum().item()],
                           dtype=torch.int32)
    save(os.path.join(out_dir, "misc_clip.safetensors"),
         {"img": img, "txt": txt, "logit_scale": ls, "dloss": dloss, "loss": loss.detach().reshape(1),
          "dimg": i.grad, "dtxt": t.grad, "dlogit_scale": s.grad, "correct": correct}, {"B": B, "D": D})


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(20240611)
    _linear(out_dir, g)
    _embedding(out_dir, g)
    _shape(out_dir, g)
    _timestep_file(out_dir)
    _mse(out_dir, g)
    _clip(out_dir, g)


if __name__ == "__main__":
    import sys
    generate(sys.argv[1] if len(sys.argv) > 1 else "reference")
