#!/usr/bin/env python3
"""Golden fixtures for tests/test_forward.c, made with the reference implementation (transformers).

Builds tiny random Qwen3 / Qwen2 / Llama models (tied and untied, GQA groups of 2, 3 and 4, an explicit
head_dim that differs from hidden/heads, odd sizes, one saved in bf16, one sharded), saves them as Hugging
Face folders, and records the model's fp32 logits for fixed token ids:
  single: one document;
  packed: several documents back to back; Hugging Face runs each document alone and the logits are
          concatenated (what seer's packed forward must reproduce);
  hook:   the last layer's q/k of the single case before RoPE (after bias and q/k norm) and after RoPE.
For the testbed model (data/testbed/model, bf16) only logits are stored, not the weights.
bf16 weights are compared against Hugging Face run in fp32 on the same bf16-rounded weights.

Layout of tests/fixtures/hf/<name>/: the model folder (config.json, *.safetensors), golden.json (cases,
ids, doc_lens, file names, versions) and raw little-endian float32 arrays (*.f32, row-major, shapes in
golden.json).

Run (needs torch, transformers, safetensors, tokenizers; CPU is enough):
    python3 tests/golden/make_hf_golden.py [--out tests/fixtures/hf] [--testbed data/testbed/model]
"""
import argparse
import json
import os
import shutil
import sys
import traceback

import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

V5 = int(transformers.__version__.split(".")[0]) >= 5

# name, classes, config, weights dtype on disk, shard size (None: one file), seed
MODELS = [
    ("qwen3_tied", Qwen3Config, Qwen3ForCausalLM,
     dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, head_dim=12,
          intermediate_size=88, vocab_size=211, tie_word_embeddings=True, rope_theta=10000.0,
          rms_norm_eps=1e-6, max_position_embeddings=256), torch.float32, None, 1),
    ("qwen2_untied_sharded", Qwen2Config, Qwen2ForCausalLM,
     dict(hidden_size=40, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
          intermediate_size=72, vocab_size=173, tie_word_embeddings=False, rope_theta=1000000.0,
          rms_norm_eps=1e-5, max_position_embeddings=256), torch.float32, "40KB", 2),
    ("llama_gqa4", LlamaConfig, LlamaForCausalLM,
     dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2, head_dim=8,
          intermediate_size=56, vocab_size=131, tie_word_embeddings=False, rope_theta=500000.0,
          rms_norm_eps=1e-5, max_position_embeddings=256), torch.float32, None, 3),
    ("qwen3_bf16", Qwen3Config, Qwen3ForCausalLM,
     dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
          intermediate_size=96, vocab_size=160, tie_word_embeddings=False, rope_theta=1000000.0,
          rms_norm_eps=1e-6, max_position_embeddings=256), torch.bfloat16, None, 4),
]
SINGLE_T = 37
PACKED_DOCS = [13, 1, 29, 7]
TESTBED_SINGLE_T = 100
TESTBED_PACKED_DOCS = [70, 1, 45]


def make_config(cls, kw):
    kw = dict(kw)
    if V5:  # transformers 5 keeps RoPE settings in rope_parameters
        kw["rope_parameters"] = {"rope_type": "default", "rope_theta": kw.pop("rope_theta")}
    return cls(**kw)


def randomize(model, seed):
    """Weights large enough that logits spread out (HF's N(0, 0.02) gives near-uniform outputs)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif "embed_tokens" in name:
            p.copy_(torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)


def load_fp32(cls, folder):
    kw = {"dtype": torch.float32} if V5 else {"torch_dtype": torch.float32}
    return cls.from_pretrained(folder, attn_implementation="eager", **kw).float().eval()


def logits_of(model, ids, doc_lens):
    """fp32 logits [T, V]: each document run alone, then concatenated."""
    out, t0 = [], 0
    for n in doc_lens:
        x = torch.tensor([ids[t0:t0 + n]], dtype=torch.long)
        out.append(model(input_ids=x).logits[0].float())
        t0 += n
    return torch.cat(out, 0)


def capture_hook(model, ids):
    """Last layer's q/k before RoPE (after bias / q_norm / k_norm) and after RoPE: [T, H, HD], [T, HKV, HD]."""
    attn = model.model.layers[-1].self_attn
    cfg = model.config
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    seen = {}
    qmod, kmod = (attn.q_norm, attn.k_norm) if hasattr(attn, "q_norm") else (attn.q_proj, attn.k_proj)
    hs = [qmod.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o.detach().clone())),
          kmod.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o.detach().clone()))]
    x = torch.tensor([ids], dtype=torch.long)
    model(input_ids=x)
    for h in hs:
        h.remove()
    T = len(ids)
    q = seen["q"].reshape(1, T, -1, hd).transpose(1, 2)  # [1, H, T, HD]
    k = seen["k"].reshape(1, T, -1, hd).transpose(1, 2)
    cos, sin = model.model.rotary_emb(q, torch.arange(T).unsqueeze(0))
    rope = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    qr, kr = rope(q, k, cos, sin)
    t = lambda x: x[0].transpose(0, 1).contiguous().float()  # -> [T, heads, HD]
    return {"q_nope": t(q), "k_nope": t(k), "q_rope": t(qr), "k_rope": t(kr)}


