"""PyTorch references for conv2d and the temporal conv (tests/test_conv2d.c, tests/test_tconv.c).

conv2d.safetensors, per case C: C.inp [N, C_in, H, W], C.weight [C_out, C_in, kh, kw], C.bias,
C.dout (F32, the C test's inputs) and C.out, C.dinp, C.dweight, C.dbias (F64, computed in float64
from the same f32 values with torch.nn.functional.conv2d and autograd of loss = sum(out · dout)).
Stride and padding are metadata "C.stride", "C.pad".

tconv.safetensors, per case C: the same names in mav's frames-major layout (inp [B, F, C_in, P],
weight [C_out, C_in, 3], out/dout [B, F, C_out, P]); metadata "C.H", "C.W" (P = H·W). The torch
side is SPEC §3's P3D temporal conv written independently: permute to [B, C, F, H, W] and
conv3d with kernel (3, 1, 1), padding (1, 0, 0).
"""
import os

import torch
import torch.nn.functional as Fn

from st_io import save

# name: (N, C_in, H, W, C_out, k, stride, pad)
CONV2D_CASES = {
    "s1k3": (2, 3, 7, 5, 5, 3, 1, 1),
    "s2k3": (3, 4, 9, 6, 6, 3, 2, 1),   # the U-Net downsample: 3×3 stride 2 pad 1, odd H
    "s1k1": (2, 5, 4, 3, 3, 1, 1, 0),   # 1×1 skip conv (direct GEMM path)
    "s2k4": (1, 2, 8, 7, 3, 4, 2, 2),   # even kernel, pad 2
    "s1k5": (2, 1, 6, 9, 2, 5, 1, 0),   # C_in = 1, no padding
}

# name: (B, F, C_in, C_out, H, W)
TCONV_CASES = {
    "f5": (2, 5, 3, 4, 3, 5),
    "f1": (3, 1, 2, 3, 2, 2),   # one frame: only the middle tap
    "f2": (1, 2, 4, 5, 3, 3),
}


def _grads(loss_fn, inputs):
    """inputs: dict name -> f32 tensor. Returns (out, {name: grad}) computed in float64."""
    d = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    out, loss = loss_fn(d)
    loss.backward()
    return out.detach(), {k: v.grad.detach() for k, v in d.items()}


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(1234)
    tensors, meta = {}, {}
    for name, (N, Ci, H, W, Co, k, st, pad) in CONV2D_CASES.items():
        Ho, Wo = (H + 2 * pad - k) // st + 1, (W + 2 * pad - k) // st + 1
        inp = torch.randn(N, Ci, H, W)
        weight = torch.randn(Co, Ci, k, k) / (Ci * k * k) ** 0.5
        bias = torch.randn(Co)
        dout = torch.randn(N, Co, Ho, Wo)

        def fwd(d):
            out = Fn.conv2d(d["inp"], d["weight"], d["bias"], stride=st, padding=pad)
            return out, (out * dout.double()).sum()

        out, g = _grads(fwd, {"inp": inp, "weight": weight, "bias": bias})
        tensors.update({f"{name}.inp": inp, f"{name}.weight": weight, f"{name}.bias": bias, f"{name}.dout": dout,
                        f"{name}.out": out, f"{name}.dinp": g["inp"], f"{name}.dweight": g["weight"],
                        f"{name}.dbias": g["bias"]})
        meta[f"{name}.stride"], meta[f"{name}.pad"] = st, pad
    save(os.path.join(outdir, "conv2d.safetensors"), tensors, meta)

    tensors, meta = {}, {}
    for name, (B, F, Ci, Co, H, W) in TCONV_CASES.items():
        P = H * W
        inp = torch.randn(B, F, Ci, P)
        weight = torch.randn(Co, Ci, 3) / (3 * Ci) ** 0.5
        bias = torch.randn(Co)
        dout = torch.randn(B, F, Co, P)

        def fwd(d):
            x = d["inp"].reshape(B, F, Ci, H, W).permute(0, 2, 1, 3, 4)           # [B, C_in, F, H, W]
            y = Fn.conv3d(x, d["weight"].reshape(Co, Ci, 3, 1, 1), d["bias"], padding=(1, 0, 0))
            out = y.permute(0, 2, 1, 3, 4).reshape(B, F, Co, P)                    # back to frames-major
            return out, (out * dout.double()).sum()

        out, g = _grads(fwd, {"inp": inp, "weight": weight, "bias": bias})
        tensors.update({f"{name}.inp": inp, f"{name}.weight": weight, f"{name}.bias": bias, f"{name}.dout": dout,
                        f"{name}.out": out, f"{name}.dinp": g["inp"], f"{name}.dweight": g["weight"],
                        f"{name}.dbias": g["bias"]})
        meta[f"{name}.H"], meta[f"{name}.W"] = H, W
    save(os.path.join(outdir, "tconv.safetensors"), tensors, meta)


if __name__ == "__main__":
    import sys
    generate(sys.argv[1] if len(sys.argv) > 1 else ".")
