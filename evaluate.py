"""Evaluate a checkpoint on the held-out Spectrum tasks: every metric computed directly from logits.

    python evaluate.py --ckpt out/                          # the Spectrum-tuned model, spectrum format
    python evaluate.py --ckpt gemma-3-270m --format colon   # a pretrained baseline (PT -> colon, IT -> chat)
    python evaluate.py --tasks flight,urn --max_sequences 20
    python evaluate.py --compare A.json B.json              # paired per-task differences, B vs A

Tasks (--tasks): `val` (default) = every held-out task (split "val": their sequences, distribution
prompts and diversity lists) plus the distribution prompts of every task (training reads only
task instances, so every DistPrompt is held out); `offline` = the same restricted to tasks that need
no data files; or a comma list of names (any split). A data-backed task whose files are missing is
skipped with a note under `val`/`offline`, and is an error when named.

Results: a table on stdout and every number (per-output rows included, for --compare) in a JSON
file: `--json PATH`; default `<ckpt dir>/eval_<format>.json` when --ckpt is a local directory,
else `out/eval_<name>_<format>.json` (Hub ids and the embedded gemma-3-270m).

METRICS
=======
Statistics. Outputs of one sequence are not independent, so every steerability number is a
cluster-level estimate: for a subset S of scored outputs (all, k >= 1, one k, ...), each sequence i
with outputs in S gets its mean m_i over them; the estimate is mean_i m_i (each sequence weighs
the same) and its standard error is std(m_i, ddof=1) / sqrt(G) over the G sequences. Distribution
prompts are independent: plain mean and std(ddof=1)/sqrt(n).

1. Steerability (tasks with instances). The paper's protocol (reference_eval.md §1.2), fixed:
   * Sequences: a pool of up to `pool` instances (a seeded permutation), one sequence each drawn by
     data.draw in the spectrum format with the evaluated tokenizer and `max_len` (description
     kept with probability 1 - p_drop, one variant; examples in a seeded random order, whole
     examples up to the budget). The instances themselves are built with the task seed 0.
   * k: the k >= 1 maximizing k * #{pool sequences with >= k+1 outputs} (ties: the smaller k);
     kept sequences are those with >= k+1 outputs, cut after their (k+1)-th output, and the first
     `max_sequences` of them (pool order) are evaluated. k does not depend on max_sequences.
   * The same message lists are rendered in every --format, so spectrum/colon/chat see identical
     examples (their token counts differ; nothing is cut after the draw).
   * Outputs are indexed by their ABSOLUTE number k of prior examples (0..k). An output with k = 0
     and no description is never scored in any format (the spectrum and chat formats cannot score
     it, so colon does not either): `geq_1` means the same outputs in every format.
   Per scored output (teacher forcing, full-vocabulary log-softmax):
   * nll = -sum over its tokens of log p(token | everything before), nats. The tokens are the
     format's scored span: content + <end_of_turn> (spectrum, chat), " " + content + "\\n\\n" (colon).
   * tok_nll = nll / number of those tokens (compare formats with this one too).
   * greedy = 1 iff every one of those tokens, the end token included, is the argmax.
   Per task: `loss`, `tok_loss`, `acc` over all scored outputs; `loss_geq_1`, `tok_loss_geq_1`,
   `acc_geq_1` over outputs with k >= 1 (the paper's headline is loss_geq_1); `curve` = loss per
   k; `with_desc` / `without_desc` = the same on sequences that show / do not show a description.
   Tasks with `options` (categorical): each option is scored as the format's scored span after
   the same prefix (the sequence runs once; the options branch off its keys/values);
   P_i = exp(-nll_i), `option_coverage` = sum_i P_i, q_i = P_i / sum_j P_j. Option metrics are
   taken at every scored output, or, when a sequence has more than `option_outputs` (default 16),
   at that many of them evenly spaced in order (first and last included; the same outputs in every
   format). Each option costs a full-vocabulary softmax per output: a list task with ~150 outputs
   x 9-77 options a sequence would cost more than everything else together.
   * option_acc = 1 iff argmax_i q_i is the gold option (outputs whose gold is not an option
     are left out of option metrics and counted in `gold_not_option`).
   * `option_dist` = mean q over outputs, next to `gold_dist` = the frequency of each gold option.
   * ECE (top-label, 10 equal-width bins): confidence c = max_i q_i, correct = option_acc; bin b
     holds outputs with min(floor(10 c), 9) = b; ECE = sum_b (n_b / N) |mean correct_b - mean c_b|.
     Over all scored outputs (`ece`) and over k >= 1 (`ece_geq_1`); not clustered.
   Bayes gap (instances with an exact posterior predictive `bayes`): bayes_nll = -bayes(description
   shown or None, the k prior examples, the example) of the same output; gap = nll - bayes_nll,
   aggregated like the losses (`bayes_gap`, `bayes_gap_geq_1`, per k in `curve`). The model's nll
   includes the end token, so both are the probability of the exact output string; >= 0 in
   expectation, 0 for the Bayes-optimal model.

2. Distributional alignment (DistPrompts). The prompt (messages + the format's generation prompt)
   runs once; each candidate y_i is scored as the format's scored span (content + end token) on its
   cache: P_i = P(y_i + end | prompt). `coverage` = sum_i P_i; Q = P / coverage. `coverage_prefix`
   = the same without the end token (the reference's definition, which counts continuations such
   as "red." and double counts a candidate that prefixes another). With the target T: eps = 1e-6
   is added to both T and Q, each renormalized (as the reference); natural log;
   `js` = (KL(T||M) + KL(Q||M)) / 2 with M = (T+Q)/2 (a divergence, at most ln 2),
   `kl` = KL(T||Q), `rkl` = KL(Q||T); `mode_match` = 1 iff argmax Q is a mode of T (ties in the
   target count as any of them). Mean and SE over prompts.

3. Diversity / validity (DiversityTasks). Prompts: `description` (description only), `examples`
   (the 3 examples as outputs), `both`; the same messages in every format. n samples (default
   100) at temperature 1, no top-k/top-p, seeded per task and prompt, up to the task's
   max_new_tokens; a sample ends at the end of its turn (<end_of_turn>/<eos>) or at its first
   newline (list items are one line, as the reference's stop strings). A sample that reaches
   max_new_tokens without ending is invalid. Normalization: strip surrounding whitespace; then
   the task's rule judges validity. Uniqueness follows the rule's case policy: if the rule accepts
   the lower- and upper-case forms of every valid sample, the task is case-insensitive and valid
   samples are compared casefolded; otherwise exactly.
   `valid` = #valid / n, `unique` = #distinct valid / #valid (0 if none), `yield` = #distinct
   valid. Per prompt variant and their mean.

4. --compare A.json B.json (B vs A; e.g. A = pretrained in colon, B = Spectrum-tuned).
   Steerability: sequences are paired by id and content hash (the same messages; results from
   different formats pair, since geq_1 covers the same outputs); per sequence the mean of each
   metric over its k >= 1 outputs; d_i = B_i - A_i; a two-sided paired t-test on the d_i (exact
   Student-t p-value), significant at alpha = 0.05; the verdict is improved/degraded by the
   metric's direction (loss lower is better; acc, option_acc higher). Distribution prompts are
   paired by prompt (js, kl; lower is better). Printed per task and as counts improved / unchanged
   / degraded per metric (the paper's "35 of 76 degraded" analysis). Diversity: differences only.

SPEED
=====
Sequences without options are packed into rows (attention kept within each) and run with logits
only at scored positions; a categorical sequence runs once with a KV cache, and at each scored
output its options run as one batch branched off that cache (model.continuation_logprobs: the rows
read the sequence's keys/values in place); a distribution prompt runs once and its candidates as
one batch branched off its cache (bench/score_speed.py: 11 options over a 500-token prompt,
22-31x faster than transformers scoring the padded full sequences). The default dtype is
bfloat16: measured on the real 270M here, a 1024-token forward takes ~0.7x the fp32 time, and
per-output losses move by 0.04-0.09 nats on average (max ~0.6), task means by < 0.003 nats,
option probabilities by < 0.11, with 97% of option argmaxes unchanged; use --dtype float32 for
exact comparisons (tests do). Never float16 on CPU. On a CPU shared with other jobs, run with
OMP_WAIT_POLICY=PASSIVE in the environment: spinning OpenMP threads can slow a forward several-fold.
"""
import hashlib
import json
import math
import random
import re
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

