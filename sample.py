"""Sampling from a Spectrum-tuned model: draw outputs, look at the next-token distribution, or get the
probability of each of a set of options.

    python sample.py --desc "Board games" --output "Settlers of Catan" --output "Twilight Imperium"
    python sample.py --desc "Pick a U.S. state uniformly at random." --top 10
    python sample.py --desc "Roll two six-sided dice. What is the sum?" --options 2,3,4,5,6,7,8,9,10,11,12
    python sample.py --messages prompt.json --json

The prompt is a message list (description / input / output, DESIGN.md §3) rendered by data.py with
the generation prompt, so the model sees exactly what it was trained on. A prompt with neither a
description nor an example output is refused: the model was never trained to produce an output
from nothing.

Sampling is plain ancestral sampling at temperature 1 with no top-k / top-p by default: the model
is trained to match a distribution, and anything that reshapes it changes what you draw from. The
prompt is run once, n rows branch off its KV cache (all reading the prompt's keys/values in place)
and are decoded together; a row leaves the batch when it emits <end_of_turn> or <eos> (colon
format: a newline, as the reference did). A torch.Generator seeded with --seed makes a run reproducible.

Options are scored with their end token (data.output_text: "7<end_of_turn>" in the spectrum
format), so P("7") does not include "7 or 8" and a prefix option does not double count; the
coverage is the unnormalized sum of the options' probabilities.

Inference dtype (--dtype auto): bfloat16 weights to sample, the checkpoint's own dtype (float32
for train.py's checkpoints and the embedded 270M) for --top and --options. Measured on the real
270M on this 2-core AMD EPYC (AVX512-BF16) with bench/sample_speed.py: bf16 samples 8 x 32 tokens
1.4-1.6x faster than fp32 (~150 vs ~105 new tok/s with 2 threads, 111 vs 63 with 1), and
sampling noise dwarfs its rounding; but bf16 moves probabilities visibly at the printed precision
(two-dice options, bf16 vs fp32: total variation 0.013 and coverage 34.9% vs 32.8% on a 270M
after 20 steps of train.py; TV 0.03 on the base 270M), and a probability query is a single
forward, so it keeps the checkpoint's precision. (evaluate.py scores thousands of outputs and
defaults to bfloat16; its docstring measures what that moves; --dtype float32 there is exact.)

On CPU the projections and the lm_head run on oneDNN-prepacked copies of their weights (prepack):
decoding is bound by skinny matmuls (8 rows against 270M weights, 170M of them the 262k-token
lm_head), and prepacking makes them ~1.8x faster with bitwise-equal bf16 results. torch.compile
with weight freezing reached the same speed after a 150 s compile, so it is not used.
"""
import argparse
import json
import math
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

import data
import model as M


@dataclass
class SampleConfig:
    ckpt: str = "out"              # a checkpoint directory, a Hub id, or gemma-3-270m (the untuned base)
    format: str = "spectrum"       # spectrum | colon (pretrained baseline) | chat (instruction-tuned)
    n: int = 8
    temperature: float = 1.0       # 0: greedy
    top_k: int = 0                 # 0: off
    top_p: float = 1.0             # 1: off
    max_new_tokens: int = 64
    seed: int = 0
    dtype: str = "auto"            # auto: bfloat16 to sample, the checkpoint's dtype for --top/--options
    device: str = "cpu"


# --- prompts -----------------------------------------------------------------------------------

def check_prompt(messages):
    """data.validate, plus the rule of the Spectrum models: something to condition on."""
    data.validate(messages)
    if not any(m["role"] in ("description", "output") for m in messages):
        raise ValueError("nothing to condition on: the model expects a description or at least one "
                         "example output (--desc or --output), not only inputs")
    return messages


def prompt_ids(tok, messages, fmt="spectrum"):
    return data.encode(data.render(check_prompt(messages), fmt, generation_prompt=True), tok)[0]


_NEWLINE_IDS = {}


def stop_ids(tok, fmt="spectrum"):
    """Token ids that end an output: <end_of_turn> and <eos>; for colon, <eos> and every token
    containing a newline (the reference cut colon outputs at the first newline)."""
    if fmt != "colon":
        return [data.EOT, data.EOS]
    if id(tok) not in _NEWLINE_IDS:
        pieces = (tok.id_to_token(i) or "" for i in range(tok.get_vocab_size()))
        _NEWLINE_IDS[id(tok)] = [i for i, s in enumerate(pieces) if "\n" in s or s == "<0x0A>"]
    return [data.EOS] + _NEWLINE_IDS[id(tok)]


