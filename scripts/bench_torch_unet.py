#!/usr/bin/python3
"""PyTorch side of scripts/bench-vs-pytorch: the reference U-Net (tests/reference/unet_ref.py,
written from SPEC §3) at a SPEC §8 config's benchmark input, timed the way `mav bench unet`
times mav.

  sampling step: model.eval(), torch.no_grad(), one forward at the sampling batch
                 (random x, t, e; fps / aug filled)
  training step: the same work as mav_unet_train_step: t ~ U{0..999}, eps ~ N(0, I),
                 x_t = q_sample(x0, eps, t) (cosine schedule), CFG drop of e (p = 0.1),
                 forward, MSE against eps, backward, clip_grad_norm_(1.0), AdamW step
                 (torch.optim.AdamW, lr 1e-4, PyTorch's defaults = mav's: betas (0.9, 0.999),
                 eps 1e-8, weight decay 0.01); gradients dropped with zero_grad(set_to_none=True),
                 PyTorch's fastest setting

Each mode runs in its own forked child so that its peak RSS (ru_maxrss) is its own; inside the
child: one warm-up step, then --runs timed steps (time.perf_counter), median.

  /usr/bin/python3 scripts/bench_torch_unet.py --config bench-image --threads 2 [--mode both]
                   [--runs 5] [--json]
  /usr/bin/python3 scripts/bench_torch_unet.py --count-flops [--config NAME]

--count-flops counts the forward FLOPs with hooks on the PyTorch modules (every nn.Conv2d,
nn.Conv1d, nn.Linear: 2 * output elements * (in_channels * kernel size | in_features)) and a
wrapper around unet_ref.attention (2 * N * Lq * Lk * C for Q.K^T and again for P.V), i.e. the
convention of src/bench/unet_flops.h counted independently of the C code.
"""
import argparse
import json
import math
import os
import pickle
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import unet_ref  # noqa: E402

# SPEC §8 "input" column: frames, size, batch for training / sampling (tiny: as bench-decoder)
CASES = {
    "tiny": dict(F=4, H=16, W=16, b_train=1, b_sample=2),
    "bench-decoder": dict(F=16, H=64, W=64, b_train=1, b_sample=2),
    "bench-sr": dict(F=16, H=128, W=128, b_train=1, b_sample=2),
    "bench-image": dict(F=1, H=64, W=64, b_train=16, b_sample=32),
}


def cosine_alphas_cumprod(T=1000, s=0.008):
    """SPEC §6 cosine schedule (Nichol & Dhariwal), beta <= 0.999; float64."""
    f = [math.cos(((i / T) + s) / (1 + s) * math.pi / 2) ** 2 for i in range(T + 1)]
    betas = [min(1 - f[i + 1] / f[i], 0.999) for i in range(T)]
    ac, a = [], 1.0
    for b in betas:
        a *= 1 - b
        ac.append(a)
    return torch.tensor(ac, dtype=torch.float64)


def make_inputs(cfg, case, B, gen):
    Fr, H, W = case["F"], case["H"], case["W"]
    inp = dict(
        t=torch.full((B,), 500.0),
        e=torch.randn(B, cfg["emb_dim"], generator=gen) if cfg.get("emb_dim", 0) > 0 else None,
        fps=torch.full((B,), 8.0) if cfg.get("cond_fps") else None,
        aug=torch.full((B,), 0.1) if cfg.get("cond_aug") else None,
    )
    return inp


