"""PyTorch references for src/ops/activation.c (tests/test_activation.c).

Writes OUTDIR/activation.safetensors: x (F32, awkward values incl. 0, tiny, ±30), dout (F32),
and per activation `<name>.out`, `<name>.dinp` (F64): the function evaluated in float64 on the
same f32 inputs, and its input gradient with loss = sum(out * dout).
"""
import os

import torch
import torch.nn.functional as F

import st_io

ACTS = {
    "silu": F.silu,
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def generate(outdir):
    g = torch.Generator().manual_seed(1234)
    special = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 5.0, -5.0,
                            10.0, -10.0, 30.0, -30.0, 87.0, -87.0, 100.0, -100.0], dtype=torch.float32)
    x = torch.cat([special, 3.0 * torch.randn(1001, generator=g), 0.01 * torch.randn(50, generator=g)]).float()
    dout = torch.randn(x.numel(), generator=g).float()
    t = {"x": x, "dout": dout}
    for name, fn in ACTS.items():
        xd = x.double().clone().requires_grad_(True)
        out = fn(xd)
        (out * dout.double()).sum().backward()
        t[name + ".out"] = out.detach()
        t[name + ".dinp"] = xd.grad.detach()
    st_io.save(os.path.join(outdir, "activation.safetensors"), t)


if __name__ == "__main__":
    import sys
    os.makedirs(sys.argv[1], exist_ok=True)
    generate(sys.argv[1])
