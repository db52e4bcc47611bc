"""PyTorch references for src/optim (tests/test_optim.c).

optim_adamw.safetensors: torch.optim.AdamW over STEPS steps with a changing learning rate on
a few tensors, one of them 1-D (its own param group with weight_decay 0: mav_adamw_step decays
only tensors with ndim >= 2). The optimiser runs in float64 from float32 inputs, so the C
float32 result is compared against the exact answer. Every hyper-parameter and lr is a float32
value (stored as F64), so C and PyTorch use the very same numbers (0.999 and float32(0.999)
differ by 1.3e-8, which changes 1 - beta2 by 1.3e-5 relative: far above the tolerance).
  hparams [4] F64: beta1, beta2, eps, weight_decay
  lr [STEPS] F64
  <name>.init F32, <name>.grad.<s> F32 (s = 1..STEPS)
  <name>.p.<s>, <name>.m.<s>, <name>.v.<s> F64: parameter and both moments after step s

optim_clip.safetensors: torch.nn.utils.clip_grad_norm_ in float64 on float32 grads, for a
max_norm below the norm (clips) and above it (does nothing).
  <name>.grad F32; max_norm.<c> F64 [1]; norm.<c> F64 [1]; <name>.clipped.<c> F64, c in {above, below}
  ("above": the norm is above max_norm).
"""
import os

import numpy as np
import torch

from st_io import save

STEPS = 5
# (name, shape, grad scale). "small" has gradients ~1e-4, comparable with eps = 1e-4, so eps
# changes the update by ~50% there and a misplaced eps cannot pass.
ADAMW_TENSORS = [
    ("w", (7, 5), 1.0),
    ("conv", (3, 2, 3, 3), 0.5),
    ("b", (13,), 2.0),
    ("small", (1, 19), 1e-4),
]
CLIP_TENSORS = [("a", (5, 3)), ("b", (17,)), ("c", (2, 3, 4))]


def f32(x):
    return float(np.float32(x))


def gen_adamw(outdir):
    g = torch.Generator().manual_seed(1234)
    # beta2 close to 1 makes the bias correction 1 - beta2^t vary strongly over the 5 steps
    # (t = 1: 1e-3, t = 5: 5e-3), so a wrong step count or a missing correction is caught.
    beta1, beta2, eps, wd = f32(0.9), f32(0.999), f32(1e-4), f32(0.1)
    lrs = [f32(x) for x in (1e-2, 2e-2, 5e-3, 1.5e-2, 3e-2)]
    out = {"hparams": torch.tensor([beta1, beta2, eps, wd], dtype=torch.float64),
           "lr": torch.tensor(lrs, dtype=torch.float64)}
    params, decay, no_decay = {}, [], []
    for name, shape, _ in ADAMW_TENSORS:
        init = torch.randn(shape, generator=g, dtype=torch.float32)
        out[f"{name}.init"] = init
        p = torch.nn.Parameter(init.double())
        params[name] = p
        (decay if len(shape) >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lrs[0], betas=(beta1, beta2), eps=eps)
    for s in range(1, STEPS + 1):
        for name, shape, scale in ADAMW_TENSORS:
            gr = (torch.randn(shape, generator=g, dtype=torch.float32) * scale).float()
            out[f"{name}.grad.{s}"] = gr
            params[name].grad = gr.double()
        for group in opt.param_groups:
            group["lr"] = lrs[s - 1]
        opt.step()
        for name, _, _ in ADAMW_TENSORS:
            p = params[name]
            st = opt.state[p]
            out[f"{name}.p.{s}"] = p.detach().clone()
            out[f"{name}.m.{s}"] = st["exp_avg"].clone()
            out[f"{name}.v.{s}"] = st["exp_avg_sq"].clone()
    save(os.path.join(outdir, "optim_adamw.safetensors"), out)


def gen_clip(outdir):
    g = torch.Generator().manual_seed(99)
    out, grads = {}, {}
    for name, shape in CLIP_TENSORS:
        gr = torch.randn(shape, generator=g, dtype=torch.float32) * 0.7
        out[f"{name}.grad"] = gr
        grads[name] = gr
    norm = torch.sqrt(sum((gr.double() ** 2).sum() for gr in grads.values())).item()
    for case, max_norm in (("above", 0.37 * norm), ("below", 1.9 * norm)):
        ps = []
        for name, _ in CLIP_TENSORS:
            p = torch.nn.Parameter(torch.zeros_like(grads[name], dtype=torch.float64))
            p.grad = grads[name].double()
            ps.append(p)
        n = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        out[f"max_norm.{case}"] = torch.tensor([max_norm], dtype=torch.float64)
        out[f"norm.{case}"] = torch.tensor([float(n)], dtype=torch.float64)
        for (name, _), p in zip(CLIP_TENSORS, ps):
            out[f"{name}.clipped.{case}"] = p.grad.clone()
    save(os.path.join(outdir, "optim_clip.safetensors"), out)


def generate(outdir):
    gen_adamw(outdir)
    gen_clip(outdir)
