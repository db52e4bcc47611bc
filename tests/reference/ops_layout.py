"""ResBlock modulation (SPEC §3): out = n·(1 + scale) + shift with [scale | shift] = ss [B, 2C],
n [B, F, C, P] (frames-major). float64 from f32 inputs; loss = sum(out · dout)."""
import os

import torch

import st_io


def generate(out):
    g = torch.Generator().manual_seed(77)
    B, F, C, P = 2, 3, 5, 11
    n = torch.randn(B, F, C, P, generator=g)
    ss = torch.randn(B, 2 * C, generator=g)
    dout = torch.randn(B, F, C, P, generator=g)
    nd = n.double().requires_grad_(True)
    sd = ss.double().requires_grad_(True)
    scale, shift = sd[:, :C], sd[:, C:]
    o = nd * (1 + scale[:, None, :, None]) + shift[:, None, :, None]
    (o * dout.double()).sum().backward()
    st_io.save(os.path.join(out, "layout_modulate.safetensors"),
               {"n": n, "ss": ss, "dout": dout, "out": o.detach(), "dn": nd.grad, "dss": sd.grad})
