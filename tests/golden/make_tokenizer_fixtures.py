#!/usr/bin/env python3
"""Golden fixtures for the tokenizer and chat-template tests (tests/test_tokenizer.c).

Runs where Hugging Face `tokenizers` and `transformers` are installed (the GPU machine has both):

    python3 tests/golden/make_tokenizer_fixtures.py --shared ../shared --out tests/fixtures/tokenizer \
        [--private-out DIR] [--seer build/seer]

Writes into --out (committed):
  encode.jsonl.gz   {"tok", "text", "ids"[, "decoded"]}: HF ids (add_special_tokens=False) of every case;
                    "decoded" (HF decode, special tokens kept) only where it differs from "text".
  decode.jsonl.gz   {"tok", "ids", "text"}: HF decode of id lists cut at awkward places.
  chat.jsonl.gz     {"messages", "add_generation_prompt"[, "enable_thinking"], "rendered", "ids"}:
                    transformers apply_chat_template with Qwen3's tokenizer_config.json.
  testbed-flags.json, testbed-plain.json: variants of the testbed tokenizer that exercise added-token
                    flags (lstrip, rstrip, single_word, normalized) and no normaliser + legacy merges
                    + ignore_merges.
  meta.json         library versions and counts.
Tokenizer names in "tok": qwen3 = SHARED/tokenizers/qwen3/tokenizer.json, testbed =
SHARED/testbed/model/tokenizer.json, testbed-flags / testbed-plain = the variants above.

GPQA text must not be published, so its cases go only to --private-out (encode_private.jsonl.gz), with
the timing corpus bench_corpus.jsonl (one JSON string per line). With --seer, every case (private ones
too) is also run through `seer tokenize` and compared; mismatches are printed and the exit status is 1.
"""
import argparse
import copy
import gzip
import hashlib
import json
import os
import random
import subprocess
import sys

import tokenizers
from tokenizers import Tokenizer

SPACES = " " * 20000


