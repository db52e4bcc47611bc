#!/usr/bin/env python3
"""Writes every PyTorch reference file the C tests compare against.

Usage: gen_all.py OUTDIR — runs generate(outdir) of every module in this folder whose name
starts with `ops_`, `net_` or `ref_` (one module per op family / network). Each writes
OUTDIR/<name>.safetensors with its inputs, outputs and gradients. Deterministic: every module
seeds torch itself. Run by CTest as the `reference_gen` fixture with Debian's python3-torch.
"""
import importlib
import os
import sys
import time

import torch


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    mods = sorted(f[:-3] for f in os.listdir(here)
                  if f.endswith(".py") and f.split("_")[0] in ("ops", "net", "ref"))
    for m in mods:
        t0 = time.time()
        importlib.import_module(m).generate(out)
        print(f"reference {m}: {time.time() - t0:.1f} s", flush=True)
    print(f"{len(mods)} reference modules written to {out}")


if __name__ == "__main__":
    main()