# --- the CPU fast path ---------------------------------------------------------------------------

def prepack(model):
    """On CPU, run every projection and the tied lm_head on a copy of its weight pre-packed for
    oneDNN (the layout torch.compile's weight freezing uses). Decoding is ~1.8x faster (it is bound
    by skinny matmuls: 8 rows against 270M weights), with the same results: bitwise in bf16, equal
    up to fp32 rounding in fp32. Parameters and state_dict are untouched (the packed copy costs
    memory, as much again as the weights); a weight that changes is repacked, and calls that
    need gradients take the plain path. Idempotent; a no-op off CPU or without oneDNN."""
    if (getattr(model, "prepacked", False) or model.embed_tokens.weight.device.type != "cpu"
            or not torch.backends.mkldnn.is_available()
            or not hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return model
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.forward = partial(packed_linear, owner=m)
    model.logits = partial(packed_linear, owner=model.embed_tokens)
    model.prepacked = True
    return model


def packed_linear(x, owner):
    """F.linear(x, owner.weight) on the packed copy, repacked when the weight changes."""
    w = owner.weight
    if (w.device.type != "cpu" or x.dtype != w.dtype or w.dtype not in (torch.float32, torch.bfloat16)
            or torch.is_autocast_enabled("cpu") or (torch.is_grad_enabled() and w.requires_grad)):
        return F.linear(x, w)
    key = (w.data_ptr(), w._version, w.dtype, tuple(w.shape))
    if getattr(owner, "packed_key", None) != key:
        owner.packed_weight, owner.packed_key = torch.ops.mkldnn._reorder_linear_weight(w.detach(), 8), key
    return torch.ops.mkldnn._linear_pointwise(x, owner.packed_weight, None, "none", [], "")


# --- sampling ----------------------------------------------------------------------------------

def sampler(temperature=1.0, top_k=0, top_p=1.0, generator=None):
    """pick(logits [B, V] fp32, rows) -> next ids [B]: one exact draw per row from
    softmax(logits / temperature), restricted to the top_k tokens (ties at the k-th value kept)
    and then to the smallest most-probable set with mass >= top_p. temperature 0 is greedy."""
    if temperature < 0 or top_k < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0, top_k >= 0, 0 < top_p <= 1 "
                         f"(got {temperature}, {top_k}, {top_p})")

    def pick(logits, rows=None):
        if temperature == 0:
            return logits.argmax(-1)
        if temperature != 1.0:
            logits = logits / temperature
        if 0 < top_k < logits.shape[-1]:
            kth = logits.topk(top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1)
        if top_p < 1.0:  # drop a token once the more probable ones already hold top_p
            p, order = probs.sort(-1, descending=True)
            probs = probs.scatter(-1, order, p.masked_fill(p.cumsum(-1) - p >= top_p, 0.0))
        # inverse CDF in float64: exact up to rounding, and 5-10x faster than torch.multinomial
        # over 262k tokens. A zero-probability token is never chosen (its CDF step is empty).
        cdf = probs.double().cumsum(-1)
        u = torch.rand(len(cdf), 1, dtype=torch.float64, device=cdf.device, generator=generator)
        return torch.searchsorted(cdf, u * cdf[:, -1:], right=True)[:, 0].clamp_(max=cdf.shape[-1] - 1)

    return pick


@torch.no_grad()
def sample_ids(model, prompt, n, pick, max_new_tokens=64, stop=(data.EOT, data.EOS)):
    """n continuations of the token ids `prompt`, decoded together on one KV cache.

    The prompt runs once (logits at its last position only); n rows branch off its cache
    (KVCache.branch) and decode one token per step. A row that emits a token in `stop` leaves the
    batch (its own cache row is dropped), so finished rows cost nothing. pick(logits [B, V] fp32,
    rows [B]) chooses the next token of each live row (rows: their indices in 0..n-1).
    Returns (ids, stopped): per row the generated ids (ending with the stop token if it stopped),
    and whether it stopped before max_new_tokens.
    """
    device = model.embed_tokens.weight.device
    prepack(model)
    P = len(prompt)
    is_stop = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=device)
    is_stop[[t for t in stop if t < len(is_stop)]] = True
    cache = M.new_cache(model, 1, P)
    last = torch.zeros(1, P, dtype=torch.bool, device=device)
    last[0, -1] = True
    logits = model(torch.tensor([prompt], device=device), cache=cache, select=last).float()
    cache = cache.branch(n, max_new=max_new_tokens)
    logits = logits.expand(n, -1)
    rows = torch.arange(n, device=device)
    out, stopped = [[] for _ in range(n)], [False] * n
    for step in range(max_new_tokens):
        nxt = pick(logits, rows)
        for r, t in zip(rows.tolist(), nxt.tolist()):
            out[r].append(t)
        done = is_stop[nxt]
        if done.any():
            for r in rows[done].tolist():
                stopped[r] = True
            keep = ~done
            rows, nxt = rows[keep], nxt[keep]
            cache.k = [k[keep] for k in cache.k]
            cache.v = [v[keep] for v in cache.v]
        if not len(rows) or step + 1 == max_new_tokens:
            break
        logits = model(nxt[:, None], cache=cache)[:, -1].float()
    return out, stopped