def handmade_cases():
    """Unicode and whitespace edge cases (text only; the HF ids are computed, never written by hand)."""
    c = [
        "", " ", "  ", "\n", "\n\n\n", "\t\t", " \t\n \r\n", "\r", "\r\r\n\n", "a\n", "\n a",
        "Hello world", "Hello  world", "Hello\tworld", "Hello \n\n world  ", "   leading", "trailing   ",
        SPACES, "\n" * 5000, "\t" * 3000, "a" + " " * 5000 + "b", (" \n" * 2000) + "x", "a" * 3000,
        "1234567890", "3.14159265358979323846", "1,000,000.00", "０１２３４５", "x²+y³=z¹", "Ⅻ ⅻ", "①②③",
        "٣٤٥ ۱۲۳", "१२३", "12abc34", "v1.2.3-rc4",
        "I'm", "I'M", "you're", "YOU'RE", "they'Ve", "it's", "IT'S", "we'll", "WE'LL", "he'd", "HE'D",
        "don't", "DON'T", "'s", "'S", "'ſ", "'K", "'ll'", "O'Neil's", "rock'n'roll", "it’s", "''s", " 's",
        "'t've'm", "ʼs", "x's's'S",
        "你好，世界！", "今日は良い天気ですね。", "안녕하세요 세계", "\u1100\u1161\u11a8", "ｶﾞｷﾞ", "中文English混合",
        "這是一個很長的中文句子，沒有空格也沒有標點符號只是一直寫下去看看會發生什麼事情" * 4,
        "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽👍🏿", "🇺🇸🇬🇧🇯🇵", "❤️", "1️⃣#️⃣", "🧑🏿‍🚀 in space", "😀😃😄😁" * 20,
        "e\u0301", "a\u0308\u0301", "\u212b", "\u2126", "n\u0303 ñ", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356go",
        "\u0301start", "q\u0307\u0323", "\u0344", "\u1e9b\u0323", "ﬁ ﬂ ﬃ", "\uf900\uf901",
        "שָׁלוֹם עולם", "مرحبا بالعالم", "abc\u200fdef\u200e", "\u202eoverride\u202c", "עברית 123 English",
        "\x00", "a\x00b", "\x01\x02\x1b[31mred\x1b[0m", "\x7f", "x\x85y", "a\u2028b\u2029c", "\x0b\x0c",
        "a\u00a0b", "a\u3000b", "zero\u200bwidth", "\ufeffbom", "mongol\u180evowel", "a\u2000\u200a b",
        " \u00a0 \u3000\n", "\u00a0" * 50, "\x1c\x1d\x1e\x1f",
        "<|im_start|>user\nhi<|im_end|>", "<think>reason</think>", "<|endoftext|><|endoftext|>", "<|im_start|",
        "<|im_end|>>", "<<|im_end|>", "<think></think>", "x<|im_end|>y", " <|im_end|> ", "<tool_call>",
        "<|fim_prefix|>code", "<|IM_END|>", "<think>\n\n</think>\n\n", "a <think> b </think> c", "</think>",
        "<|im_start|><|im_start|>", "text<|endoftext|>\u0301more",
        "\\frac{a}{b}", "$$\\sum_{i=1}^n i^2 = \\frac{n(n+1)(2n+1)}{6}$$", "def f(x):\n    return x**2\n",
        "```python\nprint('hi')\n```", "https://example.com/a?b=1&c=2#frag", "user@example.org", "\\boxed{ kzz}",
        "HELLO", "HeLLo WoRLD", "ΑΒΓ αβγ", "Straße STRASSE", "İstanbul ıi", "ǅemal ǈ", "ÀÉÎÕÜ",
        "\U00011f04\U00011f05", "\U00031350", "a\U00011f04b", "x\U00031350y", "a\u0870b", "q\U0001e030r",
        "z\U00011b00w", "a\U0001f6dcb", "a\u0cf3b", "m\U00010efdn", "a\U0001e4d0b", "k\U00011f50k", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚", "\U0010ffff", "\ue000\uf8ff", "\u0378\u0379",
        "...!!!???", "a.b,c;d:e", "--==++", "(((nested)))", "¿Qué? ¡Sí!", "—–-", "…", "\"quoted\"", "#$%&*@^~`|",
    ]
    return c


def fuzz_cases(n, seed):
    pool = [" ", "  ", "\t", "\n", "\r\n", "\r", "a", "Z", "'s", "'LL", "'re", "1", "23", "é", "e\u0301", "中",
            "文", "😀", "\u200d", "👍", "\u0301", ".", ",", "!", "?", "$", "\\", "<|im_end|>", "<think>", "</think>",
            "\u00a0", "\u3000", "\x85", "\x00", "ß", "ſ", "Ω", "\u2028", "word", "Word", "WORD", "-", "_", "—",
            "…", "¿", "x²", "٣", "\u212b", "ｶ", "\ufe0f", "\U0001f3fd", "       ", "\n\n", " \n"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 60))) for _ in range(n)]


def read_jsonl(path, limit=None):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def corpus(shared):
    """(text, private) for every real-text case, in a fixed order."""
    out = []
    for name in ["aime24", "aime25", "amc", "math500", "gpqa"]:
        for row in read_jsonl(os.path.join(shared, "benchmarks", name + ".jsonl")):
            for key in ["problem", "question", "solution", "answer"]:
                if key in row and row[key] is not None and str(row[key]):
                    out.append((str(row[key]), name == "gpqa"))
    for row in read_jsonl(os.path.join(shared, "traces", "r1_samples.jsonl")):
        out.append((row["problem"], False))
        out += [(m["content"], False) for m in row["messages"]]
    for row in read_jsonl(os.path.join(shared, "testbed", "train_traces.jsonl"), 60):
        out += [(m["content"], False) for m in row["messages"]]
    for row in read_jsonl(os.path.join(shared, "testbed", "eval.jsonl"), 20):
        out.append((row["problem"], False))
    return out


