#!/usr/bin/env python3
"""Checks seer's PyTorch .pth gate files with torch itself (run where torch is installed).

  check_pth.py check GATES_DIR   torch.load(attn_gate_weights.pth) (weights_only True and False)
                                 must give the same names, shapes, bf16 dtype and bits as
                                 model.safetensors; config.json must carry the seerattn_* keys.
  check_pth.py make OUT_DIR      writes torch_ordereddict.pth and torch_dict.pth with torch.save,
                                 the fixtures tests/test_export.c reads (copy them to tests/golden/).
Prints one line per check and "check_pth: OK" at the end; exits 1 on any mismatch.
"""
import collections
import json
import os
import sys

import torch


def fixture_tensors():
    # Values tests/test_export.c expects: w = arange(120) * 0.125 - 1 in bf16, [2, 3, 4, 5];
    # row_view = w[1] (a view at storage offset 60); half = [0.5, 1.5, 2.5] in fp16.
    w = (torch.arange(120, dtype=torch.float32) * 0.125 - 1).to(torch.bfloat16).reshape(2, 3, 4, 5)
    return [("w", w), ("row_view", w[1]), ("half", torch.tensor([0.5, 1.5, 2.5], dtype=torch.float16))]


def make(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    t = fixture_tensors()
    torch.save(collections.OrderedDict(t), os.path.join(out_dir, "torch_ordereddict.pth"))
    torch.save(dict(t), os.path.join(out_dir, "torch_dict.pth"))
    print("wrote torch_ordereddict.pth and torch_dict.pth to", out_dir)


def check(gates_dir):
    from safetensors.torch import load_file

    ok = True
    ref = load_file(os.path.join(gates_dir, "model.safetensors"))
    pth = os.path.join(gates_dir, "attn_gate_weights.pth")
    for weights_only in (True, False):
        sd = torch.load(pth, map_location="cpu", weights_only=weights_only)
        same_names = list(sd.keys()) == list(ref.keys()) or sorted(sd) == sorted(ref)
        bad = [k for k in ref if k not in sd or sd[k].dtype != torch.bfloat16
               or sd[k].shape != ref[k].shape or not torch.equal(sd[k].view(torch.int16), ref[k].view(torch.int16))]
        print(f"torch.load(weights_only={weights_only}): {type(sd).__name__} of {len(sd)} tensors, "
              f"names match: {same_names}, mismatched tensors: {len(bad)}")
        ok = ok and same_names and not bad
    cfg = json.load(open(os.path.join(gates_dir, "config.json")))
    keys = ["base_model", "seerattn_gate_block_size", "seerattn_gate_hidden_size",
            "seerattn_k_seq_pooling_type", "seerattn_q_head_pooling_type", "seerattn_use_qk_norm",
            "seerattn_use_rope", "seerattn_loss_slice_ratio"]
    missing = [k for k in keys if k not in cfg]
    print("config.json seerattn keys missing:", missing or "none")
    L = cfg["num_hidden_layers"]
    hkv, h = cfg["num_key_value_heads"], cfg["num_attention_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // h)
    dg = cfg["seerattn_gate_hidden_size"]
    q = ref["model.layers.0.self_attn.attn_gate.attngate_linear_q.weight"]
    k = ref[f"model.layers.{L - 1}.self_attn.attn_gate.attngate_linear_k.weight"]
    shapes_ok = tuple(q.shape) == (hkv, h // hkv, hd, dg) and tuple(k.shape) == (hkv, 3 * hd, dg)
    print(f"shapes: q {tuple(q.shape)}, k {tuple(k.shape)}, as SPEC section 7: {shapes_ok}")
    ok = ok and not missing and shapes_ok and len(ref) == 4 * L
    print("check_pth:", "OK" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "make"):
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(0 if check(sys.argv[2]) else 1)
