#!/usr/bin/env python3
"""Times torch SDPA causal attention (FLASH and CUDNN backends) at a packed-chunk shape.

Used by `seer bench forward` as the third-party baseline; prints one JSON object on stdout:
  {"device": ..., "torch": ..., "tokens": T, "flops": F,
   "results": {"FLASH": {"ms": .., "tflops": ..} or {"error": ..}, "CUDNN": {...}}}
Documents are attended separately (SDPA has no varlen): equal lengths are batched together, so a
chunk of 5 x 6000 + 2768 tokens is two calls. FLOPs = sum over documents of 4 * len^2 / 2 * H * HD,
the same count the seer bench uses. Timing: CUDA events around `iters` rounds after `warmup`.
"""
import argparse
import collections
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--head-dim", type=int, required=True)
    ap.add_argument("--docs", required=True, help="comma-separated document lengths of the chunk")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()

    lens = [int(x) for x in a.docs.split(",") if x]
    groups = collections.Counter(lens)
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    inputs = []
    for n, b in sorted(groups.items()):
        def r(h):
            return torch.randn(b, h, n, a.head_dim, device=dev, dtype=torch.bfloat16, generator=g)
        inputs.append((r(a.heads), r(a.kv_heads), r(a.kv_heads)))
    flops = sum(4.0 * n * n / 2 * a.heads * a.head_dim for n in lens)

    def one_round():
        for q, k, v in inputs:
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

    results = {}
    for name, backend in (("FLASH", SDPBackend.FLASH_ATTENTION), ("CUDNN", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                for _ in range(a.warmup):
                    one_round()
                torch.cuda.synchronize()
                t0 = torch.cuda.Event(enable_timing=True)
                t1 = torch.cuda.Event(enable_timing=True)
                t0.record()
                for _ in range(a.iters):
                    one_round()
                t1.record()
                torch.cuda.synchronize()
            ms = t0.elapsed_time(t1) / a.iters
            results[name] = {"ms": ms, "tflops": flops / (ms * 1e-3) / 1e12}
        except Exception as e:  # a backend that refuses this shape is reported, not fatal
            results[name] = {"error": str(e).splitlines()[0][:200]}
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "tokens": sum(lens), "flops": flops, "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