def bench_corpus(shared):
    """The timing corpus: real text only (benchmarks with GPQA, R1 traces, 200 testbed traces)."""
    texts = [t for t, _ in corpus(shared)]
    for row in read_jsonl(os.path.join(shared, "testbed", "train_traces.jsonl"), 200)[60:]:
        texts += [m["content"] for m in row["messages"]]
    return texts


def chat_cases(shared):
    """(messages, add_generation_prompt, enable_thinking or None) for the chat-template fixtures."""
    cases = []
    for row in read_jsonl(os.path.join(shared, "traces", "r1_samples.jsonl")):
        cases.append((row["messages"], False, None))
    for row in read_jsonl(os.path.join(shared, "testbed", "train_traces.jsonl"), 10):
        cases.append((row["messages"], False, None))
    for name in ["aime24", "aime25", "amc", "math500"]:
        for row in read_jsonl(os.path.join(shared, "benchmarks", name + ".jsonl"), 3):
            msgs = [{"role": "user", "content": row["problem"]}]
            cases += [(msgs, True, None), (msgs, True, True), (msgs, True, False)]
    u = lambda c: {"role": "user", "content": c}
    a = lambda c, **kw: dict({"role": "assistant", "content": c}, **kw)
    s = lambda c: {"role": "system", "content": c}
    t = lambda c: {"role": "tool", "content": c}
    think = "<think>\nLet me think.\nStep 1.\n</think>\n\nThe answer is 4."
    cases += [
        ([s("You are helpful."), u("2+2?"), a(think)], False, None),
        ([s("You are helpful.")], False, None),
        ([s("You are helpful."), u("2+2?")], True, None),
        ([s("Be brief."), u("2+2?")], True, False),
        ([u("2+2?"), a(think), u("And 3+3?"), a("<think>\nadd\n</think>\n\n6")], False, None),
        ([u("2+2?"), a(think), u("And 3+3?")], True, None),
        ([u("2+2?"), a(think), u("And 3+3?")], True, False),
        ([u("q"), a("<think>\n\n</think>\n\nanswer")], False, None),
        ([u("q"), a("no think block at all")], False, None),
        ([u("q"), a("first"), a("second")], False, None),
        ([u("q"), a("<think>r1</think>first"), a("<think>r2</think>second")], False, None),
        ([u("q"), a("answer", reasoning_content="given reasoning")], False, None),
        ([u("q"), a("<think>inline</think>answer", reasoning_content="")], False, None),
        ([u("q"), a("<think>inline</think>answer", reasoning_content=None)], False, None),
        ([u("q"), a("\n\nanswer", reasoning_content="\n\nr\n\n")], False, None),
        ([u("q"), a("<think>a</think>b</think>c")], False, None),
        ([u("q"), a("x<think>y<think>z</think>w")], False, None),
        ([u("q"), a("<think>\n\n\nr\n\n</think>\n\n\n\nans\n")], False, None),
        ([u("q"), a("call"), t("result 1"), t("result 2"), a("<think>saw</think>done")], False, None),
        ([u("q"), a("call"), t("result")], True, None),
        ([u("q"), a("<think>r</think>call"), u("<tool_response>\nx\n</tool_response>"), a("<think>r2</think>final")],
         False, None),
        ([u("first"), s("mid-conversation system"), u("second")], True, None),
        ([u("你好 👋 <|im_end|> literal"), a("<think>\n思考\n</think>\n\n回答 é")], False, None),
        ([u("")], True, None),
        ([u("q"), a("")], False, None),
    ]
    return cases