def decode_output(tok, ids, stopped, fmt="spectrum"):
    """The text of one generated output: without its stop token; colon cut at the first newline and
    stripped, chat stripped (as data.output_text renders them); spectrum exactly as generated."""
    if stopped and (fmt != "colon" or ids[-1] == data.EOS):
        ids = ids[:-1]
    if fmt == "colon":  # the stop token is a newline token: keep what precedes the newline
        return tok.decode(ids, skip_special_tokens=False).split("\n")[0].strip()
    text = tok.decode(ids, skip_special_tokens=False)
    return text.strip() if fmt == "chat" else text


def generate(model, tok, messages, n=8, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=64,
             seed=0, fmt="spectrum", return_stopped=False):
    """n samples (strings) of the next output after `messages`. With return_stopped, also whether
    each stopped on its own (False: cut at max_new_tokens)."""
    device = model.embed_tokens.weight.device
    g = torch.Generator(device=device).manual_seed(seed)
    pick = sampler(temperature, top_k, top_p, g)
    ids, stopped = sample_ids(model, prompt_ids(tok, messages, fmt), n, pick, max_new_tokens,
                              stop_ids(tok, fmt))
    texts = [decode_output(tok, i, s, fmt) for i, s in zip(ids, stopped)]
    return (texts, stopped) if return_stopped else texts


# --- distributions -----------------------------------------------------------------------------

@torch.no_grad()
def top_tokens(model, tok, messages, k=10, fmt="spectrum"):
    """The k most probable first tokens of the next output: [(token text, probability)]."""
    ids = prompt_ids(tok, messages, fmt)
    device = model.embed_tokens.weight.device
    prepack(model)
    last = torch.zeros(1, len(ids), dtype=torch.bool, device=device)
    last[0, -1] = True
    probs = model(torch.tensor([ids], device=device), select=last)[0].float().softmax(-1)
    p, i = probs.topk(k)
    return [(tok.decode([t], skip_special_tokens=False), v) for t, v in zip(i.tolist(), p.tolist())]


def option_probs(model, tok, messages, options, fmt="spectrum"):
    """P(option + end token | prompt) for each option, normalized over the options, and the coverage
    (their unnormalized sum: the share of the model's mass on the options). Returns (probs, coverage)."""
    if not options:
        raise ValueError("no options to score")
    ids = prompt_ids(tok, messages, fmt)
    conts = [data.output_ids(o, tok, fmt) for o in options]
    prepack(model)
    logp = torch.tensor([lp.double().sum().item() for lp in M.continuation_logprobs(model, ids, conts)],
                        dtype=torch.float64)
    total = torch.logsumexp(logp, 0)
    return (logp - total).exp().tolist(), math.exp(total.item())


# --- command line ------------------------------------------------------------------------------

class Message(argparse.Action):
    """--input / --output append to one list, so examples keep their command-line order."""

    def __call__(self, parser, ns, value, option_string=None):
        ns.messages_argv = (ns.messages_argv or []) + [{"role": self.dest, "content": value}]


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise SystemExit(f"sample.py: {message} (see --help)")


def parse_args(argv):
    c = SampleConfig()
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=c.ckpt, help="checkpoint dir, Hub id, or gemma-3-270m (default: out/)")
    p.add_argument("--desc", help="description of the distribution")
    p.add_argument("--input", dest="input", action=Message, help="an input, before the next --output")
    p.add_argument("--output", dest="output", action=Message, help="an example output (repeatable)")
    p.add_argument("--messages", help="a JSON file with a message list (--desc/--input/--output append)")
    p.add_argument("-n", "--n", type=int, default=c.n, help="number of samples")
    p.add_argument("--temperature", type=float, default=c.temperature)
    p.add_argument("--top_k", type=int, default=c.top_k)
    p.add_argument("--top_p", type=float, default=c.top_p)
    p.add_argument("--max_new_tokens", type=int, default=c.max_new_tokens)
    p.add_argument("--seed", type=int, default=c.seed)
    p.add_argument("--format", default=c.format, choices=["spectrum", "colon", "chat"])
    p.add_argument("--dtype", default=c.dtype, choices=["auto", "bfloat16", "float32", "float16", "checkpoint"],
                   help="weights: auto = bfloat16 to sample, the checkpoint's own dtype for --top/--options")
    p.add_argument("--device", default=c.device)
    p.add_argument("--top", type=int, default=0, help="print the K most probable first tokens instead")
    p.add_argument("--options", help="comma-separated options: print their probabilities instead")
    p.add_argument("--options_file", help="options, one per line")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(messages_argv=None)
    return p.parse_args(argv)


