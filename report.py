"""What evaluate.py's numbers mean, and everything computed from its per-output records: the
metric registry, summaries, the tables, and the comparison of two result files.

Every metric, defined
=====================
Statistics. Outputs of one sequence are not independent, so every steerability number is a
cluster-level estimate: for a subset S of scored outputs (all, k >= 1, one k, ...), each sequence i
with outputs in S gets its mean m_i over them; the estimate is mean_i m_i (each sequence weighs
the same) and its standard error is std(m_i, ddof=1) / sqrt(G) over the G sequences. Distribution
prompts are independent: plain mean and std(ddof=1)/sqrt(n).

1. Steerability (tasks with instances). The paper's protocol (tsor13/spectrum's fixed-examples eval), fixed:
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

5. Capability (tasks marked capability: single-answer benchmarks such as mmlu, arc, hellaswag,
   winogrande, truthful_qa, drop, gpqa): the same steerability records, shown in their own table
   as accuracy per k (option accuracy where the task has options, else greedy exact match), so a
   run shows steerability and capability side by side.

Adding a metric: one entry in METRICS (per scored output) or DIST_METRICS (per prompt); it then
appears in the summaries, the table and --compare.
"""
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from cli import UserError


# --- the registry ----------------------------------------------------------------------------------

def option_value(s, n, key):
    """The option metric `key` of output n of a sequence record, None where it has none."""
    if n not in s.get("option_at", ()):
        return None
    return s[key][s["option_at"].index(n)]


# Steerability, one value per scored output n of a sequence record s (None: not defined there):
# name -> (value, lower is better; None: not a property of the model, so --compare skips it).
METRICS = {
    "loss": (lambda s, n: s["nll"][n], True),
    "tok_loss": (lambda s, n: s["nll"][n] / s["ntok"][n], True),
    "acc": (lambda s, n: s["greedy"][n], False),
    "option_acc": (lambda s, n: option_value(s, n, "option_correct"), False),
    "bayes_loss": (lambda s, n: s["bayes_nll"][n] if "bayes_nll" in s else None, None),
    "bayes_gap": (lambda s, n: s["nll"][n] - s["bayes_nll"][n] if "bayes_nll" in s else None, True),
}
# Distributional alignment, one value per prompt record: name -> lower is better.
DIST_METRICS = {"js": True, "kl": True, "rkl": True, "mode_match": False, "coverage": False,
                "coverage_prefix": False}
# Diversity, per prompt variant: name -> lower is better.
DIVERSITY_METRICS = {"valid": False, "unique": False, "yield": False}
TABLE = ["loss", "loss_geq_1", "tok_loss_geq_1", "acc_geq_1", "option_acc_geq_1", "bayes_gap_geq_1"]
VARIANTS = ("description", "examples", "both")  # diversity prompts: what the model is shown


# --- statistics ------------------------------------------------------------------------------------

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



# --- summaries -------------------------------------------------------------------------------------

def output_table(seqs):
    """Per scored output: its sequence id, k, and every metric's value (None where undefined)."""
    t = defaultdict(list)
    for s in seqs:
        for n, j in enumerate(s["k"]):
            t["seq"].append(s["id"])
            t["k"].append(j)
            for m, (value, _) in METRICS.items():
                t[m].append(value(s, n))
            t["opt_conf"].append(None if option_value(s, n, "option_q") is None else max(option_value(s, n, "option_q")))
    return t


def column(t, m):
    return np.array([np.nan if v is None else v for v in t[m]], dtype=np.float64)


def summarize_steer(seqs, k, curve=True):
    """Cluster-level means/SEs of every metric over all outputs and k >= 1 (see the docstring)."""
    t = output_table(seqs)
    res = {}
    if not t:
        return res
    ks, ids = np.array(t["k"]), np.array(t["seq"])
    for m in METRICS:
        vals = column(t, m)
        for suffix, keep in (("", np.ones(len(ks), bool)), ("_geq_1", ks >= 1)):
            keep = keep & ~np.isnan(vals)
            if keep.any():
                mean, se, g = cluster_mean_se(vals[keep], ids[keep])
                res[m + suffix] = {"mean": mean, "se": se, "n_seq": g, "n_out": int(keep.sum())}
    if any(v is not None for v in t["option_acc"]):
        ok = ~np.isnan(column(t, "option_acc"))
        conf, corr = column(t, "opt_conf"), np.nan_to_num(column(t, "option_acc"))
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
            if sel.any():
                point = {"k": j, "n": int(sel.sum())}
                for m in METRICS:
                    v = column(t, m)[sel]
                    if (~np.isnan(v)).any():
                        point[m] = mean_se(v[~np.isnan(v)])
                res["curve"].append(point)
    return res


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


# --- tables ------------------------------------------------------------------------------------------

def fmt_ms(m, digits=3):
    if m is None:
        return "-"
    mean, se = (m["mean"], m["se"]) if isinstance(m, dict) else m
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.{digits}f}" + (f"±{se:.{digits}f}" if se == se else "")