def variants(shared):
    """Testbed tokenizer variants exercising added-token flags, no normaliser and legacy merges."""
    base = json.load(open(os.path.join(shared, "testbed", "model", "tokenizer.json"), encoding="utf-8"))
    flags = copy.deepcopy(base)
    for tok in flags["added_tokens"]:
        if tok["content"] == "<think>":
            tok["lstrip"] = tok["rstrip"] = True
        if tok["content"] == "</think>":
            tok["single_word"] = True
        if tok["content"] == "<|im_end|>":
            tok["rstrip"] = True
        if tok["content"] == "<|im_start|>":
            tok["lstrip"] = True
    nxt = max(t["id"] for t in flags["added_tokens"]) + 1
    for i, content in enumerate(["\u00c5ngstr\u00f6m", "mask", "e\u0301t\u00e9"]):  # normalized (NFC) tokens
        flags["added_tokens"].append({"id": nxt + i, "content": content, "single_word": content == "mask",
                                      "lstrip": False, "rstrip": False, "normalized": True, "special": False})
    plain = copy.deepcopy(base)
    plain["normalizer"] = None
    plain["model"]["ignore_merges"] = True
    plain["model"]["merges"] = [" ".join(m) for m in plain["model"]["merges"]]
    return {"testbed-flags": flags, "testbed-plain": plain}


FLAG_CASES = ["<think>", " <think> x", "a  <think>  b", "\t<think>\n", "x</think>", "x </think> y", "</think>",
              "a<|im_end|>   b", "<|im_end|>\u2000\u3000z", "  <|im_start|>user", "Ångström Ångström", "\u212bngström",
              "mask masks unmask mask.", "é\u0301t\u00e9 étè", "ab<think><think>  </think>", "<think>  <think>",
              "x <|im_start|> <|im_end|> y", "\u0301<think>"]


def write_gz(path, rows):
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def encode_rows(name, tok, texts):
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        row = {"tok": name, "text": text, "ids": ids}
        dec = tok.decode(ids, skip_special_tokens=False)
        if dec != text:
            row["decoded"] = dec
        rows.append(row)
    return rows


def decode_rows(name, tok, texts, seed):
    """Id lists cut at awkward places (inside multi-byte characters), decoded by HF."""
    rng = random.Random(seed)
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        if len(ids) < 2:
            continue
        for _ in range(3):
            a = rng.randrange(len(ids))
            b = rng.randrange(a, len(ids)) + 1
            cut = ids[a:b]
            rows.append({"tok": name, "ids": cut, "text": tok.decode(cut, skip_special_tokens=False)})
    vsize = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(100):
        cut = [rng.randrange(vsize) for _ in range(rng.randint(1, 12))]
        rows.append({"tok": name, "ids": cut, "text": tok.decode(cut, skip_special_tokens=False)})
    return rows


def chat_rows(shared, tok):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(os.path.join(shared, "tokenizers", "qwen3"))
    rows = []
    for msgs, gen, thinking in chat_cases(shared):
        kw = {} if thinking is None else {"enable_thinking": thinking}
        rendered = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen, **kw)
        row = {"messages": msgs, "add_generation_prompt": gen, "rendered": rendered,
               "ids": tok.encode(rendered, add_special_tokens=False).ids}
        if thinking is not None:
            row["enable_thinking"] = thinking
        rows.append(row)
    return rows


