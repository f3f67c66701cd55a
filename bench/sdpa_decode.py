#!/usr/bin/env python3
"""Times torch SDPA decode (one query token per sequence) with the FLASH and CUDNN backends.

The dense third-party baseline of `seer bench decode`, run in the same command on the same card.
Shapes: q [B, H, 1, HD], k/v [B, HKV, T, HD], enable_gqa=True, every cached token visible.
K/V are rotated over enough buffers that L2 does not hold them (at least --rotate-mb in all);
timing: CUDA events around --iters calls after --warmup; with --graph, the --iters calls are captured
in one CUDA graph (after --warmup calls on a side stream), replayed once to warm up, and the events
bracket one replay (ms per call = elapsed / iters), as `seer bench decode --graph 1` times our kernels.
Writes JSON:
  {"device": ..., "torch": ..., "graph": true | false,
   "points": [{"batch", "cache", "dtype", "backend", "ms" | "error"}]}
"""
import argparse
import json
import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def parse_list(s, tokens=False):
    out = []
    for x in s.split(","):
        x = x.strip().lower()
        if not x:
            continue
        out.append(int(x[:-1]) * 1024 if tokens and x.endswith("k") else int(x))
    return out


def run_calls(bufs, n):
    for i in range(n):
        F.scaled_dot_product_attention(*bufs[i % len(bufs)], enable_gqa=True)


def time_events(fn, iters):
    """ms per call of fn(), which runs iters calls, between CUDA events on the current stream."""
    torch.cuda.synchronize()
    t0 = torch.cuda.Event(enable_timing=True)
    t1 = torch.cuda.Event(enable_timing=True)
    t0.record()
    fn()
    t1.record()
    torch.cuda.synchronize()
    return t0.elapsed_time(t1) / iters


def time_graph(bufs, a):
    """The iters calls captured in one CUDA graph (warm-up on a side stream first, as torch requires),
    one warm-up replay, then one timed replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        run_calls(bufs, a.warmup)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run_calls(bufs, a.iters)
    g.replay()
    return time_events(g.replay, a.iters)


def time_point(b, t, dt, backend, a):
    dev = torch.device("cuda")
    kv_bytes = 2 * b * a.kv_heads * t * a.head_dim * 2
    n_buf = max(1, math.ceil(a.rotate_mb * 2**20 / kv_bytes))
    bufs = []
    for _ in range(n_buf):
        q = torch.randn(b, a.heads, 1, a.head_dim, device=dev, dtype=dt)
        k = torch.randn(b, a.kv_heads, t, a.head_dim, device=dev, dtype=dt)
        v = torch.randn(b, a.kv_heads, t, a.head_dim, device=dev, dtype=dt)
        bufs.append((q, k, v))
    try:
        with sdpa_kernel([backend]):  # active during capture too: the graph records this backend's kernels
            if a.graph:
                return time_graph(bufs, a)
            run_calls(bufs, a.warmup)
            return time_events(lambda: run_calls(bufs, a.iters), a.iters)
    finally:
        del bufs
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", default="1,2,4,8,16")
    ap.add_argument("--cache", default="8k,16k,32k,64k,128k")
    ap.add_argument("--dtype", default="bf16,fp16")
    ap.add_argument("--heads", type=int, default=64)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rotate-mb", type=int, default=256)
    ap.add_argument("--graph", action="store_true",
                    help="time each point as one replayed CUDA graph of its --iters calls")
    ap.add_argument("--out", required=True, help="JSON file to write")
    a = ap.parse_args()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    backends = (("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION))
    points = []
    print("sdpa timed " + ("as one replayed CUDA graph per point (--graph)" if a.graph else "on a stream"),
          flush=True)
    for dname in a.dtype.split(","):
        for b in parse_list(a.batch):
            for t in parse_list(a.cache, tokens=True):
                for name, backend in backends:
                    p = {"batch": b, "cache": t, "dtype": dname, "backend": name}
                    try:
                        p["ms"] = time_point(b, t, dtypes[dname], backend, a)
                    except Exception as e:  # a backend that refuses a shape is reported, not fatal
                        p["error"] = str(e).splitlines()[0][:200]
                        torch.cuda.empty_cache()
                    points.append(p)
                    print(f"sdpa {name:5s} {dname} B {b:2d} T {t:6d}: "
                          + (f"{p['ms']:.4f} ms" if "ms" in p else p["error"]), flush=True)
    with open(a.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "graph": a.graph,
                   "points": points}, f, indent=1)


if __name__ == "__main__":
    main()
