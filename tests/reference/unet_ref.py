"""PyTorch reference of the P3D U-Net, written from SPEC §3 (not from mav's C code).

Tensors are logically [B, C, F, H, W] (SPEC §2). Module names reproduce SPEC's tensor names,
so `state_dict()` keys are exactly the checkpoint names. Used by net_unet.py (parity data for
the C tests) and by the performance comparison (issue 8).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, d):
    """SPEC §2: cos first; computed in float64 and rounded to float32."""
    half = d // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = t.to(torch.float64)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(torch.float32)


def mlp_emb(d_in, d):
    return nn.Sequential(nn.Linear(d_in, d), nn.SiLU(), nn.Linear(d, d))


def frames_as_batch(x):  # [B, C, F, H, W] -> [B*F, C, H, W]
    B, C, Fr, H, W = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(B * Fr, C, H, W)


def batch_as_frames(x, B):  # [B*F, C, H, W] -> [B, C, F, H, W]
    BF, C, H, W = x.shape
    return x.reshape(B, BF // B, C, H, W).permute(0, 2, 1, 3, 4)


def group_norm(norm, x):  # statistics per (sample, frame, group)
    B = x.shape[0]
    return batch_as_frames(norm(frames_as_batch(x)), B)


class P3DConv(nn.Module):
    def __init__(self, cin, cout, temporal):
        super().__init__()
        self.spatial = nn.Conv2d(cin, cout, 3, padding=1)
        self.has_temporal = temporal
        if temporal:
            self.temporal = nn.Conv1d(cout, cout, 3, padding=1)
            with torch.no_grad():
                self.temporal.weight.zero_()
                self.temporal.weight[:, :, 1] = torch.eye(cout)
                self.temporal.bias.zero_()

    def forward(self, x):
        B, C, Fr, H, W = x.shape
        h = batch_as_frames(self.spatial(frames_as_batch(x)), B)
        if self.has_temporal:
            C2 = h.shape[1]
            t = h.permute(0, 3, 4, 1, 2).reshape(B * H * W, C2, Fr)
            t = self.temporal(t)
            h = t.reshape(B, H, W, C2, Fr).permute(0, 3, 4, 1, 2)
        return h


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, temporal, dropout):
        super().__init__()
        self.in_norm = nn.GroupNorm(32, cin, eps=1e-5)
        self.in_conv = P3DConv(cin, cout, temporal)
        self.emb_out = nn.Linear(temb, 2 * cout)
        self.out_norm = nn.GroupNorm(32, cout, eps=1e-5)
        self.out_conv = P3DConv(cout, cout, temporal)
        self.dropout = dropout
        with torch.no_grad():
            self.out_conv.spatial.weight.zero_()
            self.out_conv.spatial.bias.zero_()
        if cin != cout:
            self.skip = nn.Conv2d(cin, cout, 1)
        else:
            self.skip = None

    def forward(self, x, temb):
        B = x.shape[0]
        h = self.in_conv(F.silu(group_norm(self.in_norm, x)))
        scale, shift = self.emb_out(F.silu(temb)).chunk(2, dim=1)
        h = group_norm(self.out_norm, h) * (1 + scale[:, :, None, None, None]) + shift[:, :, None, None, None]
        h = self.out_conv(F.dropout(F.silu(h), self.dropout, self.training))
        s = x if self.skip is None else batch_as_frames(self.skip(frames_as_batch(x)), B)
        return s + h


def attention(q, k, v, heads):
    """q [N, Lq, C], k/v [N, Lk, C] -> [N, Lq, C]; head h owns channels [h*hd, (h+1)*hd)."""
    N, Lq, C = q.shape
    hd = C // heads
    qh = q.reshape(N, Lq, heads, hd).transpose(1, 2)
    kh = k.reshape(N, -1, heads, hd).transpose(1, 2)
    vh = v.reshape(N, -1, heads, hd).transpose(1, 2)
    w = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    return (w @ vh).transpose(1, 2).reshape(N, Lq, C)


class AttnBlock(nn.Module):
    def __init__(self, c, head_ch, temb, has_ctx, temporal, max_frames):
        super().__init__()
        self.heads = c // head_ch
        self.norm = nn.GroupNorm(32, c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.ctx_kv = nn.Linear(temb, 2 * c) if has_ctx else None
        self.proj = nn.Linear(c, c)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.has_temporal = temporal
        if temporal:
            self.tnorm = nn.LayerNorm(c, eps=1e-5)
            self.tpos = nn.Parameter(torch.zeros(max_frames, c))
            self.tqkv = nn.Linear(c, 3 * c)
            self.tproj = nn.Linear(c, c)
            nn.init.zeros_(self.tproj.weight)
            nn.init.zeros_(self.tproj.bias)

    def forward(self, x, ctx):
        B, C, Fr, H, W = x.shape
        # spatial: per frame, tokens = pixels
        h = frames_as_batch(group_norm(self.norm, x)).reshape(B * Fr, C, H * W).transpose(1, 2)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        if self.ctx_kv is not None:
            ck, cv = self.ctx_kv(ctx).chunk(2, dim=-1)  # [B, n_ctx, C]
            ck = ck.repeat_interleave(Fr, dim=0)
            cv = cv.repeat_interleave(Fr, dim=0)
            k = torch.cat([ck, k], dim=1)
            v = torch.cat([cv, v], dim=1)
        a = self.proj(attention(q, k, v, self.heads))  # [B*F, HW, C]
        x = x + batch_as_frames(a.transpose(1, 2).reshape(B * Fr, C, H, W), B)
        if self.has_temporal:
            # temporal: per pixel, tokens = frames
            t = x.permute(0, 3, 4, 2, 1).reshape(B * H * W, Fr, C)
            t = self.tnorm(t) + self.tpos[:Fr]
            q, k, v = self.tqkv(t).chunk(3, dim=-1)
            a = self.tproj(attention(q, k, v, self.heads))
            x = x + a.reshape(B, H, W, Fr, C).permute(0, 4, 3, 1, 2)
        return x


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return batch_as_frames(self.op(frames_as_batch(x)), x.shape[0])


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        h = F.interpolate(frames_as_batch(x), scale_factor=2, mode="nearest")
        return batch_as_frames(self.conv(h), x.shape[0])


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch, temb = cfg["ch"], 4 * cfg["ch"]
        temporal = cfg.get("temporal", False)
        emb_dim, n_ctx = cfg.get("emb_dim", 0), cfg.get("n_ctx", 0)
        has_ctx = emb_dim > 0 and n_ctx > 0
        mf, drop, head_ch = cfg.get("max_frames", 0), cfg.get("dropout", 0.0), cfg["head_ch"]
        attn_levels = set(cfg.get("attn_levels", []))
        self.time_embed = mlp_emb(ch, temb)
        if emb_dim > 0:
            self.emb_proj = nn.Linear(emb_dim, temb)
            if n_ctx > 0:
                self.ctx_proj = nn.Linear(emb_dim, n_ctx * temb)
        if cfg.get("cond_fps"):
            self.fps_embed = mlp_emb(ch, temb)
        if cfg.get("cond_aug"):
            self.aug_embed = mlp_emb(ch, temb)
        self.in_conv = P3DConv(cfg["in_ch"], ch, temporal)
        skips, w = [ch], ch
        self.down = nn.ModuleList()
        mult = cfg["ch_mult"]
        for L, m in enumerate(mult):
            lvl = nn.Module()
            lvl.res, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for i in range(cfg["num_res_blocks"]):
                lvl.res.append(ResBlock(w, m * ch, temb, temporal, drop))
                w = m * ch
                if L in attn_levels:
                    lvl.attn.append(AttnBlock(w, head_ch, temb, has_ctx, temporal, mf))
                skips.append(w)
            if L != len(mult) - 1:
                lvl.downsample = Downsample(w)
                skips.append(w)
            self.down.append(lvl)
        self.mid = nn.Module()
        self.mid.res = nn.ModuleList([ResBlock(w, w, temb, temporal, drop), ResBlock(w, w, temb, temporal, drop)])
        self.mid.attn = AttnBlock(w, head_ch, temb, has_ctx, temporal, mf)
        self.up = nn.ModuleList([None] * len(mult))
        for L in reversed(range(len(mult))):
            m = mult[L]
            lvl = nn.Module()
            lvl.res, lvl.attn = nn.ModuleList(), nn.ModuleList()
            for i in range(cfg["num_res_blocks"] + 1):
                lvl.res.append(ResBlock(w + skips.pop(), m * ch, temb, temporal, drop))
                w = m * ch
                if L in attn_levels:
                    lvl.attn.append(AttnBlock(w, head_ch, temb, has_ctx, temporal, mf))
            if L > 0:
                lvl.upsample = Upsample(w)
            self.up[L] = lvl
        self.out_norm = nn.GroupNorm(32, w, eps=1e-5)
        self.out_conv = P3DConv(w, cfg["out_ch"], temporal)
        with torch.no_grad():
            self.out_conv.spatial.weight.zero_()
            self.out_conv.spatial.bias.zero_()

    def forward(self, x, t, e=None, fps=None, aug=None):
        cfg, ch = self.cfg, self.cfg["ch"]
        B = x.shape[0]
        dt = x.dtype
        temb = self.time_embed(timestep_embedding(t, ch).to(dt))
        ctx = None
        if cfg.get("emb_dim", 0) > 0:
            if e is None:
                e = torch.zeros(B, cfg["emb_dim"], dtype=dt)
            temb = temb + self.emb_proj(e)
            if cfg.get("n_ctx", 0) > 0:
                ctx = self.ctx_proj(e).reshape(B, cfg["n_ctx"], 4 * ch)
        if cfg.get("cond_fps"):
            temb = temb + self.fps_embed(timestep_embedding(fps, ch).to(dt))
        if cfg.get("cond_aug"):
            temb = temb + self.aug_embed(timestep_embedding(1000.0 * aug.to(torch.float32), ch).to(dt))
        h = self.in_conv(x)
        hs = [h]
        for L, lvl in enumerate(self.down):
            for i, rb in enumerate(lvl.res):
                h = rb(h, temb)
                if len(lvl.attn):
                    h = lvl.attn[i](h, ctx)
                hs.append(h)
            if hasattr(lvl, "downsample"):
                h = lvl.downsample(h)
                hs.append(h)
        h = self.mid.res[0](h, temb)
        h = self.mid.attn(h, ctx)
        h = self.mid.res[1](h, temb)
        for L in reversed(range(len(self.up))):
            lvl = self.up[L]
            for i, rb in enumerate(lvl.res):
                h = rb(torch.cat([h, hs.pop()], dim=1), temb)
                if len(lvl.attn):
                    h = lvl.attn[i](h, ctx)
            if hasattr(lvl, "upsample"):
                h = lvl.upsample(h)
        return self.out_conv(F.silu(group_norm(self.out_norm, h)))


NAMED = {
    "tiny": dict(in_ch=3, out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_levels=[1], head_ch=16,
                 emb_dim=32, n_ctx=4, cond_fps=True, temporal=True, max_frames=8),
    "bench-decoder": dict(in_ch=3, out_ch=3, ch=64, ch_mult=[1, 2, 3, 4], num_res_blocks=2, attn_levels=[2, 3],
                          head_ch=32, emb_dim=256, n_ctx=4, cond_fps=True, temporal=True, max_frames=16),
    "bench-sr": dict(in_ch=6, out_ch=3, ch=32, ch_mult=[1, 2, 4], num_res_blocks=2, attn_levels=[], head_ch=32,
                     emb_dim=0, n_ctx=0, cond_aug=True, temporal=True, max_frames=16),
    "bench-image": dict(in_ch=3, out_ch=3, ch=64, ch_mult=[1, 2, 3, 4], num_res_blocks=2, attn_levels=[2, 3],
                        head_ch=32, emb_dim=256, n_ctx=4, cond_fps=True, temporal=False, max_frames=0),
}