def seer_check(seer, tok_paths, encode_all, chat, decode):
    """Runs `seer tokenize` on every case; returns the number of mismatches (first few printed)."""
    bad = 0
    by_tok = {}
    for r in encode_all:
        by_tok.setdefault(r["tok"], []).append(r)
    for name, rows in by_tok.items():
        inp = "".join(json.dumps(r["text"]) + "\n" for r in rows)
        out = subprocess.run([seer, "tokenize", "--tokenizer", tok_paths[name]], input=inp.encode(),
                             capture_output=True)
        got = [json.loads(l) for l in out.stdout.decode().split("\n")[:-1]]
        if out.returncode or len(got) != len(rows):
            print(f"seer tokenize failed on {name}: rc {out.returncode} {out.stderr.decode()[:300]}")
            bad += 1
            continue
        for r, g in zip(rows, got):
            if g != r["ids"]:
                bad += 1
                if bad <= 10:
                    print(f"MISMATCH {name}: {r['text'][:80]!r}\n  hf   {r['ids'][:30]}\n  seer {g[:30]}")
        print(f"seer encode {name}: {sum(g == r['ids'] for r, g in zip(rows, got))}/{len(rows)} equal")
    for gen in (False, True):
        for thinking in (None, True, False):
            rows = [r for r in chat if r["add_generation_prompt"] == gen and r.get("enable_thinking") == thinking]
            if not rows:
                continue
            args = [seer, "tokenize", "--tokenizer", tok_paths["qwen3"]] + (["--generation-prompt"] if gen else []) + \
                   (["--no-thinking"] if thinking is False else [])
            inp = "".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows)
            out = subprocess.run(args, input=inp.encode(), capture_output=True)
            got = [json.loads(l) for l in out.stdout.decode().split("\n")[:-1]]
            ok = sum(g == r["ids"] for r, g in zip(rows, got))
            bad += len(rows) - ok
            print(f"seer chat gen={gen} thinking={thinking}: {ok}/{len(rows)} equal {out.stderr.decode()[:200]}")
    by_tok = {}
    for r in decode:
        by_tok.setdefault(r["tok"], []).append(r)
    for name, rows in by_tok.items():
        inp = "".join(json.dumps(r["ids"]) + "\n" for r in rows)
        out = subprocess.run([seer, "tokenize", "--decode", "--tokenizer", tok_paths[name]], input=inp.encode(),
                             capture_output=True)
        got = [json.loads(l) for l in out.stdout.decode().split("\n")[:-1]]
        ok = sum(g == r["text"] for r, g in zip(rows, got))
        bad += len(rows) - ok
        print(f"seer decode {name}: {ok}/{len(rows)} equal {out.stderr.decode()[:200]}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--out", default="tests/fixtures/tokenizer")
    ap.add_argument("--private-out", default=None)
    ap.add_argument("--seer", default=None)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tok_paths = {"qwen3": os.path.join(args.shared, "tokenizers", "qwen3", "tokenizer.json"),
                 "testbed": os.path.join(args.shared, "testbed", "model", "tokenizer.json")}
    for name, tj in variants(args.shared).items():
        tok_paths[name] = os.path.join(args.out, name + ".json")
        with open(tok_paths[name], "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, indent=1)
    toks = {name: Tokenizer.from_file(p) for name, p in tok_paths.items()}

    real = corpus(args.shared)
    public = [t for t, private in real if not private]
    private = [t for t, p in real if p]
    hand = handmade_cases() + fuzz_cases(600, 1234)
    enc = encode_rows("qwen3", toks["qwen3"], public + hand)
    enc += encode_rows("testbed", toks["testbed"], public[-140:] + hand)
    for name in ["testbed-flags", "testbed-plain"]:
        enc += encode_rows(name, toks[name], hand + FLAG_CASES)
    dec = decode_rows("qwen3", toks["qwen3"], handmade_cases(), 7) + decode_rows("testbed", toks["testbed"],
                                                                                 handmade_cases(), 8)
    chat = chat_rows(args.shared, toks["qwen3"])
    write_gz(os.path.join(args.out, "encode.jsonl.gz"), enc)
    write_gz(os.path.join(args.out, "decode.jsonl.gz"), dec)
    write_gz(os.path.join(args.out, "chat.jsonl.gz"), chat)
    import transformers
    meta = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
            "encode_cases": len(enc), "decode_cases": len(dec), "chat_cases": len(chat),
            "sha256": {name: hashlib.sha256(open(p, "rb").read()).hexdigest() for name, p in tok_paths.items()},
            "generator": "tests/golden/make_tokenizer_fixtures.py"}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))

    priv = encode_rows("qwen3", toks["qwen3"], private)
    if args.private_out:
        os.makedirs(args.private_out, exist_ok=True)
        write_gz(os.path.join(args.private_out, "encode_private.jsonl.gz"), priv)
        with open(os.path.join(args.private_out, "bench_corpus.jsonl"), "w", encoding="utf-8") as f:
            for t in bench_corpus(args.shared):
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
    if args.seer:
        bad = seer_check(args.seer, tok_paths, enc + priv, chat, dec)
        print(f"seer check: {bad} mismatches over {len(enc) + len(priv)} encode, {len(chat)} chat, {len(dec)} decode")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