def build_messages(args):
    messages = []
    if args.messages:
        try:
            messages = json.loads(Path(args.messages).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--messages {args.messages}: cannot read a JSON message list ({e})") from None
    if args.desc is not None:
        if messages and messages[0].get("role") == "description":
            raise SystemExit(f"--desc given, but {args.messages} already has a description")
        messages = [{"role": "description", "content": args.desc}] + messages
    messages += args.messages_argv or []
    if not messages:
        raise SystemExit("nothing to condition on: the model expects a description or at least one example "
                         "output; pass --desc, --output or --messages")
    return messages


def read_options(args):
    if args.options_file:
        try:
            lines = Path(args.options_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise SystemExit(f"--options_file: {e}") from None
        return [line for line in lines if line.strip()]
    if args.options is not None:
        return [o.strip() for o in args.options.split(",") if o.strip()]
    return None


def load(ckpt, dtype="checkpoint", device="cpu"):
    """Model and tokenizer of a checkpoint (dtype: a name in model.DTYPES, or "checkpoint" to keep
    the stored dtype), with one-line errors."""
    found = M.last_checkpoint(ckpt)  # out/ falls back to out.prev/ (a save killed between renames)
    if found is None and ckpt == "out":  # the default: train.py's output
        raise SystemExit("no checkpoint in out/: run python train.py first, or pass --ckpt")
    try:
        name = found or ckpt
        model = M.from_pretrained(name, device=device, dtype=M.DTYPES.get(dtype))
        tok = M.load_tokenizer(name)
    except (FileNotFoundError, ValueError, ImportError, NotImplementedError) as e:
        raise SystemExit(f"cannot load {ckpt}: {e}") from None
    return model, tok


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    messages = build_messages(args)
    options = read_options(args)
    if sum(x is not None and x is not False for x in (options, args.top or None)) > 1:
        raise SystemExit("--top and --options are separate modes: give one")
    try:
        check_prompt(messages)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.n < 1 or args.max_new_tokens < 1:
        raise SystemExit("-n and --max_new_tokens must be at least 1")
    dtype = args.dtype
    if dtype == "auto":  # see the module docstring
        dtype = "checkpoint" if args.top or options is not None else "bfloat16"
    model, tok = load(args.ckpt, dtype, args.device)
    try:
        if args.top:
            top = top_tokens(model, tok, messages, args.top, args.format)
            if args.json:
                print(json.dumps({"top": [{"token": t, "prob": p} for t, p in top]}, ensure_ascii=False))
            else:
                for i, (t, p) in enumerate(top):
                    print(f"{i + 1:2d}. {t!r} -> {100 * p:.2f}%")
        elif options is not None:
            if not options:
                raise SystemExit("--options: no options given")
            probs, coverage = option_probs(model, tok, messages, options, args.format)
            if args.json:
                print(json.dumps({"coverage": coverage, "options": [{"option": o, "prob": p} for o, p in
                                                                    zip(options, probs)]}, ensure_ascii=False))
            else:
                print(f"Coverage: {100 * coverage:.2f} %")
                for i, (o, p) in enumerate(zip(options, probs)):
                    print(f"{i + 1:2d}. {o!r} -> {p:.4f}")
        else:
            texts, stopped = generate(model, tok, messages, args.n, args.temperature, args.top_k, args.top_p,
                                      args.max_new_tokens, args.seed, args.format, return_stopped=True)
            if args.json:
                print(json.dumps({"samples": texts, "stopped": stopped}, ensure_ascii=False))
            else:
                for t in texts:  # one sample per line: newlines inside a sample are shown as \n
                    print(t.replace("\n", "\\n"))
                if not all(stopped):
                    print(f"({stopped.count(False)} of {len(stopped)} samples hit --max_new_tokens="
                          f"{args.max_new_tokens} before ending)", file=sys.stderr)
    except ValueError as e:  # e.g. a prompt longer than the model's context
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
