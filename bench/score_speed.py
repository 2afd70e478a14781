"""Option scoring speed: evaluate.py's way vs the model card's get_probabilities way, same process.

    python bench/score_speed.py [--ckpt gemma-3-270m] [--dtype auto|float32|bfloat16]

Task: the two-dice prompt padded with example outputs to ~500 tokens (spectrum format), 11 options
"2".."12", each scored with its <end_of_turn>.
  ours:         evaluate.evaluate_dist -> model.continuation_logprobs: the prompt runs once into a KV
                cache, the 11 options run as one small batch branched off it (reading its keys/values
                in place), logits only where scored.
  transformers: Gemma3ForCausalLM on the same weights and dtype, the 11 full sequences (prompt +
                option) right-padded into one batch, full logits at every position, cross-entropy on the
                option tokens (the model card's get_probabilities). The loss is taken one row at a time
                (the same arithmetic, so peak memory stays a few GB instead of 3 copies of [11, T, 262k]).
Both give the same log-probabilities (printed). Times are the best of --repeat runs after a warm-up;
the machine is shared and noisy, so only the ratio measured in one run means anything (on a busy CPU
set OMP_WAIT_POLICY=PASSIVE in the environment: it applies to both sides).
"""
import argparse
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import data  # noqa: E402
import evaluate as E  # noqa: E402
import sample  # noqa: E402
from bench.common import header  # noqa: E402
from tasks import DistPrompt  # noqa: E402


def dice_prompt(tok, target_tokens=500):
    rng = random.Random(0)
    msgs = [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]
    while len(data.prompt_ids(tok, msgs)) < target_tokens - 6:
        msgs.append({"role": "output", "content": str(rng.randint(1, 6) + rng.randint(1, 6))})
    return msgs


def transformers_scores(hf, prompt, conts):
    """log P(cont | prompt) per option, the model card's way: one right-padded batch, full logits."""
    L = max(len(c) for c in conts)
    ids = torch.zeros(len(conts), len(prompt) + L, dtype=torch.long)  # pad id 0, right padding
    labels = torch.full_like(ids, -100)
    for i, c in enumerate(conts):
        ids[i, :len(prompt) + len(c)] = torch.tensor(prompt + c)
        labels[i, len(prompt):len(prompt) + len(c)] = torch.tensor(c)
    with torch.no_grad():
        logits = hf(ids).logits
        out = []
        for i in range(len(conts)):
            nll = torch.nn.functional.cross_entropy(logits[i, :-1].float(), labels[i, 1:], reduction="sum")
            out.append(-nll.item())
    return out


def best_time(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), times, result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="gemma-3-270m")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    from transformers import Gemma3ForCausalLM
    path = checkpoint.resolve(a.ckpt)
    ours, tok = checkpoint.load(path, "cpu", a.dtype)
    sample.fast_cpu(ours)  # as evaluate.py runs
    dtype = ours.embed_tokens.weight.dtype
    hf = Gemma3ForCausalLM.from_pretrained(path, dtype=dtype).eval()

    msgs = dice_prompt(tok)
    options = [str(i) for i in range(2, 13)]
    prompt_ids = data.prompt_ids(tok, msgs)
    conts = [data.output_ids(o, tok) for o in options]
    dp = DistPrompt("dice", msgs, {o: 1 / len(options) for o in options})
    cfg = E.EvalConfig(format="spectrum")
    print(header(f"option scoring, {a.ckpt}", dtype))
    print(f"prompt {len(prompt_ids)} tokens, {len(options)} options (+ the end token)")

    short = DistPrompt("dice", msgs[:3], dp.target)  # warm-up: first-call costs out of the timings
    E.evaluate_dist(ours, tok, "dice", [short], cfg)
    transformers_scores(hf, prompt_ids[:20], conts)

    t_ours, ts_ours, res = best_time(lambda: E.evaluate_dist(ours, tok, "dice", [dp], cfg), a.repeat + 1)
    t_hf, ts_hf, ref = best_time(lambda: transformers_scores(hf, prompt_ids, conts), a.repeat)
    q = torch.tensor(res["prompts"][0]["q"], dtype=torch.float64)
    ref = torch.tensor(ref, dtype=torch.float64)
    q_ref = (ref - ref.logsumexp(0)).exp()
    print(f"ours         {t_ours:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts_ours)})")
    print(f"transformers {t_hf:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts_hf)})")
    print(f"max |q_ours - q_transformers| = {(q - q_ref).abs().max().item():.2e}; coverage "
          f"{res['prompts'][0]['coverage']:.4f} vs {ref.exp().sum().item():.4f}")
    print(f"speedup: {t_hf / t_ours:.1f}x (target >= 10x)  load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
