"""Parity data for the C P3D U-Net: for each case a checkpoint (F32, mav.kind/mav.config
metadata) with *random* weights — not the SPEC init, whose zero projections would hide most
of the network — and a file with the inputs, the output `eps` and every parameter gradient
(`grad.<name>`) plus `grad.x`, computed in float64 from the f32 values with
loss = sum(eps · dout)."""
import json
import os

import torch

import st_io
import unet_ref

CASES = {
    # name: (config, B, F, H, W)
    "tiny": (unet_ref.NAMED["tiny"], 2, 4, 16, 16),
    # interpolation role: 7 input channels (noisy video, masked video, mask), frame-skip cond,
    # attention at every level with context tokens
    "interp": (dict(in_ch=7, out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_levels=[0, 1], head_ch=16,
                    emb_dim=16, n_ctx=2, cond_fps=True, temporal=True, max_frames=6), 1, 5, 8, 8),
    # SR_l role: 6 channels, aug conditioning, no attention levels (mid.attn only), no embedding
    "sr": (dict(in_ch=6, out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=2, attn_levels=[], head_ch=32,
                emb_dim=0, n_ctx=0, cond_aug=True, temporal=True, max_frames=4), 2, 3, 12, 12),
    # SR_h role: as SR_l but never temporal (frames independent), v-prediction recorded
    "srh": (dict(in_ch=6, out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_levels=[], head_ch=32,
                 emb_dim=0, n_ctx=0, cond_aug=True, temporal=False, max_frames=0, prediction="v"), 1, 2, 8, 8),
}


def full_config(cfg):
    out = dict(in_ch=cfg["in_ch"], out_ch=cfg["out_ch"], ch=cfg["ch"], ch_mult=cfg["ch_mult"],
               num_res_blocks=cfg["num_res_blocks"], attn_levels=cfg.get("attn_levels", []),
               head_ch=cfg["head_ch"], emb_dim=cfg.get("emb_dim", 0), n_ctx=cfg.get("n_ctx", 0),
               cond_fps=bool(cfg.get("cond_fps", False)), cond_aug=bool(cfg.get("cond_aug", False)),
               temporal=bool(cfg.get("temporal", False)), max_frames=cfg.get("max_frames", 0),
               dropout=0.0, prediction=cfg.get("prediction", "eps"))
    return out


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() >= 2 and not name.endswith("tpos"):
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def generate_counts(out):
    """Parameter names and shapes of every SPEC §8 config as the reference builds them
    (metadata "<config>": JSON {name: shape}), and the totals as I64 scalars."""
    meta, counts = {}, {}
    for name, cfg in unet_ref.NAMED.items():
        sd = unet_ref.UNet(cfg).state_dict()
        meta[name] = json.dumps({k: list(v.shape) for k, v in sd.items()})
        counts["count." + name] = torch.tensor(sum(v.numel() for v in sd.values()), dtype=torch.int64)
    st_io.save(os.path.join(out, "unet_param_table.safetensors"), counts, meta)


def generate(out):
    generate_counts(out)
    for case, (cfg, B, Fr, H, W) in CASES.items():
        gen = torch.Generator().manual_seed(1000 + len(case))
        model = unet_ref.UNet(cfg)
        randomize(model, gen)
        sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
        st_io.save(os.path.join(out, f"unet_{case}_model.safetensors"), sd,
                   {"mav.kind": "unet", "mav.config": json.dumps(full_config(cfg))})
        x = torch.randn(B, cfg["in_ch"], Fr, H, W, generator=gen)
        t = torch.tensor([3.0, 500.0][:B] if B > 1 else [731.0])
        inputs = {"x": x, "t": t}
        if cfg.get("emb_dim", 0) > 0:
            inputs["e"] = torch.randn(B, cfg["emb_dim"], generator=gen)
        if cfg.get("cond_fps"):
            inputs["fps"] = torch.tensor([8.0, 24.0][:B] if B > 1 else [5.0])
        if cfg.get("cond_aug"):
            inputs["aug"] = torch.tensor([0.1, 0.55][:B] if B > 1 else [0.25])
        model = model.double()
        xd = x.double().requires_grad_(True)
        args = dict(e=inputs["e"].double() if "e" in inputs else None,
                    fps=inputs.get("fps"), aug=inputs.get("aug"))
        eps = model(xd, t, **args)
        dout = torch.randn(eps.shape, generator=gen)
        (eps * dout.double()).sum().backward()
        data = dict(inputs)
        data["dout"] = dout
        data["eps"] = eps.detach()
        data["grad.x"] = xd.grad
        for name, p in model.named_parameters():
            data["grad." + name] = p.grad
        st_io.save(os.path.join(out, f"unet_{case}.safetensors"), data)
