"""Sampling speed: sample.py vs transformers' generate on the same weights (a script, not a test).

    python bench/sample_speed.py [--ckpt gemma-3-270m] [--dtype auto] [--rounds 3]
    python bench/sample_speed.py --dtypes      # the inference-dtype decision: fp32 vs bf16 weights

Both draw n=8 samples x 32 new tokens at temperature 1 with no top-k/top-p from the same prompt
(the model card's board-games prompt), forced to run all 32 steps (transformers: min_new_tokens; ours:
no stop tokens), same dtype (--dtype auto: bf16 where it is fast here, else fp32), same process, alternating runs;
ours runs as sample.py's command line does (sample.fast_cpu). The figure is the ratio of the medians
of new tokens/s (this machine is shared and noisy, absolute numbers drift). transformers gets the
model card's recipe: the prompt repeated n times, then generate.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import data  # noqa: E402
import sample  # noqa: E402
from bench.common import header  # noqa: E402

MESSAGES = [{"role": "description", "content": "Board games"},
            {"role": "output", "content": "Settlers of Catan"},
            {"role": "output", "content": "Twilight Imperium"}]
DICE = [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]


def ours(model, prompt, n, new, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    ids, _ = sample.sample_ids(model, prompt, n, sample.sampler(generator=g), new, stop=())
    dt = time.perf_counter() - t
    assert all(len(i) == new for i in ids)
    return n * new / dt


def theirs(hf, prompt, n, new, seed=0):
    torch.manual_seed(seed)
    x = torch.tensor([prompt]).repeat(n, 1)
    t = time.perf_counter()
    with torch.no_grad():
        out = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=True, temperature=1.0, top_k=0,
                          top_p=1.0, max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
    dt = time.perf_counter() - t
    assert out.shape == (n, len(prompt) + new)
    return n * new / dt


def versus_transformers(a):
    import transformers
    path = checkpoint.resolve(a.ckpt)
    model, tok = checkpoint.load(path, "cpu", a.dtype)
    sample.fast_cpu(model)
    dtype = model.embed_tokens.weight.dtype
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    prompt = data.prompt_ids(tok, MESSAGES)
    print(header(f"sampling speed, {a.ckpt}", dtype))
    print(f"prompt {len(prompt)} tokens, n={a.n} x {a.new} new tokens")
    ours(model, prompt, a.n, 4), theirs(hf, prompt, a.n, 4)  # warm up
    us, them = [], []
    for r in range(a.rounds):
        us.append(ours(model, prompt, a.n, a.new, r))
        them.append(theirs(hf, prompt, a.n, a.new, r))
        print(f"round {r}: sample.py {us[-1]:.1f} new tok/s, transformers generate {them[-1]:.1f} new tok/s")
    u, t = statistics.median(us), statistics.median(them)
    paired = statistics.median(a / b for a, b in zip(us, them))
    print(f"median: sample.py {u:.1f} new tok/s, transformers {t:.1f} new tok/s -> ratio {u / t:.2f}x "
          f"(median of per-round ratios {paired:.2f}x)")


def dtypes(a):
    """fp32 vs bf16 weights: decode speed, load time and agreement of option probabilities."""
    models = {}
    for name in ("float32", "bfloat16"):
        t = time.perf_counter()
        models[name], tok = checkpoint.load(a.ckpt, "cpu", name)
        sample.fast_cpu(models[name])
        print(f"{name}: load {time.perf_counter() - t:.1f} s")
    print(header("fp32 vs bf16 weights", "both"))
    prompt = data.prompt_ids(tok, MESSAGES)
    for m in models.values():
        ours(m, prompt, a.n, 4)
    speed = {k: [] for k in models}
    for r in range(a.rounds):
        for k, m in models.items():
            speed[k].append(ours(m, prompt, a.n, a.new, r))
    for k in models:
        print(f"{k}: median {statistics.median(speed[k]):.1f} new tok/s ({a.n} x {a.new})")
    print(f"bf16 / fp32 speed: {statistics.median(speed['bfloat16']) / statistics.median(speed['float32']):.2f}x")
    opts = [str(i) for i in range(2, 13)]
    res = {k: sample.option_probs(m, tok, DICE, opts) for k, m in models.items()}
    (p32, c32), (p16, c16) = res["float32"], res["bfloat16"]
    print("option  fp32    bf16")
    for o, x, y in zip(opts, p32, p16):
        print(f"{o:>6}  {x:.4f}  {y:.4f}")
    print(f"coverage fp32 {c32:.4g}, bf16 {c16:.4g}; max |dp| {max(abs(x - y) for x, y in zip(p32, p16)):.4f}, "
          f"total variation {0.5 * sum(abs(x - y) for x, y in zip(p32, p16)):.4f}")
    t32 = sample.top_tokens(models["float32"], tok, MESSAGES, 10)
    t16 = sample.top_tokens(models["bfloat16"], tok, MESSAGES, 10)
    print("top-10 first tokens fp32:", [(t, round(p, 4)) for t, p in t32])
    print("top-10 first tokens bf16:", [(t, round(p, 4)) for t, p in t16])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ckpt", default="gemma-3-270m")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("-n", "--n", type=int, default=8)
    p.add_argument("--new", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtypes", action="store_true", help="compare fp32 and bf16 weights instead")
    a = p.parse_args()
    dtypes(a) if a.dtypes else versus_transformers(a)
