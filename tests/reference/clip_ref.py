"""PyTorch reference of CLIP, written from SPEC §4 and the architecture of OpenAI's
clip/model.py (ViT variant), not from mav's C code.

Module names reproduce OpenAI's tensor names, so `state_dict()` keys are exactly the
checkpoint names. Attention is torch's nn.MultiheadAttention (in_proj_weight / in_proj_bias /
out_proj), sequence-first as in OpenAI's code. Also: a generic pre-LN block with explicit
attention math (masks, other names) for the transformer-layer test, CLIP's preprocessing
with torch's antialiased bicubic, and OpenAI's build_model shape inference.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

NAMED = {
    "vit-b-32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     vision_heads=12, context_length=77, vocab_size=49408, transformer_width=512,
                     transformer_heads=8, transformer_layers=12, activation="quick_gelu"),
    "tiny": dict(embed_dim=24, image_resolution=20, vision_layers=2, vision_width=48, vision_patch_size=4,
                 vision_heads=3, context_length=9, vocab_size=61, transformer_width=40, transformer_heads=2,
                 transformer_layers=2, activation="quick_gelu"),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def act_module(name):
    return QuickGELU() if name == "quick_gelu" else nn.GELU()  # nn.GELU: exact erf


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, act, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * 4)),
            ("gelu", act_module(act)),
            ("c_proj", nn.Linear(d_model * 4, d_model)),
        ]))
        self.ln_2 = nn.LayerNorm(d_model, eps=1e-5)
        self.attn_mask = attn_mask

    def attention(self, x):
        m = self.attn_mask.to(dtype=x.dtype) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=m)[0]

    def forward(self, x):  # x [L, B, C]
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, act, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, act, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, act):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5)
        self.transformer = Transformer(width, layers, heads, act)
        self.ln_post = nn.LayerNorm(width, eps=1e-5)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):  # [B, 3, R, R]
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, grid², width]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


class CLIP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg
        self.context_length = c["context_length"]
        self.visual = VisionTransformer(c["image_resolution"], c["vision_patch_size"], c["vision_width"],
                                        c["vision_layers"], c["vision_heads"], c["embed_dim"], c["activation"])
        mask = torch.empty(c["context_length"], c["context_length"]).fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(c["transformer_width"], c["transformer_layers"], c["transformer_heads"],
                                       c["activation"], attn_mask=mask)
        self.token_embedding = nn.Embedding(c["vocab_size"], c["transformer_width"])
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], c["transformer_width"]))
        self.ln_final = nn.LayerNorm(c["transformer_width"], eps=1e-5)
        self.text_projection = nn.Parameter(torch.empty(c["transformer_width"], c["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        """Returns (text_emb [B, embed], text_tokens [B, ctx, width])."""
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        emb = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return emb, x


def build_config(sd):
    """OpenAI's build_model shape inference (ViT branch), for a state dict."""
    vision_width = sd["visual.conv1.weight"].shape[0]
    vision_layers = len([k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    width = sd["ln_final.weight"].shape[0]
    return dict(embed_dim=sd["text_projection"].shape[1], image_resolution=patch * grid, vision_layers=vision_layers,
                vision_width=vision_width, vision_patch_size=patch, vision_heads=vision_width // 64,
                context_length=sd["positional_embedding"].shape[0], vocab_size=sd["token_embedding.weight"].shape[0],
                transformer_width=width, transformer_heads=width // 64,
                transformer_layers=len(set(k.split(".")[2] for k in sd if k.startswith("transformer.resblocks"))),
                activation="quick_gelu")


# ---- a generic pre-LN block, explicit math (for the layer test: other names, masks) ----------

class Block(nn.Module):
    """x1 = x + proj(MHA(ln1(x))), out = x1 + mlp.proj(act(mlp.fc(ln2(x1)))); the SPEC §5 names."""

    def __init__(self, width, heads, act, causal):
        super().__init__()
        self.heads, self.causal, self.act = heads, causal, act
        self.ln1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(width, 3 * width)
        self.attn.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.fc = nn.Linear(width, 4 * width)
        self.mlp.proj = nn.Linear(4 * width, width)

    def forward(self, x, key_mask=None):  # x [S, N, C]; key_mask [S, N] bool (True = visible)
        S, N, C = x.shape
        hd = C // self.heads
        q, k, v = self.attn.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.reshape(S, N, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        allowed = torch.ones(S, 1, N, N, dtype=torch.bool)
        if self.causal:
            allowed = allowed & torch.ones(N, N, dtype=torch.bool).tril()
        if key_mask is not None:
            allowed = allowed & key_mask[:, None, None, :]
        s = s.masked_fill(~allowed, float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(S, N, C)
        x1 = x + self.attn.proj(o)
        h = self.mlp.fc(self.ln2(x1))
        a = F.gelu(h) if self.act == "gelu" else h * torch.sigmoid(1.702 * h)
        return x1 + self.mlp.proj(a)


# ---- preprocessing ---------------------------------------------------------------------------

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(img, R):
    """img [H, W, 3] in [0, 1] -> [3, R, R]: torchvision Resize(R) sizes, torch's antialiased
    bicubic (a = -0.5, PIL's filter), CenterCrop(R), Normalize(mean, std)."""
    H, W, _ = img.shape
    if W <= H:
        rw, rh = R, int(R * H / W)
    else:
        rh, rw = R, int(R * W / H)
    x = img.permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)[0]
    top, left = int(round((rh - R) / 2.0)), int(round((rw - R) / 2.0))
    x = x[:, top:top + R, left:left + R]
    mean = torch.tensor(MEAN, dtype=x.dtype)[:, None, None]
    std = torch.tensor(STD, dtype=x.dtype)[:, None, None]
    return (x - mean) / std
