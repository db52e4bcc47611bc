"""Parity data for the C prior (tests/test_prior.c, tests/test_cli_prior.c), from prior_ref.py:
for each case a checkpoint (F32, mav.kind = "prior", mav.config) with *random* weights and a
file with the inputs (text_tokens, text_emb, x, t, mask as U8), the output x0 and every
parameter gradient (`grad.<name>`) for loss = Σ x0 · d_x0, computed in float64 from the f32
values."""
import json
import os

import torch

import prior_ref
import st_io

CASES = {
    # name: (config, B, EOT positions (mask = 1 up to and including it; None = all real))
    "tiny": (prior_ref.NAMED["tiny"], 3, [None, 3, 1]),
    # one block, 2 heads of 10, L = 3; sample 1's mask also hides SOT, which stays a key
    "odd": (dict(width=20, layers=1, heads=2, text_width=7, emb_dim=5, text_ctx=3), 2, [1, "nosot"]),
}


def randomize(model, gen):
    """LayerNorm gains 1 ± 0.2; other 1-D tensors 0.1·N(0, 1); linear weights N(0, 1/fan_in);
    pos and query 0.5·N(0, 1): activations O(1) through the stack."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if (".ln" in name or name.startswith("ln")) and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name in ("pos", "query"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def generate(out):
    for case, (cfg, B, eots) in CASES.items():
        gen = torch.Generator().manual_seed(4100 + len(case))
        model = prior_ref.Prior(cfg)
        randomize(model, gen)
        sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
        st_io.save(os.path.join(out, f"prior_{case}_model.safetensors"), sd,
                   {"mav.kind": "prior", "mav.config": json.dumps(cfg)})
        L, E = cfg["text_ctx"], cfg["emb_dim"]
        tt = torch.randn(B, L, cfg["text_width"], generator=gen)
        te = torch.randn(B, E, generator=gen)
        x = torch.randn(B, E, generator=gen)
        t = torch.tensor([999.0, 0.0, 417.25, 3.5][:B])
        mask = torch.ones(B, L, dtype=torch.uint8)
        for b, e in enumerate(eots):
            if e == "nosot":
                mask[b, 0] = 0
            elif e is not None:
                mask[b, e + 1:] = 0
        model = model.double()
        x0 = model(tt.double(), te.double(), x.double(), t, mask)
        d_x0 = torch.randn(x0.shape, generator=gen)
        (x0 * d_x0.double()).sum().backward()
        data = {"text_tokens": tt, "text_emb": te, "x": x, "t": t, "mask": mask, "x0": x0.detach(), "d_x0": d_x0}
        for name, p in model.named_parameters():
            data["grad." + name] = p.grad if p.grad is not None else torch.zeros_like(p)
        st_io.save(os.path.join(out, f"prior_{case}.safetensors"), data)
