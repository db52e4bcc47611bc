"""Parity data for the C CLIP towers (tests/test_clip.c), from clip_ref.py:

- clip_<case>_model / clip_<case>: a checkpoint (F32, mav.kind/mav.config) with *random*
  weights and a file with tokens, images, the outputs text_emb, text_tokens, image_emb and
  every parameter gradient (`grad.<name>`) for loss = Σ text_emb·d_text_emb +
  Σ text_tokens·d_text_tokens + Σ image_emb·d_image_emb, computed in float64 from the f32 values;
- clip_block: one generic pre-LN block (the prior's names, exact GELU, causal + key mask);
- clip_vitb32_model / clip_vitb32: ViT-B/32's exact names and shapes, random, F16, *no*
  mav.config but OpenAI's integer scalars (shape inference is exercised), and the float64
  outputs for one caption and one image;
- clip_preprocess: images [H, W, 3] and CLIP's preprocessing of each (float64).
"""
import contextlib
import json
import math
import os

import numpy as np
import torch

import clip_ref
import st_io

CASES = {
    # name: (config, B_text, B_image)
    "tiny": (clip_ref.NAMED["tiny"], 3, 2),
    # exact GELU, one block per tower, 1 vision head of 32, text head_dim 8, 3×3 patches of 5
    "gelu": (dict(embed_dim=7, image_resolution=15, vision_layers=1, vision_width=32, vision_patch_size=5,
                  vision_heads=1, context_length=6, vocab_size=13, transformer_width=32, transformer_heads=4,
                  transformer_layers=1, activation="gelu"), 1, 1),
}


def init_rule(name, shape):
    """(offset, std) of the random value of each tensor: LayerNorm gains 1 ± 0.2, other 1-D
    tensors 0.1·N(0, 1), matrices N(0, 1/fan_in) (x @ P projections: fan_in = rows), embeddings
    0.5·N(0, 1). Keeps activations O(1) through the stack without SPEC's zero/identity inits."""
    if name.startswith("ln") or ".ln" in name:
        return (1.0, 0.2) if name.endswith("weight") else (0.0, 0.1)
    if name.endswith("proj") or name == "text_projection":  # [in, out], used as x @ P
        return 0.0, shape[0] ** -0.5
    if "embedding" in name:
        return 0.0, 0.5
    if len(shape) >= 2:
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        return 0.0, fan_in ** -0.5
    return 0.0, 0.1


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "logit_scale":
                off, std = init_rule(name, list(p.shape))
                p.copy_(off + std * torch.randn(p.shape, generator=gen))