def table(results) -> str:
    """The tables on stdout: steerability, capability, distributional alignment, diversity."""
    lines = []
    steer = {n: r for n, r in results["steer"].items() if "skipped" in r or not r.get("capability")}
    if steer:
        cols = TABLE + ["ece"]
        head = f"{'steerability':24} {'k':>3} {'seq':>4} " + " ".join(f"{c:>15}" for c in cols)
        lines += [head, "-" * len(head)]
        cell = lambda r, c: (f"{r[c]:.3f}" if c in r else "-") if c == "ece" else \
            fmt_ms(r.get(c), 2 if "acc" in c else 3)  # noqa: E731
        for n, r in steer.items():
            if "skipped" in r:
                lines.append(f"{n:24} skipped: {r['skipped']}")
                continue
            lines.append(f"{n:24} {r['k']:>3} {r['n_sequences']:>4} " + " ".join(f"{cell(r, c):>15}" for c in cols))
            for part in ("with_desc", "without_desc"):
                if r[part]:
                    lines.append(f"  {part:22} {'':>3} {r[part]['loss']['n_seq']:>4} " +
                                 " ".join(f"{cell(r[part], c):>15}" for c in cols))
        lines.append("")
    cap = {n: r for n, r in results["steer"].items() if r.get("capability")}
    if cap:
        ks = sorted({p["k"] for r in cap.values() for p in r.get("curve", [])})
        ks = [k for k in ks if k in (0, 1, 2, 4, 8) or k == ks[-1]]
        head = f"{'capability (accuracy)':24} {'metric':>10} {'seq':>4} " + " ".join(f"{'k=' + str(k):>6}" for k in ks) + \
            f" {'k>=1':>13}"
        lines += [head, "-" * len(head)]
        for n, r in cap.items():
            m = "option_acc" if "option_acc_geq_1" in r else "acc"
            at = {p["k"]: p.get(m) for p in r.get("curve", [])}
            lines.append(f"{n:24} {m:>10} {r['n_sequences']:>4} " + " ".join(
                f"{at[k][0]:>6.2f}" if at.get(k) else f"{'-':>6}" for k in ks) + f" {fmt_ms(r.get(m + '_geq_1'), 2):>13}")
        lines.append("")
    if results["dist"]:
        head = f"{'distributional':24} {'n':>4} " + " ".join(f"{m:>15}" for m in DIST_METRICS)
        lines += [head, "-" * len(head)]
        for n, r in results["dist"].items():
            lines.append(f"{n:24} {r['n_prompts']:>4} " + " ".join(f"{fmt_ms(r[m]):>15}" for m in DIST_METRICS))
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
        lines.append(f"\nskipped {len(skipped)} tasks whose data files are missing under {results.get('data_dir')}/ "
                     f"(python -m tasks lists where to get them; then set --data_dir or SPECTRUM_DATA): "
                     f"{', '.join(skipped)}")
    return "\n".join(lines)


# --- compare -------------------------------------------------------------------------------------

def seq_metric_means(seqs):
    """{(id, hash): {metric: mean over the sequence's k >= 1 outputs where it is defined}}."""
    out = {}
    for s in seqs:
        means = {}
        for m, (value, _) in METRICS.items():
            vals = [v for n, j in enumerate(s["k"]) if j >= 1 and (v := value(s, n)) is not None]
            if vals:
                means[m] = float(np.mean(vals))
        if means:
            out[(s["id"], s["hash"])] = means
    return out


def compare(a, b, alpha=0.05):
    """Per-task paired differences B - A and verdicts (see the docstring). Returns rows + counts."""
    for name, r in (("A", a), ("B", b)):
        if not isinstance(r, dict) or "steer" not in r:
            raise UserError(f"--compare: file {name} is not a result file of evaluate.py")
    rows = []
    for task in sorted(set(a["steer"]) & set(b["steer"])):
        sa, sb = (seq_metric_means(x["steer"][task].get("sequences", [])) for x in (a, b))
        common = [key for key in sa if key in sb]
        for m, (_, lower) in METRICS.items():
            keys = [key for key in common if m in sa[key] and m in sb[key]]
            if keys and lower is not None:
                rows.append(verdict(task, m + "_geq_1", lower, [sa[x][m] for x in keys],
                                    [sb[x][m] for x in keys], alpha))
    for task in sorted(set(a.get("dist", {})) & set(b.get("dist", {}))):
        pa, pb = ({(p["id"], p["hash"]): p for p in x["dist"][task]["prompts"]} for x in (a, b))
        keys = [key for key in pa if key in pb]
        for m, lower in DIST_METRICS.items():
            if keys and all(m in pa[x] and m in pb[x] for x in keys):
                rows.append(verdict(task, m, lower, [pa[x][m] for x in keys], [pb[x][m] for x in keys], alpha))
    div = []
    for task in sorted(set(a.get("diversity", {})) & set(b.get("diversity", {}))):
        da, db = a["diversity"][task], b["diversity"][task]
        div.append({"task": task, **{m: (da[m], db[m], db[m] - da[m]) for m in DIVERSITY_METRICS}})
    if not rows and not div:
        raise UserError("--compare: the two files have no task with the same sequences or prompts in common "
                        "(evaluate both on the same --tasks, --seed and --max_sequences)")
    counts = {}
    for r in rows:
        counts.setdefault(r["metric"], {"improved": 0, "unchanged": 0, "degraded": 0})[r["verdict"]] += 1
    return {"rows": rows, "counts": counts, "diversity": div}


def verdict(task, metric, lower_is_better, va, vb, alpha):
    diff, se, p, n = paired_test(va, vb)
    better = (diff < 0) == lower_is_better
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
        raise UserError(f"--compare: no file {path} (write one with python evaluate.py --json {path})") from None
    except (OSError, ValueError) as e:
        raise UserError(f"--compare: {path} is not a JSON result file ({e})") from None


