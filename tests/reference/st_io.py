"""Minimal safetensors reader/writer for the reference scripts (no `safetensors` package
in Debian 12). Format: u64 LE header length, JSON header, raw little-endian bytes."""
import json
import struct

import numpy as np
import torch

_DT = {
    torch.float32: ("F32", np.float32), torch.float64: ("F64", np.float64),
    torch.float16: ("F16", np.float16), torch.int32: ("I32", np.int32),
    torch.int64: ("I64", np.int64), torch.uint8: ("U8", np.uint8), torch.bool: ("BOOL", np.bool_),
    torch.bfloat16: ("BF16", None),
}
_NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64,
       "U8": np.uint8, "BOOL": np.bool_, "I8": np.int8, "I16": np.int16}


def _bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    name, npt = _DT[t.dtype]
    return name, t.numpy().astype(np.dtype(npt).newbyteorder("<")).tobytes()


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (any supported dtype), written in dict order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t)
        dt, b = _bytes(t)
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns (dict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base, out = 8 + n, {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = data[base + b: base + end]
        if e["dtype"] == "BF16":
            arr = np.frombuffer(raw, dtype="<i2").copy()
            out[name] = torch.from_numpy(arr).view(torch.bfloat16).reshape(e["shape"])
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(_NP[e["dtype"]]).newbyteorder("<")).copy()
            out[name] = torch.from_numpy(arr).reshape(e["shape"])
    return out, meta
