"""PyTorch references for src/ops/{groupnorm,layernorm}.c (tests/test_groupnorm.c, test_layernorm.c).

Each case `<file>.safetensors` holds inputs x, weight, bias, dout (F32) and, computed in float64
from those same f32 values with loss = sum(out * dout): out, mean, rstd, dinp, dweight, dbias
(F64). Metadata carries the sizes and eps.
GroupNorm runs on [N, C, P] (N = B·F frames of the frames-major layout, P = H·W): per-frame
statistics, as SPEC §2 asks.
"""
import os

import torch
import torch.nn.functional as F

import st_io

EPS = 1e-5

# name: (N, C, P, G, offset, scale)
GN_CASES = {
    "groupnorm_spec": (3, 64, 35, 32, 0.5, 2.0),      # SPEC groups (32), 3 frames, 5×7 pixels
    "groupnorm_g1": (2, 5, 13, 1, 0.0, 1.0),          # one group
    "groupnorm_mean": (2, 12, 9, 4, 1000.0, 1.0),     # |mean| ≫ std: naive variance fails here
}
# name: (R, C, offset, scale)
LN_CASES = {
    "layernorm_a": (37, 70, 0.3, 1.5),
    "layernorm_mean": (5, 33, -1000.0, 1.0),
}


def _run(x, w, b, dout, fwd, stat_shape):
    xd = x.double().requires_grad_(True)
    wd = w.double().requires_grad_(True)
    bd = b.double().requires_grad_(True)
    out = fwd(xd, wd, bd)
    (out * dout.double()).sum().backward()
    xs = x.double().reshape(stat_shape)
    mean = xs.mean(-1)
    rstd = 1.0 / torch.sqrt(xs.var(-1, unbiased=False) + EPS)
    return {"x": x, "weight": w, "bias": b, "dout": dout, "out": out.detach(), "mean": mean, "rstd": rstd,
            "dinp": xd.grad, "dweight": wd.grad, "dbias": bd.grad}


def generate(outdir):
    g = torch.Generator().manual_seed(4321)
    for name, (N, C, P, G, off, sc) in GN_CASES.items():
        x = (off + sc * torch.randn(N, C, P, generator=g)).float()
        w = (1.0 + 0.5 * torch.randn(C, generator=g)).float()
        b = (0.5 * torch.randn(C, generator=g)).float()
        dout = torch.randn(N, C, P, generator=g).float()
        t = _run(x, w, b, dout, lambda xd, wd, bd: F.group_norm(xd, G, wd, bd, EPS), (N, G, -1))
        st_io.save(os.path.join(outdir, name + ".safetensors"), t, {"N": N, "C": C, "P": P, "G": G, "eps": EPS})
    for name, (R, C, off, sc) in LN_CASES.items():
        x = (off + sc * torch.randn(R, C, generator=g)).float()
        w = (1.0 + 0.5 * torch.randn(C, generator=g)).float()
        b = (0.5 * torch.randn(C, generator=g)).float()
        dout = torch.randn(R, C, generator=g).float()
        t = _run(x, w, b, dout, lambda xd, wd, bd: F.layer_norm(xd, (C,), wd, bd, EPS), (R, C))
        st_io.save(os.path.join(outdir, name + ".safetensors"), t, {"R": R, "C": C, "eps": EPS})


if __name__ == "__main__":
    import sys
    os.makedirs(sys.argv[1], exist_ok=True)
    generate(sys.argv[1])
