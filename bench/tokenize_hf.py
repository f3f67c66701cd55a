#!/usr/bin/env python3
"""Single-thread throughput of Hugging Face `tokenizers` on a JSON-lines corpus (one JSON string a line).

    python3 bench/tokenize_hf.py --tokenizer PATH/tokenizer.json --input FILE.jsonl [--repeat 5]

Encodes every text (add_special_tokens=False) once per pass, one call per text, with Rayon limited to
one thread; prints MB/s (1 MB = 1e6 bytes of UTF-8 input) of the first and the best pass, the same
protocol as `seer bench tokenize`.
"""
import argparse
import json
import os
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers  # noqa: E402  (after the environment is set)
from tokenizers import Tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = args.tokenizer
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(path)
    t_load = time.perf_counter() - t0
    with open(args.input, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    first, best, tokens = 0.0, float("inf"), 0
    for r in range(args.repeat):
        t = time.perf_counter()
        tokens = sum(len(tok.encode(x, add_special_tokens=False).ids) for x in texts)
        t = time.perf_counter() - t
        first = t if r == 0 else first
        best = min(best, t)
    print(f"hf tokenizers {tokenizers.__version__}: {len(texts)} texts, {nbytes / 1e6:.3f} MB, {tokens} tokens, "
          f"load {t_load:.2f} s")
    print(f"hf tokenizers: first pass {nbytes / 1e6 / first:.1f} MB/s ({first:.3f} s), best of {args.repeat} "
          f"{nbytes / 1e6 / best:.1f} MB/s ({best:.3f} s), {tokens / 1e6 / best:.2f} Mtok/s")


if __name__ == "__main__":
    main()