def write_f32(path, tensor):
    tensor.detach().float().contiguous().numpy().astype("<f4").tofile(path)


def write_cases(folder, model, cases, hook_ids=None, extra=None):
    meta = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": []}
    meta.update(extra or {})
    for name, ids, doc_lens in cases:
        lg = logits_of(model, ids, doc_lens)
        write_f32(os.path.join(folder, f"{name}.f32"), lg)
        meta["cases"].append({"name": name, "ids": ids, "doc_lens": doc_lens, "logits": f"{name}.f32",
                              "shape": list(lg.shape)})
    if hook_ids is not None:
        hk = capture_hook(model, hook_ids)
        meta["hook"] = {"case": "single", "layer": model.config.num_hidden_layers - 1}
        for key, val in hk.items():
            write_f32(os.path.join(folder, f"hook_{key}.f32"), val)
            meta["hook"][key] = {"file": f"hook_{key}.f32", "shape": list(val.shape)}
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


def make_random_model(out, name, cfg_cls, model_cls, kw, dtype, shard, seed):
    folder = os.path.join(out, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    torch.manual_seed(seed)
    cfg = make_config(cfg_cls, kw)
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).float().eval()
    randomize(model, seed)
    model = model.to(dtype)  # bf16 rounding happens here for the bf16 model
    save_kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(folder, **save_kw)
    for junk in ("generation_config.json",):
        if os.path.exists(os.path.join(folder, junk)):
            os.remove(os.path.join(folder, junk))
    # The reference runs in fp32 on the stored (possibly bf16-rounded) weights, reloaded from disk.
    # (Not model.float(): model.to(bf16) also rounds the rotary inv_freq buffer to bf16, which shifts
    # every RoPE angle; a fresh load computes inv_freq in fp32 as Hugging Face does for real checkpoints.)
    model = load_fp32(model_cls, folder)
    g = torch.Generator().manual_seed(100 + seed)
    V = kw["vocab_size"]
    single = torch.randint(0, V, (SINGLE_T,), generator=g).tolist()
    packed = torch.randint(0, V, (sum(PACKED_DOCS),), generator=g).tolist()
    meta = write_cases(folder, model, [("single", single, [SINGLE_T]), ("packed", packed, PACKED_DOCS)],
                       hook_ids=single, extra={"weights_dtype": str(dtype).replace("torch.", "")})
    files = sorted(os.listdir(folder))
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, files {files}, "
          f"logits range {min(c['shape'][0] for c in meta['cases'])} rows")


def testbed_prompts(model_dir, n):
    """Token ids of the first n training traces' user turns (chat-templated), from the repo's traces."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    traces = os.path.join(os.path.dirname(os.path.abspath(model_dir)), "train_traces.jsonl")
    out = []
    with open(traces) as f:
        for line in f:
            user = json.loads(line)["messages"][0]["content"]
            text = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
            out.append(tok.encode(text, add_special_tokens=False).ids)
            if len(out) == n:
                return out
    raise SystemExit(f"{traces}: fewer than {n} traces")


def make_testbed(out, model_dir):
    folder = os.path.join(out, "testbed")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    model = load_fp32(AutoModelForCausalLM, model_dir)
    p = testbed_prompts(model_dir, 4)
    single = p[0][:TESTBED_SINGLE_T]
    packed = sum((p[i + 1][:n] for i, n in enumerate(TESTBED_PACKED_DOCS)), [])
    write_cases(folder, model, [("single", single, [len(single)]), ("packed", packed, TESTBED_PACKED_DOCS)],
                extra={"weights_dtype": "bfloat16", "model": "data/testbed/model (not copied here)"})
    print(f"testbed: single {len(single)} tokens, packed {TESTBED_PACKED_DOCS}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "hf"))
    ap.add_argument("--testbed", default=os.path.join(root, "data", "testbed", "model"))
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for spec in MODELS:
        failed += run_step(spec[0], make_random_model, args.out, *spec)
    if os.path.isdir(args.testbed):
        failed += run_step("testbed", make_testbed, args.out, args.testbed)
    else:
        print(f"testbed model not found at {args.testbed}: skipped")
    sys.exit(1 if failed else 0)


def run_step(name, fn, *args):
    """Runs one fixture builder; a failure is reported and the others still run. Returns 1 on failure."""
    try:
        fn(*args)
        return 0
    except Exception:
        traceback.print_exc()
        print(f"{name}: FAILED")
        return 1


if __name__ == "__main__":
    main()
