"""Evaluate a checkpoint on the held-out Spectrum tasks: every metric computed directly from logits.

    python evaluate.py --ckpt out                           # the Spectrum-tuned run, spectrum format
    python evaluate.py --ckpt gemma-3-270m --format colon   # a pretrained baseline (PT -> colon, IT -> chat)
    python evaluate.py --tasks flight,urn --max_sequences 20
    python evaluate.py --compare A.json B.json              # paired per-task differences, B vs A
    python evaluate.py --compare A.json B.json --plot figs  # ... and figures of both (plots.py; needs matplotlib)

Tasks (--tasks): `val` (default) = every held-out task (split "val": their sequences, distribution
prompts and diversity lists) plus the distribution prompts of every task (training reads only
task instances, so every DistPrompt is held out); `offline` = the same restricted to tasks that need
no data files; or a comma list of names (any split). A data-backed task whose files are missing is
skipped with a note under `val`/`offline`, and is an error when named.

Results: tables on stdout (report.table) and every number, per-output records included (for
--compare), in a JSON file: `--json PATH`, by default `<run>/eval_<format>.json` for a training run
(beside its checkpoints, which saves never touch) and `out/eval_<name>_<format>.json` for any other
checkpoint. Every metric is defined in report.py's docstring, where the metric registry lives.

Speed: sequences without options are packed into rows (attention kept within each) and run with
logits only at scored positions; a categorical sequence runs once with a KV cache, and the
options of all its scored outputs run in one more pass branched off that cache, as trees that
share the options' common first tokens (model.forest_logprobs: they read the sequence's
keys/values in place); a distribution prompt runs once and its candidates as one tree on its cache. --dtype auto computes in bfloat16 where it is
fast: on the real 270M that moves per-output losses by 0.04-0.09 nats on average (max ~0.6), task
means by < 0.003 nats, option probabilities by < 0.11, with 97% of option argmaxes unchanged; use
--dtype float32 for exact comparisons (tests do). On a CPU shared with other jobs, run with
OMP_WAIT_POLICY=PASSIVE in the environment: spinning OpenMP threads can slow a forward several-fold.
"""
import sys
from dataclasses import dataclass

import cli


@dataclass
class EvalConfig:
    ckpt: str = "out"               # a training run, a checkpoint directory, a Hub id, or gemma-3-270m
    tasks: str = "val"              # val | offline | name,name,...
    format: str = "spectrum"        # spectrum (Spectrum-tuned) | colon (pretrained) | chat (instruction-tuned)
    max_sequences: int = 20         # per task: steerability sequences and distribution prompts (paper: 1000)
    pool: int = 1000                # instances drawn to choose k (as the reference)
    seed: int = 0
    max_len: int = 512              # token budget of a drawn sequence (spectrum format; train.py's default)
    p_drop: float = 0.4             # P(no description) per sequence; 0.4 = the reference's actual rate
    n_samples: int = 100            # diversity samples per prompt
    option_outputs: int = 16        # option metrics on at most this many outputs a sequence (0: all)
    batch_rows: int = 2             # packed rows per forward
    dtype: str = "auto"             # auto (bfloat16 where it is fast, else float32) | float32 | bfloat16
    device: str = "auto"            # auto | cpu | cuda
    data_dir: str = ""              # data files of data-backed tasks (default: $SPECTRUM_DATA, else data/)
    json: str = ""                  # results file (default: see above)
    plot: str = ""                  # also write figures (PNG, plots.py) into this folder; needs matplotlib


def parse_args(argv):
    """(config, [A.json, B.json] or None)."""
    p = cli.parser(EvalConfig, "evaluate.py", __doc__, choices={"format": ["spectrum", "colon", "chat"],
                                                                 "dtype": ["auto", "float32", "bfloat16"]})
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="paired per-task differences of two result files, B vs A")
    ns = p.parse_args(argv)
    cfg, _ = cli.config(EvalConfig, ns)
    for name in ("max_sequences", "pool", "n_samples", "batch_rows", "max_len"):
        if getattr(cfg, name) < 1:
            raise cli.UserError(f"--{name} must be at least 1")
    if not 0 <= cfg.p_drop <= 1 or cfg.option_outputs < 0:
        raise cli.UserError("--p_drop is a probability and --option_outputs is 0 (all) or positive")
    return cfg, getattr(ns, "compare", None)