import data
import model as M
import tasks


@dataclass
class EvalConfig:
    ckpt: str = "out"
    tasks: str = "val"              # val | offline | name,name,...
    format: str = "spectrum"        # spectrum (Spectrum-tuned) | colon (pretrained) | chat (instruction-tuned)
    max_sequences: int = 20         # per task: steerability sequences, distribution prompts (paper: 1000)
    pool: int = 1000                # instances drawn to choose k (reference: 1000)
    seed: int = 0
    max_len: int = 1024             # token budget of a drawn sequence (spectrum format)
    p_drop: float = 0.4             # P(no description) per sequence; 0.4 = the reference's actual rate
    n_samples: int = 100            # diversity samples per prompt
    dtype: str = "bfloat16"         # weights and compute; never float16 on CPU (no fast kernels)
    device: str = "auto"
    batch_rows: int = 2             # packed rows per forward
    option_outputs: int = 16        # option metrics on at most this many outputs a sequence (0: all)
    data_dir: str = ""
    json: str = ""


# --- statistics ----------------------------------------------------------------------------------

def mean_se(x):
    """Mean and standard error (ddof=1) of independent values; se is nan for fewer than 2."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def cluster_means(values, clusters):
    """{cluster: mean of its values}, clusters in first-seen order."""
    sums, counts = {}, {}
    for v, c in zip(values, clusters):
        sums[c] = sums.get(c, 0.0) + float(v)
        counts[c] = counts.get(c, 0) + 1
    return {c: sums[c] / counts[c] for c in sums}


def cluster_mean_se(values, clusters):
    """(mean, se, G): the mean of per-cluster means and std(ddof=1)/sqrt(G) over the G clusters."""
    m = list(cluster_means(values, clusters).values())
    return (*mean_se(m), len(m))


def ece(confidence, correct, bins=10):
    """Top-label expected calibration error with equal-width bins (see the module docstring)."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if len(c) == 0:
        return float("nan")
    b = np.minimum((c * bins).astype(int), bins - 1)
    return float(sum(abs(y[b == i].mean() - c[b == i].mean()) * (b == i).sum()
                     for i in range(bins) if (b == i).any()) / len(c))


