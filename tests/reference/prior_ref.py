"""PyTorch reference of the DALL-E 2-style prior, written from SPEC §5 (not from mav's C code).

Module names reproduce the SPEC tensor names, so `state_dict()` keys are exactly the checkpoint
names: text_tok_proj, text_emb_proj, time_embed.{0,2}, image_proj, query, pos,
blocks.i.{ln1, attn.qkv, attn.proj, ln2, mlp.fc, mlp.proj}, ln_f, out_proj.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NAMED = {
    "tiny": dict(width=48, layers=2, heads=3, text_width=40, emb_dim=24, text_ctx=9),
    "vit-b-32": dict(width=768, layers=12, heads=12, text_width=512, emb_dim=512, text_ctx=77),
}


def timestep_embedding(t, d):
    """SPEC §2: half = d/2, freq_i = exp(-ln(10000) i / half), cat(cos(t freq), sin(t freq)), in float64."""
    half = d // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freq[None, :]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class Block(nn.Module):
    """Pre-LN block: x1 = x + attn.proj(MHA(ln1(x))); out = x1 + mlp.proj(GELU(mlp.fc(ln2(x1))))."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(d, 3 * d)
        self.attn.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.fc = nn.Linear(d, 4 * d)
        self.mlp.proj = nn.Linear(4 * d, d)

    def forward(self, x, allowed):  # x [B, N, d]; allowed [B, N, N] bool (query, key)
        B, N, d = x.shape
        hd = d // self.heads
        q, k, v = self.attn.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (u.reshape(B, N, self.heads, hd).transpose(1, 2) for u in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~allowed[:, None], float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, N, d)
        x1 = x + self.attn.proj(o)
        return x1 + self.mlp.proj(F.gelu(self.mlp.fc(self.ln2(x1))))  # exact erf GELU


class Prior(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, E, L = cfg["width"], cfg["emb_dim"], cfg["text_ctx"]
        self.cfg = cfg
        self.text_tok_proj = nn.Linear(cfg["text_width"], d)
        self.text_emb_proj = nn.Linear(E, d)
        self.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.image_proj = nn.Linear(E, d)
        self.query = nn.Parameter(0.02 * torch.randn(d))
        self.pos = nn.Parameter(0.02 * torch.randn(L + 4, d))
        self.blocks = nn.ModuleList([Block(d, cfg["heads"]) for _ in range(cfg["layers"])])
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.out_proj = nn.Linear(d, E)

    def forward(self, text_tokens, text_emb, x, t, mask=None):
        """text_tokens [B, L, text_width], text_emb [B, E], x [B, E], t [B], mask [B, L] (1 = real) -> x0 [B, E]."""
        B, L, _ = text_tokens.shape
        d = self.cfg["width"]
        dt = self.pos.dtype
        time = self.time_embed(timestep_embedding(t, d).to(dt))
        seq = torch.cat([self.text_tok_proj(text_tokens), self.text_emb_proj(text_emb)[:, None], time[:, None],
                         self.image_proj(x)[:, None], self.query.expand(B, 1, d)], dim=1) + self.pos
        N = L + 4
        keys = torch.ones(B, N, dtype=torch.bool)
        if mask is not None:
            keys[:, :L] = mask != 0
        keys[:, 0] = True  # SOT is always a key: no attention row is empty
        allowed = torch.ones(N, N, dtype=torch.bool).tril()[None] & keys[:, None, :]
        for blk in self.blocks:
            seq = blk(seq, allowed)
        return self.out_proj(self.ln_f(seq[:, L + 3]))