if __name__ == "__main__":  # flags are checked (and --help answered) before torch loads
    CONFIG, COMPARE = cli.run(parse_args, sys.argv[1:])

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import checkpoint  # noqa: E402
import data  # noqa: E402
import model as M  # noqa: E402
import report  # noqa: E402
import sample  # noqa: E402
import tasks  # noqa: E402


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
        s = data.draw(instances[i], random.Random(f"eval/{cfg.seed}/{name}/{i}"), tok, cfg.p_drop, cfg.max_len)
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
    ids, mask = data.encode(data.render(seq["messages"], tok, fmt), tok)
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
        h = model(ids.to(dev), pos=pos.to(dev), seq=seq.to(dev), select=select.to(dev))
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
    log-prob of every option's scored span after the same prefix: all of them in one pass branched
    off the sequence's cache (model.forest_logprobs)."""
    dev = device_of(model)
    cache = M.new_cache(model, 1, len(ids))
    select = torch.zeros(1, len(ids), dtype=torch.bool)
    owner = torch.full((len(ids),), -1)
    for o, (_, s, e) in enumerate(outs):
        select[0, s - 1:e - 1] = True
        owner[s - 1:e - 1] = o
    x = torch.tensor([ids])
    h = model(x.to(dev), cache=cache, select=select.to(dev))
    lp, hit = M.token_logprobs(model, h, torch.roll(x, -1, dims=1)[select].to(dev))
    nll, ntok, greedy = output_rows(lp, hit, owner[select[0]].numpy(), len(outs))
    gold = [(float(a), int(b), bool(c)) for a, b, c in zip(nll, ntok, greedy)]
    forest = M.forest_logprobs(model, ids, [(outs[n][1], option_ids) for n in at], cache=cache)
    return gold, [np.array([float(v.double().sum()) for v in lps]) for lps in forest]


def option_positions(n, cap):
    """Indices of the outputs that get option metrics: all n, or `cap` of them evenly spaced
    (first and last included) when there are more. The same k in every format."""
    if cap <= 0 or n <= cap:
        return list(range(n))
    return sorted({round(i * (n - 1) / (cap - 1)) for i in range(cap)})


def evaluate_steer(model, tok, name, instances, cfg: EvalConfig):
    instances, dropped = data.drop_long_examples(instances, tok, cfg.max_len)
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
            scored = [data.output_text(o, tok, cfg.format) for o in inst.options]
            for n, lp in zip(at, opt):  # the gold option: the one whose scored text is the output's
                gold = data.output_text(s["examples"][outs[n][0]].output, tok, cfg.format)
                gold_i = scored.index(gold) if gold in scored else None
                rec["option_logp"].append(lp.tolist())
                rec["option_q"].append(report.softmax(lp).tolist())
                rec["option_coverage"].append(float(np.exp(lp).sum()))
                rec["gold_option"].append(gold_i)
                rec["option_correct"].append(None if gold_i is None else int(np.argmax(lp) == gold_i))
            rec["options"] = inst.options
        if inst.bayes is not None:
            rec["bayes_nll"] = [-inst.bayes(s["desc"], s["examples"][:j], s["examples"][j]) for j in rec["k"]]
        out_seqs.append(rec)
    res = {"k": k, "n_sequences": len(out_seqs), "n_with_desc": sum(r["desc"] for r in out_seqs),
           "examples_longer_than_max_len": dropped.get(name, 0),
           "mean_tokens": float(np.mean([r["n_tokens"] for r in out_seqs]))}
    res |= report.summarize_steer(out_seqs, k)
    res["with_desc"] = report.summarize_steer([r for r in out_seqs if r["desc"]], k, curve=False)
    res["without_desc"] = report.summarize_steer([r for r in out_seqs if not r["desc"]], k, curve=False)
    res["sequences"] = out_seqs
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
        prompt = data.prompt_ids(tok, p.messages, cfg.format)
        full = [data.output_ids(c, tok, cfg.format) for c in cands]
        bare = [data.output_ids(c, tok, cfg.format, end=False) for c in cands]
        lps = M.continuation_logprobs(model, prompt, full)
        logp = np.array([float(v.double().sum()) for v in lps])
        pre = [float(v[:len(b)].double().sum()) if f[:len(b)] == b and b else np.nan
               for v, f, b in zip(lps, full, bare)]
        q = report.softmax(logp)
        rec = {"id": f"{name}/{i}", "hash": digest([p.messages, p.target]), "coverage": float(np.exp(logp).sum()),
               "coverage_prefix": float(np.sum(np.exp(pre))), "n_targets": len(cands)}
        rec |= report.dist_metrics([p.target[c] for c in cands], q)
        rec |= {"q": q.tolist(), "candidates": cands, "target": [p.target[c] for c in cands]}
        recs.append(rec)
    res = {"n_prompts": len(recs)}
    for m in report.DIST_METRICS:
        mean, se = report.mean_se([r[m] for r in recs])
        res[m] = {"mean": mean, "se": se, "n": len(recs)}
    res["prompts"] = recs
    return res


