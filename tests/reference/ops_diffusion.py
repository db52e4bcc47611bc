"""Reference values for src/diffusion (SPEC §6): noise schedules, respacing, the forward
process and training targets, and Imagen's dynamic thresholding.

Schedules use ADM's formulas verbatim (improved-diffusion gaussian_diffusion.py:
get_named_beta_schedule, betas_for_alpha_bar, np.cumprod) in float64. Respacing follows the
rule documented in docs/DIFFUSION.md, computed here with exact fractions. Tensor math is
float64 from the float32 inputs the C side also receives.
"""
import math
import os
from fractions import Fraction

import numpy as np
import torch

from st_io import save


def adm_betas(kind, T):
    if kind == "linear":
        scale = 1000 / T
        return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)
    if kind == "cosine":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=np.float64)
    raise ValueError(kind)


def respace(n, T):
    """Sampling order, strictly decreasing: round((T-1)(n-1-k)/(n-1)), ties to even
    (Fraction.__round__ is exact round-half-even)."""
    if n == 1:
        return [T - 1]
    out = []
    for k in range(n):
        out.append(round(Fraction((T - 1) * (n - 1 - k), n - 1)))
    return out


# (T, n) pairs the C test compares: SPEC T with the usual counts, n = T, n = 1, n = 2, and
# counts whose exact values hit .5 ties in both directions (1000,3: 499.5 → 500;
# 1000,7: 166.5 → 166; 8,3: 3.5 → 4; 6,3: 2.5 → 2; 12,5: 5.5 → 6).
RESPACE_CASES = [(1000, 1), (1000, 2), (1000, 3), (1000, 7), (1000, 25), (1000, 50), (1000, 250),
                 (1000, 999), (1000, 1000), (37, 5), (37, 37), (10, 4), (8, 3), (4, 3), (6, 3), (12, 5)]


def generate(outdir):
    torch.manual_seed(7)
    t = {}
    for kind in ("linear", "cosine"):
        for T in (1000, 37):
            b = adm_betas(kind, T)
            t[f"{kind}_T{T}.beta"] = torch.from_numpy(b)
            t[f"{kind}_T{T}.alpha_bar"] = torch.from_numpy(np.cumprod(1.0 - b, axis=0))
    for T, n in RESPACE_CASES:
        t[f"respace_T{T}_n{n}"] = torch.tensor(respace(n, T), dtype=torch.float64)

    # forward process and targets, cosine T = 1000, B = 3 samples of 17 values
    ab = torch.from_numpy(np.cumprod(1.0 - adm_betas("cosine", 1000), axis=0))
    steps = torch.tensor([0, 517, 999])
    x0 = torch.randn(3, 17).clamp(-1, 1)
    eps = torch.randn(3, 17)
    a = ab[steps].sqrt()[:, None]
    s = (1 - ab[steps]).sqrt()[:, None]
    t["q.t"] = steps.double()
    t["q.x0"] = x0
    t["q.eps"] = eps
    t["q.xt"] = a * x0.double() + s * eps.double()
    t["q.v"] = a * eps.double() - s * x0.double()

    # dynamic thresholding (Imagen): 3 samples of 257 values: one inside [-1, 1] (s = 1),
    # two with outliers; two percentiles (0.995 interpolates, 1.0 is the max)
    x = torch.randn(3, 257)
    x[0] = x[0].clamp(-0.9, 0.9)
    x[1] *= 3.0
    x[2, :5] = torch.tensor([40.0, -35.0, 12.0, 12.0, -12.0])
    t["dyn.x0"] = x
    for p, name in ((0.995, "p995"), (1.0, "p1000"), (0.6, "p600")):
        q = torch.quantile(x.double().abs(), p, dim=1)
        sc = torch.clamp(q, min=1.0)[:, None]
        t[f"dyn.q_{name}"] = q
        t[f"dyn.out_{name}"] = torch.maximum(torch.minimum(x.double(), sc), -sc) / sc
    save(os.path.join(outdir, "diffusion.safetensors"), t)


if __name__ == "__main__":
    import sys
    generate(sys.argv[1] if len(sys.argv) > 1 else ".")
