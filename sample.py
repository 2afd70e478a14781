"""Sampling from a Spectrum-tuned model: draw outputs, look at the next-token distribution, or get the
probability of each of a set of options.

    python sample.py --desc "Board games" --output "Settlers of Catan" --output "Twilight Imperium"
    python sample.py --desc "Pick a U.S. state uniformly at random." --top 10
    python sample.py --desc "Roll two six-sided dice. What is the sum?" --options 2,3,4,5,6,7,8,9,10,11,12
    python sample.py --messages prompt.json --json

The prompt is a message list (description / input / output) rendered by data.py with the format's
generation prompt, so the model sees exactly what it was trained on. A prompt with neither a
description nor an example output is refused: the model was never trained to produce an output
from nothing.

Sampling is plain ancestral sampling at temperature 1 with no top-k / top-p by default: the model
is trained to match a distribution, and anything that reshapes it changes what you draw from. The
prompt is run once, n rows branch off its KV cache (all reading the prompt's keys/values in place)
and are decoded together, one forward row per distinct history (rows that drew the same tokens so
far share their next-token distribution, each still drawing its own token from it); a row leaves
the batch when it emits the format's end (the closing turn token or eos; colon format: a newline,
as the reference did). --seed makes a run reproducible.

Options are scored with their end token ("7<end_of_turn>" in the Gemma spectrum format), so P("7")
does not include "7 or 8" and a prefix option does not double count; the coverage is the
unnormalized sum of the options' probabilities.

Precision (--dtype auto): sampling runs in bfloat16 where the hardware makes it fast (sampling
noise dwarfs its rounding), else float32; --top and --options are single forwards whose printed
probabilities bf16 would move visibly (total variation ~0.01-0.03 on the two-dice options), so
they run in float32.

On CPU, fast_cpu() runs every projection and the lm_head on oneDNN-prepacked copies of their
weights: decoding is bound by skinny matmuls (8 rows against the weights, most of them the
vocabulary-sized lm_head), and prepacking makes them faster with the same results. It is applied
where oneDNN supports the dtype on this CPU (bf16 needs AVX512 or AVX-NE-CONVERT), else skipped.
"""
import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cli


@dataclass
class SampleConfig:
    ckpt: str = "out"              # a training run, a checkpoint directory, a Hub id, or gemma-3-270m
    desc: str = ""                 # the description of the distribution
    messages: str = ""             # a JSON file with a message list (--desc/--input/--output are added to it)
    format: str = "spectrum"       # spectrum (Spectrum-tuned) | colon (pretrained) | chat (instruction-tuned)
    n: int = 8                     # samples
    temperature: float = 1.0       # 0: greedy
    top_k: int = 0                 # keep the k most probable tokens (0: all)
    top_p: float = 1.0             # keep the most probable tokens holding this mass (1: all)
    max_new_tokens: int = 64
    seed: int = 0
    top: int = 0                   # print the K most probable first tokens instead of sampling
    options: str = ""              # comma-separated options: print their probabilities instead
    options_file: str = ""         # options, one per line
    json: bool = False             # machine-readable output
    dtype: str = "auto"            # auto (see above) | float32 | bfloat16
    device: str = "auto"           # auto | cpu | cuda


class Message(argparse.Action):
    """--input / --output append to one list, so examples keep their command-line order."""

    def __call__(self, parser, ns, value, option_string=None):
        ns.turns = getattr(ns, "turns", []) + [{"role": self.dest, "content": value}]