@contextlib.contextmanager
def no_default_init():
    """Skip nn's default initialisation while building a large model whose every parameter is
    overwritten afterwards (ViT-B/32: seconds of kaiming/xavier draws otherwise)."""
    names = ["kaiming_uniform_", "uniform_", "xavier_uniform_", "constant_", "normal_", "zeros_", "ones_"]
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, lambda t, *a, **k: t)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def make_tokens(B, ctx, vocab, gen):
    """Rows like the tokenizer's: ids < vocab−1, then EOT (= vocab−1, the highest id), then 0s.
    EOT positions cover the first position after SOT, the middle and the last position."""
    t = torch.randint(1, vocab - 1, (B, ctx), generator=gen)
    for b in range(B):
        e = [ctx - 1, 1, ctx // 2][b % 3]
        t[b, e] = vocab - 1
        t[b, e + 1:] = 0
    return t.to(torch.int32)


def run_case(model, tokens, image, gen):
    """float64 forward + backward; returns the outputs, douts and gradients."""
    model = model.double()
    temb, ttok = model.encode_text(tokens.long())
    iemb = model.encode_image(image.double())
    d = {"d_text_emb": torch.randn(temb.shape, generator=gen), "d_text_tokens": torch.randn(ttok.shape, generator=gen),
         "d_image_emb": torch.randn(iemb.shape, generator=gen)}
    loss = (temb * d["d_text_emb"].double()).sum() + (ttok * d["d_text_tokens"].double()).sum() + \
        (iemb * d["d_image_emb"].double()).sum()
    loss.backward()
    out = dict(d)
    out.update({"text_emb": temb.detach(), "text_tokens": ttok.detach(), "image_emb": iemb.detach()})
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad if p.grad is not None else torch.zeros_like(p)
    return out


def gen_parity(out):
    for case, (cfg, Bt, Bi) in CASES.items():
        gen = torch.Generator().manual_seed(2000 + len(case))
        model = clip_ref.CLIP(cfg)
        randomize(model, gen)
        sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
        st_io.save(os.path.join(out, f"clip_{case}_model.safetensors"), sd,
                   {"mav.kind": "clip", "mav.config": json.dumps(cfg)})
        tokens = make_tokens(Bt, cfg["context_length"], cfg["vocab_size"], gen)
        R = cfg["image_resolution"]
        image = torch.randn(Bi, 3, R, R, generator=gen)
        data = {"tokens": tokens, "image": image}
        data.update(run_case(model, tokens, image, gen))
        st_io.save(os.path.join(out, f"clip_{case}.safetensors"), data)


def gen_block(out):
    gen = torch.Generator().manual_seed(77)
    S, N, C, heads = 3, 7, 24, 3
    blk = clip_ref.Block(C, heads, "gelu", causal=True)
    with torch.no_grad():
        for name, p in blk.named_parameters():
            if name.startswith("ln") and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    x = torch.randn(S, N, C, generator=gen)
    # padding keys: sequence 0 all visible, 1 masks its last three, 2 masks positions 2 and 5
    mask = torch.ones(S, N, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 2] = mask[2, 5] = False
    data = {"x": x, "mask": mask.to(torch.uint8)}
    data.update({"param." + k: v.float().contiguous() for k, v in blk.state_dict().items()})
    blk = blk.double()
    xd = x.double().requires_grad_(True)
    y = blk(xd, mask)
    dout = torch.randn(y.shape, generator=gen)
    (y * dout.double()).sum().backward()
    data.update({"out": y.detach(), "dout": dout, "grad.x": xd.grad})
    for name, p in blk.named_parameters():
        data["grad." + name] = p.grad
    st_io.save(os.path.join(out, "clip_block.safetensors"), data)


def gen_vitb32(out):
    """ViT-B/32 shapes and names, random weights stored as F16 without mav metadata."""
    gen = torch.Generator().manual_seed(3232)
    rng = np.random.default_rng(3232)  # numpy: ~20x faster than torch.randn for 151M values
    cfg = clip_ref.NAMED["vit-b-32"]
    with no_default_init():
        model = clip_ref.CLIP(cfg)
    sd = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            off, std = (math.log(1 / 0.07), 0.0) if name == "logit_scale" else init_rule(name, list(p.shape))
            v = rng.standard_normal(size=tuple(p.shape), dtype=np.float32) * np.float32(std) + np.float32(off)
            sd[name] = torch.from_numpy(np.asarray(v)).half()
    assert clip_ref.build_config(sd) == cfg
    sd["input_resolution"] = torch.tensor(224)
    sd["context_length"] = torch.tensor(77)
    sd["vocab_size"] = torch.tensor(49408)
    st_io.save(os.path.join(out, "clip_vitb32_model.safetensors"), sd)
    # the same weights (the f16 values) in float64
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.data = sd[name].double()
        tokens = torch.zeros(1, 77, dtype=torch.int32)
        tokens[0, 0] = 49406
        tokens[0, 1:13] = torch.randint(1, 49406, (12,), generator=gen).to(torch.int32)
        tokens[0, 13] = 49407
        image = torch.randn(1, 3, 224, 224, generator=gen)
        temb, ttok = model.encode_text(tokens.long())
        iemb = model.encode_image(image.double())
    st_io.save(os.path.join(out, "clip_vitb32.safetensors"),
               {"tokens": tokens, "image": image, "text_emb": temb, "text_tokens": ttok, "image_emb": iemb})


def gen_preprocess(out):
    gen = torch.Generator().manual_seed(5)
    data = {}
    # (H, W, R): downscale both ways with odd crops, upscale, short side already R, portrait
    for i, (H, W, R) in enumerate([(37, 53, 16), (7, 9, 16), (16, 23, 16), (50, 21, 12), (224, 300, 224)]):
        img = torch.rand(H, W, 3, generator=gen)
        data[f"img{i}"] = img
        data[f"out{i}"] = clip_ref.preprocess(img.double(), R)
    st_io.save(os.path.join(out, "clip_preprocess.safetensors"), data)


def generate(out):
    gen_parity(out)
    gen_block(out)
    gen_preprocess(out)
    gen_vitb32(out)