# --- diversity / validity ---------------------------------------------------------------------------

def diversity_messages(d, variant):
    msgs = [{"role": "description", "content": d.description}] if variant != "examples" else []
    if variant != "description":
        msgs += [{"role": "output", "content": e} for e in d.examples]
    return msgs


def generate_samples(model, tok, messages, n, max_new_tokens, seed, fmt):
    """n completions at temperature 1 and whether each ended by itself (end of turn or newline)."""
    texts, stopped = sample.generate(model, tok, messages, n=n, temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, seed=seed, fmt=fmt)
    out, ends = [], []
    for t, st in zip(texts, stopped):
        cut = t.find("\n")
        out.append(t if cut < 0 else t[:cut])
        ends.append(bool(st) or cut >= 0)
    return out, ends


def evaluate_diversity(model, tok, d, cfg: EvalConfig):
    res = {"max_new_tokens": d.max_new_tokens, "size": d.size}
    for variant in report.VARIANTS:
        msgs = diversity_messages(d, variant)
        seed = zlib.crc32(f"{cfg.seed}/{d.name}/{variant}".encode())
        samples, stopped = generate_samples(model, tok, msgs, cfg.n_samples, d.max_new_tokens, seed, cfg.format)
        try:
            res[variant] = report.diversity_metrics(samples, stopped, d.valid)
        except Exception as e:  # a broken validity rule must not read as "0% valid"
            raise RuntimeError(f"diversity task {d.name}: its validity rule failed on a sample") from e
        res[variant]["samples"] = samples
        res[variant]["stopped"] = [int(s) for s in stopped]
    for m in report.DIVERSITY_METRICS:
        res[m] = float(np.mean([res[v][m] for v in report.VARIANTS]))
    return res


# --- the run -----------------------------------------------------------------------------------------

def select_tasks(spec):
    """[(name, kinds, named)] to evaluate; kinds among instances/dist_prompts/diversity."""
    if spec in ("val", "offline"):
        out = []
        for n, t in tasks.TASKS.items():
            if spec == "offline" and t.files:
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
            raise cli.UserError(e.args[0]) from None
        out.append((n, [k for k in ("instances", "dist_prompts", "diversity") if getattr(t, k) is not None], True))
    if not out:
        raise cli.UserError(f"--tasks={spec!r} selects no tasks: give val, offline or task names")
    return out


def results_path(cfg: EvalConfig) -> Path:
    """--json, else <run>/eval_<format>.json for a training run, else out/eval_<name>_<format>.json."""
    if cfg.json:
        return Path(cfg.json)
    run = Path(cfg.ckpt)
    if run.is_dir() and checkpoint.latest_checkpoint(run) is not None:
        return run / f"eval_{cfg.format}.json"
    return Path("out") / f"eval_{str(cfg.ckpt).strip('/').replace('/', '_')}_{cfg.format}.json"