def measure(name, mode, runs):
    """Build, warm up, time `runs` steps; returns a dict (runs in the child)."""
    cfg, case = unet_ref.NAMED[name], CASES[name]
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(1234)
    model = unet_ref.UNet(cfg)
    Fr, H, W = case["F"], case["H"], case["W"]
    train = mode == "train"
    B = case["b_train"] if train else case["b_sample"]
    inp = make_inputs(cfg, case, B, gen)
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ac = cosine_alphas_cumprod()
        x0 = 0.5 * torch.randn(B, cfg["out_ch"], Fr, H, W, generator=gen)
        cond = (0.5 * torch.randn(B, cfg["in_ch"] - cfg["out_ch"], Fr, H, W, generator=gen)
                if cfg["in_ch"] > cfg["out_ch"] else None)
        state = {"loss": None}

        def step():
            t = torch.randint(0, 1000, (B,), generator=gen)
            eps = torch.randn(x0.shape, generator=gen)
            a = ac[t].to(torch.float32)[:, None, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            x_in = xt if cond is None else torch.cat([xt, cond], dim=1)
            e = inp["e"]
            if e is not None:
                keep = (torch.rand(B, generator=gen) >= 0.1).to(e.dtype)[:, None]
                e = e * keep
            out = model(x_in, t.to(torch.float32), e, inp["fps"], inp["aug"])
            loss = F.mse_loss(out, eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state["loss"] = loss.item()
    else:
        model.eval()
        x = torch.randn(B, cfg["in_ch"], Fr, H, W, generator=gen)
        state = {"loss": None}

        def step():
            with torch.no_grad():
                model(x, inp["t"], inp["e"], inp["fps"], inp["aug"])

    print(f"torch {name} {mode}: B={B} F={Fr} {H}x{W}, {torch.get_num_threads()} threads, warm-up...",
          file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    step()
    print(f"  warm-up {(time.perf_counter() - t0) * 1e3:.1f} ms", file=sys.stderr, flush=True)
    ms = []
    for i in range(runs):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
        print(f"  run {i + 1}/{runs}: {ms[-1]:.1f} ms", file=sys.stderr, flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return dict(batch=B, median_ms=statistics.median(ms), min_ms=min(ms), max_ms=max(ms), runs_ms=ms,
                peak_rss_mb=rss, last_loss=state["loss"])


def run_child(name, mode, runs):
    """measure() in a forked child (its own ru_maxrss); the result comes back pickled."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            data = pickle.dumps(("ok", measure(name, mode, runs)))
        except BaseException as exc:  # report, do not unwind into the parent's code
            data = pickle.dumps(("err", repr(exc)))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise SystemExit(f"bench_torch_unet: {mode} child died (wait status {status}; out of memory?)")
    kind, val = pickle.loads(data)
    if kind != "ok":
        raise SystemExit(f"bench_torch_unet: {mode}: {val}")
    return val


def count_flops(name, B):
    """Forward FLOPs of the reference at batch B, by hooks (see the module docstring)."""
    cfg, case = unet_ref.NAMED[name], CASES[name]
    model = unet_ref.UNet(cfg).eval()
    acc = dict(conv=0, tconv=0, linear=0, attn=0)

    def hook(mod, args, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            acc["conv"] += 2 * out.numel() * k
        elif isinstance(mod, nn.Conv1d):
            acc["tconv"] += 2 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0]
        elif isinstance(mod, nn.Linear):
            acc["linear"] += 2 * out.numel() * mod.in_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
            m.register_forward_hook(hook)
    orig = unet_ref.attention

    def counted(q, k, v, heads):
        N, Lq, C = q.shape
        acc["attn"] += 2 * 2 * N * Lq * k.shape[1] * C  # Q.K^T and P.V over all heads
        return orig(q, k, v, heads)

    unet_ref.attention = counted
    try:
        gen = torch.Generator().manual_seed(0)
        inp = make_inputs(cfg, case, B, gen)
        x = torch.randn(B, cfg["in_ch"], case["F"], case["H"], case["W"], generator=gen)
        with torch.no_grad():
            model(x, inp["t"], inp["e"], inp["fps"], inp["aug"])
    finally:
        unet_ref.attention = orig
    acc["total"] = sum(acc.values())
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, choices=sorted(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", default="both", choices=["sample", "train", "both"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--count-flops", action="store_true")
    a = ap.parse_args()
    if a.count_flops:
        out = {}
        for name in [a.config] if a.config else sorted(CASES):
            c = CASES[name]
            out[name] = dict(forward_sample_batch=count_flops(name, c["b_sample"]),
                             forward_train_batch=count_flops(name, c["b_train"]))
        print(json.dumps(out, indent=2))
        return
    if not a.config:
        ap.error("--config is required")
    if a.runs < 1 or a.threads < 1:
        ap.error("--runs and --threads must be >= 1")
    torch.set_num_threads(a.threads)
    modes = ["sample", "train"] if a.mode == "both" else [a.mode]
    res = {m: run_child(a.config, m, a.runs) for m in modes}
    c = CASES[a.config]
    out = dict(benchmark="unet-torch", config=a.config, threads=a.threads, runs=a.runs, mode=a.mode,
               torch=torch.__version__, params=sum(p.numel() for p in unet_ref.UNet(unet_ref.NAMED[a.config]).parameters()),
               input=c)
    out["sample_ms"] = res["sample"]["median_ms"] if "sample" in res else None
    out["train_ms"] = res["train"]["median_ms"] if "train" in res else None
    out["peak_rss_mb"] = {m: (res[m]["peak_rss_mb"] if m in res else None) for m in ("sample", "train")}
    for m in ("sample", "train"):
        out[m] = res.get(m)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for m in modes:
            r = res[m]
            print(f"{a.config} {m}: batch {r['batch']}, median {r['median_ms']:.1f} ms "
                  f"(min {r['min_ms']:.1f}, max {r['max_ms']:.1f}), peak RSS {r['peak_rss_mb']:.1f} MB")


if __name__ == "__main__":
    main()