def parse_args(argv):
    p = cli.parser(SampleConfig, "sample.py", __doc__, choices={"format": ["spectrum", "colon", "chat"],
                                                                "dtype": ["auto", "float32", "bfloat16"]})
    p.add_argument("--input", dest="input", action=Message, help="an input, before the next --output")
    p.add_argument("--output", dest="output", action=Message, help="an example output (repeatable)")
    p.add_argument("-n", dest="n", type=int, help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    cfg, _ = cli.config(SampleConfig, ns)
    if cfg.n < 1 or cfg.max_new_tokens < 1:
        raise cli.UserError("-n and --max_new_tokens must be at least 1")
    if cfg.temperature < 0 or cfg.top_k < 0 or not 0 < cfg.top_p <= 1:
        raise cli.UserError("need --temperature >= 0, --top_k >= 0 and 0 < --top_p <= 1")
    if cfg.top < 0 or (cfg.top and (cfg.options or cfg.options_file)):
        raise cli.UserError("--top K (K >= 1) and --options are separate modes: give one")
    return cfg, build_messages(cfg, getattr(ns, "turns", []))


def build_messages(cfg, turns):
    """The prompt: --messages, then --desc first, then --input/--output in order."""
    messages = []
    if cfg.messages:
        try:
            messages = json.loads(Path(cfg.messages).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise cli.UserError(f"--messages {cfg.messages}: cannot read a JSON message list ({e})") from None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise cli.UserError(f"--messages {cfg.messages}: expected a JSON list of {{\"role\": ..., \"content\": ...}} "
                                f"objects, got {type(messages).__name__}"
                                f"{' of ' + type(messages[0]).__name__ if isinstance(messages, list) and messages else ''}")
    if cfg.desc:
        if messages and messages[0].get("role") == "description":
            raise cli.UserError(f"--desc given, but {cfg.messages} already has a description")
        messages = [{"role": "description", "content": cfg.desc}] + messages
    messages += turns
    if not messages:
        raise cli.UserError("nothing to condition on: the model expects a description or at least one example "
                            "output; pass --desc, --output or --messages")
    return messages


if __name__ == "__main__":  # flags are checked (and --help answered) before torch loads
    CONFIG, MESSAGES = cli.run(parse_args, sys.argv[1:])

import math  # noqa: E402
from functools import partial  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import checkpoint  # noqa: E402
import data  # noqa: E402
import model as M  # noqa: E402


def check_prompt(messages):
    """data.validate, plus the rule of the Spectrum models: something to condition on."""
    data.validate(messages)
    if not any(m["role"] in ("description", "output") for m in messages):
        raise cli.UserError("nothing to condition on: the model expects a description or at least one "
                            "example output (--desc or --output), not only inputs")
    return messages


# --- the CPU fast path ---------------------------------------------------------------------------

def fast_cpu(model):
    """Run every projection and the lm_head of a CPU inference model on a copy of its weight
    pre-packed for oneDNN (the layout torch.compile's weight freezing uses): decoding is faster, with
    the same results (bitwise in bf16, up to fp32 rounding in fp32). Parameters and state_dict are
    untouched (the packed copies cost memory, as much again as the weights). A weight changed by an
    ordinary in-place op is repacked; a fused optimizer step changes weights without bumping their
    version counter, so prepack a model you have finished training. Calls that need gradients take
    the plain path. A no-op off CPU, and where oneDNN has no kernel for the weights' dtype on this
    CPU. Returns the model."""
    w = model.embed_tokens.weight
    if (getattr(model, "prepacked", False) or w.device.type != "cpu" or not torch.backends.mkldnn.is_available()
            or not hasattr(torch.ops.mkldnn, "_linear_pointwise") or w.dtype not in (torch.float32, torch.bfloat16)
            or w.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return model
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.forward = partial(packed_linear, owner=m)
    head = model.embed_tokens if model.config.tie_embeddings else model.lm_head
    model.logits = partial(packed_linear, owner=head)
    model.prepacked = True
    return model


def packed_linear(x, owner):
    """F.linear(x, owner.weight) on the packed copy, repacked when the weight changes."""
    w = owner.weight
    if x.dtype != w.dtype or torch.is_autocast_enabled("cpu") or (torch.is_grad_enabled() and w.requires_grad):
        return F.linear(x, w)
    key = (w.data_ptr(), w._version, w.dtype, tuple(w.shape))
    if getattr(owner, "packed_key", None) != key:
        owner.packed_weight, owner.packed_key = torch.ops.mkldnn._reorder_linear_weight(w.detach(), 8), key
    return torch.ops.mkldnn._linear_pointwise(x, owner.packed_weight, None, "none", [], "")


# --- sampling ----------------------------------------------------------------------------------

def sampler(temperature=1.0, top_k=0, top_p=1.0, generator=None):
    """pick(logits [G, V] fp32, rows, node) -> next ids [B]: one exact draw per row from
    softmax(logits[node[row]] / temperature), restricted to the top_k tokens (ties at the k-th value
    kept) and then to the smallest most-probable set with mass >= top_p. temperature 0 is greedy.
    node (default: row i reads logits[i]) lets rows that share a history share one logits row.
    pick may overwrite `logits` (it works in place: at 262k tokens a row, fresh tensors cost more
    than the arithmetic)."""
    def pick(logits, rows=None, node=None):  # rows: which of the n samples each row is (unused here)
        if temperature == 0:
            best = logits.argmax(-1)
            return best if node is None else best[node]
        if temperature != 1.0:
            logits.div_(temperature)
        if 0 < top_k < logits.shape[-1]:
            kth = logits.topk(top_k).values[:, -1:]
            logits.masked_fill_(logits < kth, float("-inf"))
        probs = torch.ops.aten._softmax.out(logits, 1, False, out=logits)
        if top_p < 1.0:  # drop a token once the more probable ones already hold top_p
            p, order = probs.sort(-1, descending=True)
            probs = probs.scatter(-1, order, p.masked_fill(p.cumsum(-1) - p >= top_p, 0.0))
        u = torch.rand(len(probs) if node is None else len(node), 1, dtype=torch.float64, device=probs.device,
                       generator=generator)
        return inverse_cdf(probs, u, node)

    return pick


def inverse_cdf(probs, u, node=None, block=512):
    """For each row i, the first token whose cumulative probability in probs[node[i]] (default
    probs[i]) exceeds u[i] * that row's total: one exact draw per row (up to float64 rounding),
    5-10x faster than torch.multinomial over 262k tokens. A zero-probability token is never chosen
    (its CDF step is empty). Two levels, so float64 only touches block sums and one block per row:
    find the block, then the token within it."""
    G, V = probs.shape
    node = torch.arange(G, device=probs.device) if node is None else node
    nb = -(-V // block)
    if nb * block != V:
        probs = torch.cat([probs, probs.new_zeros(G, nb * block - V)], 1)
    blocks = probs.view(G, nb, block)
    mass = blocks.sum(-1).double()[node]                                 # [B, nb]
    cdf = mass.cumsum(-1)
    t = u * cdf[:, -1:]
    b = torch.searchsorted(cdf, t, right=True).clamp_(max=nb - 1)       # [B, 1]
    rest = t - (cdf.gather(1, b) - mass.gather(1, b))                   # mass left to cover inside block b
    inner = blocks[node, b[:, 0]].double().cumsum(-1)
    j = torch.searchsorted(inner, rest, right=True).clamp_(max=block - 1)
    return (b * block + j)[:, 0].clamp_(max=V - 1)


def check_length(model, n_prompt, max_new_tokens):
    if n_prompt + max_new_tokens > model.config.max_position_embeddings:
        raise cli.UserError(f"the prompt has {n_prompt} tokens; with --max_new_tokens={max_new_tokens} that is past "
                            f"the model's context of {model.config.max_position_embeddings}: shorten the prompt")


@torch.no_grad()
def sample_ids(model, prompt, n, pick, max_new_tokens=64, stop=()):
    """n continuations of the token ids `prompt`, decoded together on one KV cache.

    The prompt runs once (logits at its last position only). Then every step runs one forward
    row per distinct history, not per sample: rows that have drawn the same tokens so far have
    the same next-token distribution, so they read one logits row and one cache row (a node of
    the tree the samples grow) and each makes its own draw from it. Sampling n from a peaked
    distribution (a die, a short list) thus costs about as much as its distinct prefixes; n
    rows that all differ cost what n rows do. A row that emits a token in `stop` leaves the
    batch, so finished rows cost nothing. pick(logits [G, V] fp32, rows [B], node [B]) draws the
    next token of each live row from logits[node] (rows: their indices in 0..n-1).
    Returns (ids, stopped): per row the generated ids (ending with the stop token if it stopped),
    and whether it stopped before max_new_tokens.
    """
    check_length(model, len(prompt), max_new_tokens)
    device = model.embed_tokens.weight.device
    P = len(prompt)
    is_stop = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=device)
    is_stop[[t for t in stop if t < len(is_stop)]] = True
    cache = M.new_cache(model, 1, P)
    last = torch.zeros(1, P, dtype=torch.bool, device=device)
    last[0, -1] = True
    first = model.logits(model(torch.tensor([prompt], device=device), cache=cache, select=last))
    cache = cache.branch(1, max_new=max_new_tokens)  # one node, the prompt; it grows as rows diverge
    buf = torch.empty(n, first.shape[-1], device=device)  # fp32 logits, reused every step (pick overwrites)
    logits = buf[:1].copy_(first)
    rows, node = torch.arange(n, device=device), torch.zeros(n, dtype=torch.long, device=device)
    out, stopped = [[] for _ in range(n)], [False] * n
    for step in range(max_new_tokens):
        nxt = pick(logits, rows, node)
        for r, t in zip(rows.tolist(), nxt.tolist()):
            out[r].append(t)
        done = is_stop[nxt]
        if done.any():
            for r in rows[done].tolist():
                stopped[r] = True
            rows, nxt, node = rows[~done], nxt[~done], node[~done]
        if not len(rows) or step + 1 == max_new_tokens:
            break
        # the next nodes: one per distinct (node, token), in order of first appearance, so that
        # rows which all differ keep their order and batch exactly as without the tree
        child = {}
        node = torch.tensor([child.setdefault(key, len(child)) for key in zip(node.tolist(), nxt.tolist())],
                            device=device)
        parent = [p for p, _ in child]
        if parent != list(range(len(cache.k[0]))):
            cache.keep(torch.tensor(parent, device=device))
        tokens = torch.tensor([[t] for _, t in child], device=device)
        logits = buf[:len(child)].copy_(model.logits(model(tokens, cache=cache)[:, -1]))
    return out, stopped


def decode_output(tok, ids, stopped, fmt="spectrum"):
    """The text of one generated output: without its stop token; colon cut at the first newline and
    stripped, chat stripped (as data.output_text renders them); spectrum exactly as generated."""
    if stopped and (fmt != "colon" or ids[-1] == tok.eos_id):
        ids = ids[:-1]
    text = tok.decode(ids)
    if fmt == "colon":  # the stop token is a newline token: keep what precedes the newline
        return text.split("\n")[0].strip()
    return text.strip() if fmt == "chat" else text


def generate(model, tok, messages, n=8, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=64,
             seed=0, fmt="spectrum"):
    """(texts, stopped): n samples of the next output after `messages`, and whether each ended by
    itself (False: cut at max_new_tokens)."""
    device = model.embed_tokens.weight.device
    g = torch.Generator(device=device).manual_seed(seed)
    ids, stopped = sample_ids(model, data.prompt_ids(tok, check_prompt(messages), fmt), n,
                              sampler(temperature, top_k, top_p, g), max_new_tokens, data.stop_ids(tok, fmt))
    return [decode_output(tok, i, s, fmt) for i, s in zip(ids, stopped)], stopped


# --- distributions -----------------------------------------------------------------------------

@torch.no_grad()
def top_tokens(model, tok, messages, k=10, fmt="spectrum"):
    """The k most probable first tokens of the next output: [(token text, probability)]."""
    ids = data.prompt_ids(tok, check_prompt(messages), fmt)
    check_length(model, len(ids), 1)
    if not 1 <= k <= model.config.vocab_size:
        raise cli.UserError(f"--top {k}: choose between 1 and the vocabulary size {model.config.vocab_size}")
    device = model.embed_tokens.weight.device
    last = torch.zeros(1, len(ids), dtype=torch.bool, device=device)
    last[0, -1] = True
    probs = model.logits(model(torch.tensor([ids], device=device), select=last))[0].float().softmax(-1)
    p, i = probs.topk(k)
    return [(tok.decode([t]), v) for t, v in zip(i.tolist(), p.tolist())]


def option_probs(model, tok, messages, options, fmt="spectrum"):
    """P(option + end token | prompt) for each option, normalized over the options, and the coverage
    (their unnormalized sum: the share of the model's mass on the options). Returns (probs, coverage)."""
    if not options:
        raise cli.UserError("no options to score")
    dup = next((o for i, o in enumerate(options) if o in options[:i]), None)
    if dup is not None:
        raise cli.UserError(f"option {dup!r} is given twice: each option once (its probability would count twice)")
    ids = data.prompt_ids(tok, check_prompt(messages), fmt)
    conts = [data.output_ids(o, tok, fmt) for o in options]
    check_length(model, len(ids), max(len(c) for c in conts))
    logp = torch.tensor([lp.double().sum().item() for lp in M.continuation_logprobs(model, ids, conts)],
                        dtype=torch.float64)
    total = torch.logsumexp(logp, 0)
    return (logp - total).exp().tolist(), math.exp(total.item())


# --- command line ------------------------------------------------------------------------------

def read_options(cfg):
    if cfg.options_file:
        try:
            lines = Path(cfg.options_file).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise cli.UserError(f"--options_file: {e}") from None
        return [line for line in lines if line.strip()]
    if cfg.options:
        return [o.strip() for o in cfg.options.split(",") if o.strip()]
    return None


def main(cfg: SampleConfig, messages):
    check_prompt(messages)
    options = read_options(cfg)
    if cfg.options and not options:
        raise cli.UserError("--options: no options given")
    scoring = bool(cfg.top or options)
    dtype = "float32" if cfg.dtype == "auto" and scoring else cfg.dtype
    if cfg.ckpt == "out" and not Path("out").exists():
        raise cli.UserError("no checkpoint in out/: run python train.py first, or pass --ckpt")
    try:
        model, tok = checkpoint.load(cfg.ckpt, cfg.device, dtype)
    except cli.UserError as e:
        raise cli.UserError(f"cannot load {cfg.ckpt}: {e}") from None
    fast_cpu(model)
    if cfg.top:
        top = top_tokens(model, tok, messages, cfg.top, cfg.format)
        if cfg.json:
            print(json.dumps({"top": [{"token": t, "prob": p} for t, p in top]}, ensure_ascii=False))
        else:
            for i, (t, p) in enumerate(top):
                print(f"{i + 1:2d}. {t!r} -> {100 * p:.2f}%")
    elif options is not None:
        probs, coverage = option_probs(model, tok, messages, options, cfg.format)
        if cfg.json:
            print(json.dumps({"coverage": coverage, "options": [{"option": o, "prob": p} for o, p in
                                                                zip(options, probs)]}, ensure_ascii=False))
        else:
            print(f"Coverage: {100 * coverage:.2f} %")
            for i, (o, p) in enumerate(zip(options, probs)):
                print(f"{i + 1:2d}. {o!r} -> {p:.4f}")
    else:
        texts, stopped = generate(model, tok, messages, cfg.n, cfg.temperature, cfg.top_k, cfg.top_p,
                                  cfg.max_new_tokens, cfg.seed, cfg.format)
        if cfg.json:
            print(json.dumps({"samples": texts, "stopped": stopped}, ensure_ascii=False))
        else:
            for t in texts:  # one sample per line: newlines inside a sample are shown as \n
                print(t.replace("\n", "\\n"))
            if not all(stopped):
                print(f"({stopped.count(False)} of {len(stopped)} samples hit --max_new_tokens="
                      f"{cfg.max_new_tokens} before ending)", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main, CONFIG, MESSAGES)