def check_writable(path: Path):
    """Fail before the evaluation, not after it: the results file must be writable (a folder this
    creates to try is removed again; the results are written there at the end)."""
    created = [p for p in reversed(path.parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
        for p in reversed(created):
            p.rmdir()
    except OSError as e:
        raise cli.UserError(f"cannot write the results to {path} ({e.strerror or e}): pass a writable --json") from None


def evaluate(cfg: EvalConfig, model, tok, log=print):
    """Run every selected task on a loaded model; returns the results (the JSON file's content)."""
    from tqdm import tqdm
    root = tasks.data_dir(cfg.data_dir or None)
    results = {"config": asdict(cfg), "data_dir": str(root), "dtype": str(model.embed_tokens.weight.dtype),
               "steer": {}, "dist": {}, "diversity": {}, "skipped": {}, "time": {}}
    selected = select_tasks(cfg.tasks)
    bar = tqdm(selected, desc="evaluate", unit="task", dynamic_ncols=True, disable=log is None)
    for name, kinds, named in bar:
        t = tasks.get(name)
        bar.set_postfix_str(name)
        for kind in kinds:
            t0 = time.time()
            try:
                if kind == "instances":
                    r = evaluate_steer(model, tok, name, t.instances(seed=0, data_dir=root), cfg)
                    r["capability"] = t.capability
                    results["steer"][name] = r
                    msg = f"k={r.get('k')} {r.get('n_sequences', 0)} sequences"
                elif kind == "dist_prompts":
                    r = evaluate_dist(model, tok, name, t.dist_prompts(seed=0, data_dir=root), cfg)
                    results["dist"][name] = r
                    msg = f"{r['n_prompts']} prompts"
                else:
                    d = t.diversity(root) if callable(t.diversity) else t.diversity
                    results["diversity"][name] = evaluate_diversity(model, tok, d, cfg)
                    msg = f"{len(report.VARIANTS)} x {cfg.n_samples} samples"
            except tasks.MissingData as e:
                if named:
                    raise cli.UserError(str(e)) from None
                results["skipped"][name] = str(e)
                continue
            results["time"][f"{name}/{kind}"] = time.time() - t0
            if log:
                bar.write(f"{name} ({kind}): {msg}, {time.time() - t0:.1f} s")
    return results


def write_figures(results, out_dir, log=None):
    import plots
    for p in plots.plot_all(results, out_dir, log):
        print(f"figure: {p}")


def main(cfg: EvalConfig, compare):
    if cfg.plot:  # without matplotlib, say so before any work
        import plots
        plots.require()
    if compare:
        a, b = (report.load_results(x) for x in compare)
        c = report.compare(a, b)
        print(report.compare_table(c, compare[0], compare[1]))
        if cfg.plot:  # legend names: the file stems, or the paths when the stems are the same
            names = [Path(x).stem for x in compare] if Path(compare[0]).stem != Path(compare[1]).stem else compare
            write_figures({names[0]: a, names[1]: b}, cfg.plot)
        return c
    t0 = time.time()
    select_tasks(cfg.tasks)  # a bad task name fails before the model loads
    if cfg.ckpt == "out" and not Path("out").exists():
        raise cli.UserError("no checkpoint in out/: run python train.py first, or pass --ckpt")
    out = results_path(cfg)
    check_writable(out)
    model, tok = checkpoint.load(cfg.ckpt, cfg.device, cfg.dtype)
    data.render([{"role": "description", "content": "x"}], tok, cfg.format)  # a format this tokenizer can't write
    sample.fast_cpu(model)
    dev = model.embed_tokens.weight.device
    print(f"{cfg.ckpt}: {model.config.family}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, "
          f"{dev.type}{f' ({checkpoint.cpu_description()})' if dev.type == 'cpu' else ''}, "
          f"{str(model.embed_tokens.weight.dtype).removeprefix('torch.')}, format {cfg.format}", flush=True)
    results = evaluate(cfg, model, tok)
    results["time"]["total"] = time.time() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results))
    os.replace(tmp, out)
    print()
    print(report.table(results))
    print(f"\n{cfg.ckpt} ({cfg.format}): {time.time() - t0:.0f} s; every number in {out}")
    if cfg.plot:  # a training run's log.jsonl too
        run = Path(cfg.ckpt)
        log = run / "log.jsonl" if run.is_dir() and checkpoint.latest_checkpoint(run) is not None else None
        write_figures({f"{cfg.ckpt} ({cfg.format})": results}, cfg.plot, log)
    return results


if __name__ == "__main__":
    cli.run(main, CONFIG, COMPARE)