def dist_metrics(target, q, eps=1e-6):
    """JS divergence, KL(T||Q), KL(Q||T) (nats) after adding eps to both and renormalizing, and
    whether argmax q is a mode of the target."""
    t = np.asarray(target, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    mode = bool(t[int(np.argmax(q))] == t.max())
    t = (t + eps) / (t + eps).sum()
    q = (q + eps) / (q + eps).sum()
    kl = lambda a, b: float(np.sum(a * np.log(a / b)))  # noqa: E731
    m = (t + q) / 2
    return {"js": 0.5 * kl(t, m) + 0.5 * kl(q, m), "kl": kl(t, q), "rkl": kl(q, t), "mode_match": float(mode)}


def softmax(logp):
    """exp(logp) normalized, without underflow when every logp is very negative."""
    x = np.exp(np.asarray(logp, dtype=np.float64) - np.max(logp))
    return x / x.sum()


def betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b) (continued fraction, modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - betainc(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(c * d - 1.0) < 1e-14:
            break
    return front * (f - 1.0)


def t_pvalue(t, df):
    """Two-sided p-value of Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


def paired_test(a, b):
    """Paired t-test of b - a: (mean difference, its se, p two-sided, n)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = len(d)
    if n < 2:
        return float(d.mean()) if n else float("nan"), float("nan"), float("nan"), n
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    if sd == 0:
        return mean, 0.0, 1.0 if mean == 0 else 0.0, n
    return mean, se, t_pvalue(mean / se, n - 1), n


# --- sequences ---------------------------------------------------------------------------------

def digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def split_messages(messages):
    """(description or None, [Example]) of a message list."""
    desc = messages[0]["content"] if messages and messages[0]["role"] == "description" else None
    examples, pending = [], None
    for m in messages:
        if m["role"] == "input":
            pending = m["content"]
        elif m["role"] == "output":
            examples.append(tasks.Example(m["content"], pending))
            pending = None
    return desc, examples


def choose_k(n_outputs):
    """k >= 1 maximizing k * #{n >= k+1} (ties: smaller k); 0 if no sequence has 2 outputs."""
    best, best_k = 0, 0
    for k in range(1, max(n_outputs, default=0)):
        score = k * sum(n >= k + 1 for n in n_outputs)
        if score > best:
            best, best_k = score, k
    return best_k


def eval_sequences(name, instances, tok, cfg: EvalConfig):
    """(k, sequences) of a task: see the module docstring. A sequence is a dict with its id,
    content hash, truncated messages, description and examples."""
    order = list(range(len(instances)))
    random.Random(f"eval/{cfg.seed}/{name}").shuffle(order)
    pool = []
    for i in order[:cfg.pool]:
        try:
            s = data.draw(instances[i], random.Random(f"eval/{cfg.seed}/{name}/{i}"), tok, cfg.p_drop, cfg.max_len)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        if s is not None:
            pool.append((i, s[0]))
    k = choose_k([len(split_messages(m)[1]) for _, m in pool])
    seqs = []
    for i, messages in pool:
        desc, examples = split_messages(messages)
        if k == 0 or len(examples) < k + 1:
            continue
        examples = examples[:k + 1]
        msgs = ([{"role": "description", "content": desc}] if desc is not None else []) + \
            [m for ex in examples for m in data.example_messages(ex)]
        seqs.append({"id": f"{name}/{i}", "hash": digest(msgs), "instance": i, "messages": msgs,
                     "desc": desc, "examples": examples})
        if len(seqs) == cfg.max_sequences:
            break
    return k, seqs


def build(seq, fmt, tok):
    """ids of a sequence in `fmt` and its scored outputs [(j, start, end)], j = absolute index."""
    ids, mask = data.encode(data.render(seq["messages"], fmt), tok)
    spans = data.loss_spans(mask)
    offset = len(seq["examples"]) - len(spans)  # the formats leave out at most the first output
    assert offset in (0, 1), (fmt, len(spans), len(seq["examples"]))
    outs = [(offset + n, s, e) for n, (s, e) in enumerate(spans)]
    return ids, [o for o in outs if o[0] >= 1 or seq["desc"] is not None]


# --- scoring -----------------------------------------------------------------------------------

def device_of(model):
    return model.embed_tokens.weight.device


def output_rows(lp, hit, owners, n_out):
    """Sum token log-probs / all-hit per output index."""
    nll = np.zeros(n_out)
    ntok = np.zeros(n_out, dtype=int)
    greedy = np.ones(n_out, dtype=bool)
    np.add.at(nll, owners, -lp.double().numpy())
    np.add.at(ntok, owners, 1)
    np.logical_and.at(greedy, owners, hit.numpy())
    return nll, ntok, greedy


@torch.no_grad()
def score_packed(model, built, cfg: EvalConfig):
    """Gold scores of many sequences in packed rows. built: [(ids, outs)]. Returns per sequence
    a list of (nll, ntok, greedy) per output in `outs` order."""
    dev = device_of(model)
    flat = [(b, o) for b, (_, outs) in enumerate(built) for o in range(len(outs))]
    index = {bo: n for n, bo in enumerate(flat)}
    row_len = max([cfg.max_len] + [len(ids) for ids, _ in built])
    rows = data.pack([(ids,) for ids, _ in built], row_len)
    nll, ntok, greedy = np.zeros(len(flat)), np.zeros(len(flat), dtype=int), np.ones(len(flat), dtype=bool)
    for r0 in range(0, len(rows), cfg.batch_rows):
        chunk = rows[r0:r0 + cfg.batch_rows]
        ids = torch.zeros(len(chunk), row_len, dtype=torch.long)
        pos = torch.zeros_like(ids)
        seq = torch.full_like(ids, -1)
        select = torch.zeros_like(ids, dtype=torch.bool)
        owner = torch.full_like(ids, -1)
        for r, row in enumerate(chunk):
            at = 0
            for s, b in enumerate(row):
                t, outs = built[b]
                ids[r, at:at + len(t)] = torch.tensor(t)
                pos[r, at:at + len(t)] = torch.arange(len(t))
                seq[r, at:at + len(t)] = s
                for o, (_, start, end) in enumerate(outs):  # token t is predicted at t - 1
                    select[r, at + start - 1:at + end - 1] = True
                    owner[r, at + start - 1:at + end - 1] = index[(b, o)]
                at += len(t)
            pos[r, at:] = torch.arange(row_len - at)
        targets = torch.roll(ids, -1, dims=1)[select]
        h = model(ids.to(dev), pos=pos.to(dev), seq=seq.to(dev), select=select.to(dev), hidden=True)
        lp, hit = M.token_logprobs(model, h, targets.to(dev))
        part = output_rows(lp, hit, owner[select].numpy(), len(flat))
        nll += part[0]
        ntok += part[1]
        greedy &= part[2]  # True for outputs not in this chunk
    out = [[] for _ in built]
    for n, (b, o) in enumerate(flat):
        out[b].append((float(nll[n]), int(ntok[n]), bool(greedy[n])))
    return out


@torch.no_grad()
def score_with_options(model, ids, outs, option_ids, at):
    """Gold scores of one sequence (one cached pass) and, for the outputs outs[n], n in `at`, the
    log-prob of every option's scored span after the same prefix: the options run as one batch per
    output, branched off the sequence's cache (model.continuation_logprobs)."""
    dev = device_of(model)
    cache = M.new_cache(model, 1, len(ids))
    select = torch.zeros(1, len(ids), dtype=torch.bool)
    owner = torch.full((len(ids),), -1)
    for o, (_, s, e) in enumerate(outs):
        select[0, s - 1:e - 1] = True
        owner[s - 1:e - 1] = o
    x = torch.tensor([ids])
    h = model(x.to(dev), cache=cache, select=select.to(dev), hidden=True)
    lp, hit = M.token_logprobs(model, h, torch.roll(x, -1, dims=1)[select].to(dev))
    nll, ntok, greedy = output_rows(lp, hit, owner[select[0]].numpy(), len(outs))
    gold = [(float(a), int(b), bool(c)) for a, b, c in zip(nll, ntok, greedy)]
    opts = [np.array([float(v.double().sum()) for v in
                      M.continuation_logprobs(model, ids[:outs[n][1]], option_ids, cache=cache)]) for n in at]
    return gold, opts


def option_positions(n, cap):
    """Indices of the outputs that get option metrics: all n, or `cap` of them evenly spaced
    (first and last included) when there are more. The same k in every format."""
    if cap <= 0 or n <= cap:
        return list(range(n))
    return sorted({round(i * (n - 1) / (cap - 1)) for i in range(cap)})


def evaluate_steer(model, tok, name, instances, cfg: EvalConfig):
    k, seqs = eval_sequences(name, instances, tok, cfg)
    if not seqs:
        return {"skipped": "no sequence has two outputs within max_len"}
    built = [build(s, cfg.format, tok) for s in seqs]
    # categorical sequences: one cached pass each, options scored on the cache; the rest: packed rows
    rows = [None] * len(seqs)
    plain = [n for n, s in enumerate(seqs) if not instances[s["instance"]].options]
    for n, g in zip(plain, score_packed(model, [built[n] for n in plain], cfg) if plain else []):
        rows[n] = (g, None)
    for n, (s, (ids, outs)) in enumerate(zip(seqs, built)):
        if rows[n] is None:
            oids = [data.output_ids(o, tok, cfg.format) for o in instances[s["instance"]].options]
            at = option_positions(len(outs), cfg.option_outputs)
            gold, opt = score_with_options(model, ids, outs, oids, at)
            rows[n] = (gold, (at, oids, opt))
    out_seqs = []
    for s, (ids, outs), (gold, opt) in zip(seqs, built, rows):
        inst = instances[s["instance"]]
        rec = {"id": s["id"], "hash": s["hash"], "desc": s["desc"] is not None, "n_tokens": len(ids),
               "k": [j for j, _, _ in outs], "nll": [g[0] for g in gold], "ntok": [g[1] for g in gold],
               "greedy": [int(g[2]) for g in gold], "messages": s["messages"]}
        if opt is not None:
            at, oids, opt = opt
            rec["option_at"] = at
            for key in ("option_logp", "option_q", "option_correct", "option_coverage", "gold_option"):
                rec[key] = []
            for n, lp in zip(at, opt):
                _, st, en = outs[n]
                gold_i = next((i for i, o in enumerate(oids) if o == ids[st:en]), None)
                rec["option_logp"].append(lp.tolist())
                rec["option_q"].append(softmax(lp).tolist())
                rec["option_coverage"].append(float(np.exp(lp).sum()))
                rec["gold_option"].append(gold_i)
                rec["option_correct"].append(None if gold_i is None else int(np.argmax(lp) == gold_i))
            rec["options"] = inst.options
        if inst.bayes is not None:
            rec["bayes_nll"] = [-inst.bayes(s["desc"], s["examples"][:j], s["examples"][j]) for j in rec["k"]]
        out_seqs.append(rec)
    res = {"k": k, "n_sequences": len(out_seqs), "n_with_desc": sum(r["desc"] for r in out_seqs),
           "mean_tokens": float(np.mean([r["n_tokens"] for r in out_seqs]))}
    res |= summarize_steer(out_seqs, k)
    res["with_desc"] = summarize_steer([r for r in out_seqs if r["desc"]], k, curve=False)
    res["without_desc"] = summarize_steer([r for r in out_seqs if not r["desc"]], k, curve=False)
    res["sequences"] = out_seqs
    return res


def output_table(seqs):
    """Flat per-output columns of steerability records (one entry per scored output; None where a
    sequence has no such value)."""
    t = defaultdict(list)
    for s in seqs:
        for n, j in enumerate(s["k"]):
            t["seq"].append(s["id"])
            t["k"].append(j)
            t["nll"].append(s["nll"][n])
            t["tok_nll"].append(s["nll"][n] / s["ntok"][n])
            t["greedy"].append(s["greedy"][n])
            b = s["bayes_nll"][n] if "bayes_nll" in s else None
            t["bayes_nll"].append(b)
            t["gap"].append(None if b is None else s["nll"][n] - b)
            m = s["option_at"].index(n) if n in s.get("option_at", ()) else None
            t["opt_correct"].append(None if m is None else s["option_correct"][m])
            t["opt_conf"].append(None if m is None else max(s["option_q"][m]))
    return {c: v for c, v in t.items() if any(x is not None for x in v)}


METRICS = {"loss": "nll", "tok_loss": "tok_nll", "acc": "greedy", "option_acc": "opt_correct",
           "bayes_loss": "bayes_nll", "bayes_gap": "gap"}


def summarize_steer(seqs, k, curve=True):
    """Cluster-level means/SEs of every metric over all outputs and k >= 1 (see the docstring)."""
    t = output_table(seqs)
    res = {}
    if not t:
        return res
    ks = np.array(t["k"])
    for metric, col in METRICS.items():
        if col not in t:
            continue
        vals = np.array([np.nan if v is None else v for v in t[col]], dtype=np.float64)
        for suffix, keep in (("", np.ones(len(ks), bool)), ("_geq_1", ks >= 1)):
            keep = keep & ~np.isnan(vals)
            mean, se, g = cluster_mean_se(vals[keep], np.array(t["seq"])[keep])
            res[metric + suffix] = {"mean": mean, "se": se, "n_seq": g, "n_out": int(keep.sum())}
    if "opt_correct" in t:
        ok = np.array([v is not None for v in t["opt_correct"]])
        conf = np.array([np.nan if v is None else v for v in t["opt_conf"]])
        corr = np.array([v or 0 for v in t["opt_correct"]])
        res["ece"] = ece(conf[ok], corr[ok])
        res["ece_geq_1"] = ece(conf[ok & (ks >= 1)], corr[ok & (ks >= 1)])
        res["gold_not_option"] = sum(g is None for s in seqs for g in s.get("gold_option", []))
        if len({tuple(s["options"]) for s in seqs if "options" in s}) == 1:  # one option set
            res["options"] = next(s["options"] for s in seqs if "options" in s)
            qs = [q for s in seqs for q in s.get("option_q", [])]
            golds = [g for s in seqs for g in s.get("gold_option", []) if g is not None]
            res["option_dist"] = np.mean(qs, axis=0).tolist()
            res["gold_dist"] = (np.bincount(golds, minlength=len(qs[0])) / max(1, len(golds))).tolist()
        res["option_coverage"] = float(np.mean([c for s in seqs for c in s.get("option_coverage", [])]))
    if curve:
        res["curve"] = []
        for j in range(0, k + 1):
            sel = ks == j
            if not sel.any():
                continue
            point = {"k": j, "n": int(sel.sum()), "loss": mean_se(np.array(t["nll"])[sel])}
            if "gap" in t:
                gap = np.array([np.nan if v is None else v for v in t["gap"]])[sel]
                point["bayes_gap"] = mean_se(gap[~np.isnan(gap)])
            res["curve"].append(point)
    return res


# --- distributional alignment ----------------------------------------------------------------------

@torch.no_grad()
def evaluate_dist(model, tok, name, prompts, cfg: EvalConfig):
    order = list(range(len(prompts)))
    random.Random(f"dist/{cfg.seed}/{name}").shuffle(order)
    recs = []
    for i in sorted(order[:cfg.max_sequences]):
        p = prompts[i]
        cands = list(p.target)
        prompt, _ = data.encode(data.render(p.messages, cfg.format, generation_prompt=True), tok)
        full = [data.output_ids(c, tok, cfg.format) for c in cands]
        bare = [data.output_ids(c, tok, cfg.format, end=False) for c in cands]
        lps = M.continuation_logprobs(model, prompt, full)
        logp = np.array([float(v.double().sum()) for v in lps])
        pre = [float(v[:len(b)].double().sum()) if f[:len(b)] == b and b else np.nan
               for v, f, b in zip(lps, full, bare)]
        q = softmax(logp)
        rec = {"id": f"{name}/{i}", "hash": digest([p.messages, p.target]), "coverage": float(np.exp(logp).sum()),
               "coverage_prefix": float(np.sum(np.exp(pre))), "n_targets": len(cands)}
        rec |= dist_metrics([p.target[c] for c in cands], q)
        rec["q"] = q.tolist()
        recs.append(rec)
    res = {"n_prompts": len(recs)}
    for m in ("js", "kl", "rkl", "mode_match", "coverage", "coverage_prefix"):
        mean, se = mean_se([r[m] for r in recs])
        res[m] = {"mean": mean, "se": se, "n": len(recs)}
    res["prompts"] = recs
    return res


# --- diversity / validity ---------------------------------------------------------------------------

VARIANTS = ("description", "examples", "both")


def diversity_messages(d, variant):
    msgs = [{"role": "description", "content": d.description}] if variant != "examples" else []
    if variant != "description":
        msgs += [{"role": "output", "content": e} for e in d.examples]
    return msgs


def diversity_metrics(samples, stopped, valid):
    """valid / unique / yield of n samples (see the docstring for the normalization policy)."""
    n = len(samples)
    strs = [s.strip() for s in samples]
    ok = [bool(st) and valid(s) for s, st in zip(strs, stopped)]
    good = [s for s, o in zip(strs, ok) if o]
    insensitive = all(valid(s.lower()) and valid(s.upper()) for s in good)
    distinct = {s.casefold() if insensitive else s for s in good}
    return {"valid": len(good) / n if n else float("nan"),
            "unique": len(distinct) / len(good) if good else 0.0,
            "yield": len(distinct), "n": n, "truncated": int(sum(not st for st in stopped)),
            "case_insensitive": insensitive}


def generate_samples(model, tok, messages, n, max_new_tokens, seed, fmt):
    """n completions at temperature 1 and whether each ended by itself (end of turn or newline)."""
    import sample
    texts, stopped = sample.generate(model, tok, messages, n=n, temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, seed=seed, fmt=fmt,
                                     return_stopped=True)
    out, ends = [], []
    for t, st in zip(texts, stopped):
        cut = t.find("\n")
        out.append(t if cut < 0 else t[:cut])
        ends.append(bool(st) or cut >= 0)
    return out, ends


def evaluate_diversity(model, tok, d, cfg: EvalConfig):
    res = {"max_new_tokens": d.max_new_tokens, "size": d.size}
    for variant in VARIANTS:
        msgs = diversity_messages(d, variant)
        seed = zlib.crc32(f"{cfg.seed}/{d.name}/{variant}".encode())
        samples, stopped = generate_samples(model, tok, msgs, cfg.n_samples, d.max_new_tokens, seed, cfg.format)
        try:
            res[variant] = diversity_metrics(samples, stopped, d.valid)
        except Exception as e:  # a broken validity rule must not read as "0% valid" (reference §6.21)
            raise SystemExit(f"diversity task {d.name}: its validity rule failed on a sample "
                             f"({type(e).__name__}: {e})") from None
        res[variant]["samples"] = samples
        res[variant]["stopped"] = [int(s) for s in stopped]
    for m in ("valid", "unique", "yield"):
        res[m] = float(np.mean([res[v][m] for v in VARIANTS]))
    return res


# --- the run -----------------------------------------------------------------------------------------

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_ckpt(ckpt):
    """The checkpoint to load: a directory (out/ falls back to out.prev/, where train.py leaves the
    last complete checkpoint if a save was killed between its renames), a Hub id or the embedded
    name; anything else is a one-line error."""
    found = M.last_checkpoint(ckpt)
    if found is not None:
        return str(found)
    if Path(ckpt).is_dir() or ckpt == M.EMBEDDED:
        return ckpt
    if not HUB_ID.fullmatch(ckpt) or Path(ckpt).exists() or ckpt.startswith((".", "/", "~")):
        hint = " (train one first: python train.py)" if Path(ckpt) == Path("out") else ""
        raise SystemExit(f"checkpoint directory {ckpt} does not exist{hint}: pass --ckpt DIR, "
                         f"a Hub id like google/gemma-3-270m, or {M.EMBEDDED}")
    return ckpt


def select_tasks(spec):
    """[(name, kinds, named)] to evaluate; kinds among instances/dist_prompts/diversity."""
    if spec in ("val", "offline"):
        out = []
        for n, t in tasks.TASKS.items():
            if spec == "offline" and t.source != "synthetic":
                continue
            kinds = [k for k in ("instances", "diversity") if t.split == "val" and getattr(t, k) is not None]
            kinds += ["dist_prompts"] if t.dist_prompts is not None else []
            if kinds:
                out.append((n, kinds, False))
        return out
    out = []
    for n in [x.strip() for x in spec.split(",") if x.strip()]:
        try:
            t = tasks.get(n)
        except KeyError as e:
            raise SystemExit(e.args[0]) from None
        out.append((n, [k for k in ("instances", "dist_prompts", "diversity") if getattr(t, k) is not None], True))
    return out


def default_json(cfg, results):
    """<checkpoint dir>/eval_<format>.json for a local checkpoint, else out/eval_<name>_<format>.json."""
    if results.get("local_dir"):
        return Path(results["local_dir"]) / f"eval_{cfg.format}.json"
    return Path("out") / f"eval_{cfg.ckpt.replace('/', '_')}_{cfg.format}.json"


def evaluate(cfg: EvalConfig, model=None, tok=None, log=print):
    """Run every selected task; returns the results dict (also written to JSON by main)."""
    if cfg.format not in ("spectrum", "colon", "chat"):
        raise SystemExit(f"unknown --format {cfg.format!r}: use spectrum, colon or chat")
    if cfg.dtype not in M.DTYPES:
        raise SystemExit(f"unknown --dtype {cfg.dtype!r}: use {', '.join(M.DTYPES)}")
    selected = select_tasks(cfg.tasks)
    local = None
    if model is None:
        try:
            ckpt = check_ckpt(cfg.ckpt)
            local = ckpt if Path(ckpt).is_dir() else None
            path = M.resolve(ckpt)
            tok = M.load_tokenizer(path)
        except (FileNotFoundError, ValueError, ImportError) as e:
            raise SystemExit(str(e).splitlines()[0]) from None
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
        model = M.from_pretrained(path, device=device, dtype=M.DTYPES[cfg.dtype])
    root = tasks.data_dir(cfg.data_dir or None)
    results = {"config": asdict(cfg), "local_dir": local, "steer": {}, "dist": {}, "diversity": {},
               "skipped": {}, "time": {}}
    for name, kinds, named in selected:
        t = tasks.get(name)
        for kind in kinds:
            t0 = time.time()
            try:
                if kind == "instances":
                    r = evaluate_steer(model, tok, name, t.instances(seed=0, data_dir=root), cfg)
                    results["steer"][name] = r
                    msg = f"k={r.get('k')} {r.get('n_sequences', 0)} sequences"
                elif kind == "dist_prompts":
                    r = evaluate_dist(model, tok, name, t.dist_prompts(seed=0, data_dir=root), cfg)
                    results["dist"][name] = r
                    msg = f"{r['n_prompts']} prompts"
                else:
                    d = t.diversity(root) if callable(t.diversity) else t.diversity
                    results["diversity"][name] = evaluate_diversity(model, tok, d, cfg)
                    msg = f"{len(VARIANTS)} x {cfg.n_samples} samples"
            except tasks.MissingData as e:
                if named:
                    raise SystemExit(str(e)) from None
                results["skipped"][name] = str(e)
                continue
            results["time"][f"{name}/{kind}"] = time.time() - t0
            log(f"{name} ({kind}): {msg}, {time.time() - t0:.1f} s")
    return results


# --- the table -------------------------------------------------------------------------------------

def fmt_ms(m, digits=3):
    if m is None:
        return "-"
    mean, se = (m["mean"], m["se"]) if isinstance(m, dict) else m
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.{digits}f}" + (f"±{se:.{digits}f}" if se == se else "")


def table(results) -> str:
    lines = []
    if results["steer"]:
        head = (f"{'steerability':24} {'k':>3} {'seq':>4} {'loss':>13} {'loss_geq_1':>13} {'tok_loss_geq_1':>13} "
                f"{'acc_geq_1':>11} {'opt_acc_geq_1':>13} {'ece':>5} {'bayes_gap_geq_1':>15}")
        lines += [head, "-" * len(head)]
        for n, r in results["steer"].items():
            if "skipped" in r:
                lines.append(f"{n:24} skipped: {r['skipped']}")
                continue
            g = r.get
            lines.append(f"{n:24} {r['k']:>3} {r['n_sequences']:>4} {fmt_ms(g('loss')):>13} "
                         f"{fmt_ms(g('loss_geq_1')):>13} {fmt_ms(g('tok_loss_geq_1')):>13} "
                         f"{fmt_ms(g('acc_geq_1'), 2):>11} {fmt_ms(g('option_acc_geq_1'), 2):>13} "
                         f"{(format(r['ece'], '.3f') if 'ece' in r else '-'):>5} "
                         f"{fmt_ms(g('bayes_gap_geq_1')):>15}")
            for part in ("with_desc", "without_desc"):
                p = r[part]
                if p:
                    lines.append(f"  {part:22} {'':>3} {p['loss']['n_seq']:>4} {fmt_ms(p.get('loss')):>13} "
                                 f"{fmt_ms(p.get('loss_geq_1')):>13} {fmt_ms(p.get('tok_loss_geq_1')):>13} "
                                 f"{fmt_ms(p.get('acc_geq_1'), 2):>11} {fmt_ms(p.get('option_acc_geq_1'), 2):>13}")
        lines.append("")
    if results["dist"]:
        head = (f"{'distributional':24} {'n':>4} {'js':>13} {'kl':>13} {'rkl':>13} {'coverage':>9} "
                f"{'cov_prefix':>10} {'mode':>5}")
        lines += [head, "-" * len(head)]
        for n, r in results["dist"].items():
            lines.append(f"{n:24} {r['n_prompts']:>4} {fmt_ms(r['js']):>13} {fmt_ms(r['kl']):>13} "
                         f"{fmt_ms(r['rkl']):>13} {r['coverage']['mean']:>9.3f} {r['coverage_prefix']['mean']:>10.3f} "
                         f"{r['mode_match']['mean']:>5.2f}")
        lines.append("")
    if results["diversity"]:
        head = f"{'diversity':28} " + " ".join(f"{v + ' v/u/y':>20}" for v in VARIANTS) + f" {'mean v/u/y':>20}"
        lines += [head, "-" * len(head)]
        cell = lambda m: f"{m['valid']:.2f}/{m['unique']:.2f}/{m['yield']:>3.0f}"  # noqa: E731
        for n, r in results["diversity"].items():
            lines.append(f"{n:28} " + " ".join(f"{cell(r[v]):>20}" for v in VARIANTS) + f" {cell(r):>20}")
        lines.append("  (v = valid fraction, u = unique among valid, y = yield: distinct valid)")
    skipped = results.get("skipped", {})
    if skipped:  # every message is in the JSON; `python -m tasks` says where to get each source
        lines.append(f"\nskipped {len(skipped)} tasks whose data files are missing under "
                     f"{tasks.data_dir(results['config']['data_dir'] or None)}/ (python -m tasks lists "
                     f"where to get them; then set --data_dir or SPECTRUM_DATA): {', '.join(skipped)}")
    return "\n".join(lines)


# --- compare -------------------------------------------------------------------------------------

LOWER_IS_BETTER = {"loss": True, "tok_loss": True, "acc": False, "option_acc": False, "js": True, "kl": True}


def seq_metric_means(seqs):
    """{(id, hash): {metric: mean over the sequence's k >= 1 outputs}}."""
    out = {}
    for s in seqs:
        sel = [n for n, j in enumerate(s["k"]) if j >= 1]
        if not sel:
            continue
        m = {"loss": np.mean([s["nll"][n] for n in sel]),
             "tok_loss": np.mean([s["nll"][n] / s["ntok"][n] for n in sel]),
             "acc": np.mean([s["greedy"][n] for n in sel])}
        oc = [c for n, c in zip(s.get("option_at", []), s.get("option_correct", []))
              if s["k"][n] >= 1 and c is not None]
        if oc:
            m["option_acc"] = float(np.mean(oc))
        out[(s["id"], s["hash"])] = m
    return out


def compare(a, b, alpha=0.05):
    """Per-task paired differences B - A and verdicts (see the docstring). Returns rows + counts."""
    rows = []
    for task in sorted(set(a.get("steer", {})) & set(b.get("steer", {}))):
        sa, sb = (seq_metric_means(x["steer"][task].get("sequences", [])) for x in (a, b))
        common = [key for key in sa if key in sb]
        for metric in ("loss", "tok_loss", "acc", "option_acc"):
            keys = [key for key in common if metric in sa[key] and metric in sb[key]]
            if keys:
                rows.append(verdict(task, metric + "_geq_1", metric, [sa[x][metric] for x in keys],
                                    [sb[x][metric] for x in keys], alpha))
    for task in sorted(set(a.get("dist", {})) & set(b.get("dist", {}))):
        pa, pb = ({(p["id"], p["hash"]): p for p in x["dist"][task]["prompts"]} for x in (a, b))
        keys = [key for key in pa if key in pb]
        for metric in ("js", "kl"):
            if keys:
                rows.append(verdict(task, metric, metric, [pa[x][metric] for x in keys],
                                    [pb[x][metric] for x in keys], alpha))
    counts = {}
    for r in rows:
        counts.setdefault(r["metric"], {"improved": 0, "unchanged": 0, "degraded": 0})[r["verdict"]] += 1
    div = []
    for task in sorted(set(a.get("diversity", {})) & set(b.get("diversity", {}))):
        da, db = a["diversity"][task], b["diversity"][task]
        div.append({"task": task, **{m: (da[m], db[m], db[m] - da[m]) for m in ("valid", "unique", "yield")}})
    return {"rows": rows, "counts": counts, "diversity": div}


def verdict(task, metric, base, va, vb, alpha):
    diff, se, p, n = paired_test(va, vb)
    better = (diff < 0) == LOWER_IS_BETTER[base]
    v = "unchanged" if not (p < alpha) else ("improved" if better else "degraded")
    return {"task": task, "metric": metric, "n": n, "a": float(np.mean(va)), "b": float(np.mean(vb)),
            "diff": diff, "se": se, "p": p, "verdict": v}


def compare_table(c, name_a, name_b) -> str:
    head = f"{'task':26} {'metric':18} {'n':>4} {'A':>9} {'B':>9} {'B-A':>9} {'se':>8} {'p':>7}  verdict"
    lines = [f"A = {name_a}\nB = {name_b}", head, "-" * len(head)]
    for r in c["rows"]:
        lines.append(f"{r['task']:26} {r['metric']:18} {r['n']:>4} {r['a']:>9.4f} {r['b']:>9.4f} "
                     f"{r['diff']:>+9.4f} {r['se']:>8.4f} {r['p']:>7.4f}  {r['verdict']}")
    lines.append("")
    for m, k in c["counts"].items():
        total = sum(k.values())
        lines.append(f"{m:18} B vs A over {total} tasks: {k['improved']} improved, {k['unchanged']} unchanged, "
                     f"{k['degraded']} degraded (paired t-test, alpha 0.05)")
    for d in c["diversity"]:
        lines.append(f"diversity {d['task']:28} " + "  ".join(
            f"{m} {d[m][0]:.2f} -> {d[m][1]:.2f}" for m in ("valid", "unique", "yield")))
    return "\n".join(lines)


def load_results(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"--compare: no file {path} (write one with python evaluate.py --json {path})") from None
    except json.JSONDecodeError as e:
        raise SystemExit(f"--compare: {path} is not JSON ({e})") from None


# --- CLI -----------------------------------------------------------------------------------------

HELP = {"ckpt": "checkpoint dir, Hub id, or gemma-3-270m", "tasks": "val | offline | name,name,...",
        "format": "spectrum | colon (pretrained) | chat (instruction-tuned)",
        "max_sequences": "per task: sequences / distribution prompts", "pool": "instances drawn to choose k",
        "max_len": "token budget of a drawn sequence", "p_drop": "P(no description) per sequence",
        "n_samples": "diversity samples per prompt", "dtype": "bfloat16 | float32",
        "option_outputs": "option metrics on at most this many outputs a sequence (0: all)",
        "json": "results file (default: <ckpt dir>/eval_<format>.json or out/eval_<name>_<format>.json)"}


def parse_args(argv):
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line, not usage + error
            raise SystemExit(f"evaluate.py: {message} (see --help)")

    p = Parser(description=__doc__.split("\n\n")[0])
    for f in fields(EvalConfig):
        p.add_argument(f"--{f.name}", type=type(f.default), default=f.default, help=HELP.get(f.name))
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), default=None,
                   help="paired per-task differences of two result files, B vs A")
    args = p.parse_args(argv)
    return EvalConfig(**{f.name: getattr(args, f.name) for f in fields(EvalConfig)}), args.compare


def main(argv):
    cfg, cmp = parse_args(argv)
    if cmp:
        a, b = (load_results(x) for x in cmp)
        c = compare(a, b)
        print(compare_table(c, cmp[0], cmp[1]))
        return c
    t0 = time.time()
    results = evaluate(cfg)
    results["time"]["total"] = time.time() - t0
    out = Path(cfg.json) if cfg.json else default_json(cfg, results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results))
    print()
    print(table(results))
    print(f"\n{cfg.ckpt} ({cfg.format}): {time.time() - t0:.0f} s; every number in {out}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
