"""Figures of evaluate.py's result files and train.py's log, as small PNGs (800 px wide, 100 dpi).

    python evaluate.py --ckpt out --plot figs                      # one evaluation (+ its run's log)
    python evaluate.py --compare base.json tuned.json --plot figs  # two result files side by side

The figures of results take `results` = {name shown in the legend: a result dict of evaluate.py},
so one figure puts several models (or formats) side by side; each function writes one PNG and
returns its path.
1. loss_vs_k.png: per steerability task, the loss (nats per output, mean and standard error band)
   against k, the number of in-context examples before the output, one line per result, and the
   Bayes-optimal loss as a dashed line where the task has an exact posterior predictive.
2. distributions.png: per distributional-alignment task, its first prompt's target probabilities
   next to each result's normalized candidate probabilities, over the (at most 20) candidates the
   target finds most probable.
3. calibration.png: a reliability diagram of every option-scored output (confidence = the largest
   option probability, correct = it is the gold option), mean accuracy against mean confidence per
   equal-width bin, the number of outputs per bin as faint bars, each result's ECE (report.ece).
4. training.png: train.py's training loss (mean since the previous log line) and held-out loss
   against the optimizer step.
matplotlib is optional: this module imports it only when it draws. Figures are drawn on
matplotlib's Agg canvas directly (no pyplot), so no display is needed and an interactive session's
backend is left alone.
"""
import json
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np

import cli
import report

DPI = 100
WIDTH = 800          # px, every figure
ROW_HEIGHT = 250     # px per row of subplots beyond two rows (up to two rows fit 500 px)
MAX_CANDIDATES = 20  # bars per distribution prompt


# --- the numbers that go into the figures -------------------------------------------------------------

def steer_tasks(results):
    """Steerability tasks with a loss curve in any result, in first-seen order."""
    names = []
    for r in results.values():
        for task, t in r.get("steer", {}).items():
            if "skipped" not in t and t.get("curve") and task not in names:
                names.append(task)
    return names


def curve_points(task_result, metric="loss"):
    """(k, mean, se) arrays of a task's curve where it has `metric` (a point holds (mean, se) per
    metric; se is nan where a k has a single output)."""
    pts = [p for p in task_result.get("curve", []) if p.get(metric) is not None]
    k = np.array([p["k"] for p in pts], dtype=int)
    mean = np.array([p[metric][0] for p in pts], dtype=np.float64)
    se = np.array([p[metric][1] for p in pts], dtype=np.float64)
    return k, mean, se


def bayes_curve(results, task):
    """(k, mean, se) of the Bayes-optimal loss of a task, from the first result that has it (it
    depends on the sequences, not on the model), or None."""
    for r in results.values():
        t = r.get("steer", {}).get(task, {})
        if "skipped" not in t:
            k, mean, se = curve_points(t, "bayes_loss")
            if len(k):
                return k, mean, se
    return None


def dist_tasks(results):
    """Distributional-alignment tasks with at least one prompt in any result, in first-seen order."""
    names = []
    for r in results.values():
        for task, d in r.get("dist", {}).items():
            if d.get("prompts") and task not in names:
                names.append(task)
    return names


def prompt_bars(results, task, max_candidates=MAX_CANDIDATES):
    """The bars of one dist task: (prompt id, candidates shown, target probabilities, {name: the
    model's probabilities}, number of candidates). The prompt is the first one of the first result
    that has the task; the others are matched to it by id and content hash (a result without that
    prompt gets no bars). Shown: the `max_candidates` most probable under the target (ties in
    candidate order)."""
    prompts = [r["dist"][task]["prompts"] for r in results.values() if r.get("dist", {}).get(task, {}).get("prompts")]
    ref = prompts[0][0]
    order = sorted(range(len(ref["candidates"])), key=lambda i: -ref["target"][i])[:max_candidates]
    shown = [ref["candidates"][i] for i in order]
    qs = {}
    for name, r in results.items():
        match = [p for p in r.get("dist", {}).get(task, {}).get("prompts", [])
                 if p["id"] == ref["id"] and p["hash"] == ref["hash"]]
        if match:
            q = dict(zip(match[0]["candidates"], match[0]["q"]))
            qs[name] = np.array([q[c] for c in shown])
    return ref["id"], shown, np.array([ref["target"][i] for i in order]), qs, len(ref["candidates"])


def option_outputs(result):
    """(confidence, correct) arrays over every option-scored output of a result: confidence = the
    largest option probability; outputs whose gold is not an option (correct None) are left out."""
    conf, corr = [], []
    for t in result.get("steer", {}).values():
        if "skipped" in t:
            continue
        for s in t.get("sequences", []):
            if "option_q" not in s or "option_correct" not in s:
                continue
            for q, c in zip(s["option_q"], s["option_correct"]):
                if c is not None:
                    conf.append(max(q))
                    corr.append(c)
    return np.array(conf, dtype=np.float64), np.array(corr, dtype=np.float64)


def reliability(confidence, correct, bins=10):
    """Per equal-width bin (report.ece's binning: bin min(floor(bins c), bins - 1)): the number of
    outputs, their mean confidence and mean accuracy (nan for an empty bin)."""
    c, y = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    b = np.minimum((c * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"n": n, "conf": np.bincount(b, c, minlength=bins) / n, "acc": np.bincount(b, y, minlength=bins) / n}


def read_log(path):
    """train.py's log: ((steps, training losses), (steps, held-out losses))."""
    train, val = ([], []), ([], [])
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if "val_loss" in rec:
                val[0].append(int(rec["step"]))
                val[1].append(float(rec["val_loss"]))
            if "loss" in rec:
                train[0].append(int(rec["step"]))
                train[1].append(float(rec["loss"]))
        except (ValueError, TypeError, KeyError) as e:
            raise cli.UserError(f"{path}: line {i} is not a log record of train.py ({e})") from None
    return train, val


# --- drawing -------------------------------------------------------------------------------------

def require():
    """matplotlib, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise cli.UserError("figures need matplotlib: pip install matplotlib") from None
    return matplotlib


def figure(n_panels=1, max_cols=4):
    """(fig, [axes]) of a grid of n_panels subplots, WIDTH px wide, 500 px high up to two rows and
    ROW_HEIGHT px per row beyond that."""
    require()
    from matplotlib.figure import Figure
    cols = min(max_cols, 1 if n_panels == 1 else 2 if n_panels <= 4 else 3 if n_panels <= 9 else 4)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(WIDTH / DPI, max(500, ROW_HEIGHT * rows) / DPI), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def title(fig, what, names):
    fig.suptitle(textwrap.fill(f"{what}: {' vs '.join(names)}", 110), fontsize=10)


def save(fig, out_png):
    """Write the PNG at exactly the figure's size (no tight bounding box, so sizes are predictable)."""
    out_png = Path(out_png)
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # a label in a script the font lacks (CJK, ...) shows boxes: one warning
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # per glyph would flood stdout
            fig.savefig(out_png, dpi=DPI, format="png")
    except OSError as e:
        raise cli.UserError(f"cannot write the figure {out_png} ({e.strerror or e}): "
                            "pass a writable --plot folder") from None
    return out_png


def colors(results):
    return {name: f"C{i}" for i, name in enumerate(results)}  # the same color per result in every figure


def loss_vs_k(results, out_png):
    """Loss against k per steerability task, one line per result, Bayes-optimal dashed."""
    tasks = steer_tasks(results)
    if not tasks:
        raise cli.UserError("no steerability task with a loss curve in the results: nothing to plot")
    fig, axes = figure(len(tasks))
    color = colors(results)
    for ax, task in zip(axes, tasks):
        top = 0
        for name, r in results.items():
            t = r.get("steer", {}).get(task, {})
            if "skipped" in t or not t.get("curve"):
                continue
            k, mean, se = curve_points(t)
            if not len(k):
                continue
            ax.plot(k, mean, color=color[name], lw=1.3, marker="o" if len(k) <= 12 else None, ms=3, label=name)
            ax.fill_between(k, mean - se, mean + se, color=color[name], alpha=0.2, lw=0)
            top = max(top, k.max())
        bayes = bayes_curve(results, task)
        if bayes is not None:
            ax.plot(bayes[0], bayes[1], color="black", ls="--", lw=1, label="Bayes-optimal")
        integer_k_axis(ax, top)
        ax.set_title(task, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in bottom_row(axes):
        ax.set_xlabel("k", fontsize=8)
    fig.supylabel("loss (nats per output)", fontsize=9)
    legend(fig, axes)
    title(fig, "Loss vs k, the number of in-context examples before the output (mean ± standard error)", results)
    return save(fig, out_png)


def integer_k_axis(ax, top):
    """Ticks at integer k; from k = 16 on, a log scale that keeps k = 0 (linear below 1) with ticks
    0 1 2 5 10 20 50 ..."""
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter
    if top < 16:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        return
    ax.set_xscale("symlog", linthresh=1, linscale=0.5)
    ax.xaxis.set_major_locator(FixedLocator([0, 1] + [m * 10 ** e for e in range(4) for m in (2, 5, 10)
                                                      if m * 10 ** e <= top]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def bottom_row(axes):
    """The panels with no panel below them: they carry the x label."""
    cols = axes[0].get_gridspec().ncols
    return [ax for i, ax in enumerate(axes) if i + cols >= len(axes)]


def legend(fig, axes):
    """One legend for the figure, below the panels: every label once."""
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    cols = 1 if max(map(len, seen)) > 45 else min(4, len(seen))  # long labels (paths) one a line
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=cols, fontsize=8, frameon=False)


def short(s, n=12):
    s = " ".join(str(s).split())  # newlines and runs of spaces would break the tick labels
    return s if len(s) <= n else s[:n - 1] + "…"


def distributions(results, out_png, max_prompts=6):
    """Target vs each result's probabilities on the first prompt of up to max_prompts dist tasks."""
    tasks = dist_tasks(results)[:max_prompts]
    if not tasks:
        raise cli.UserError("no distributional-alignment prompt in the results: nothing to plot")
    fig, axes = figure(len(tasks), max_cols=2)
    color = colors(results)
    for ax, task in zip(axes, tasks):
        pid, shown, target, qs, n_cand = prompt_bars(results, task)
        x = np.arange(len(shown))
        width = 0.8 / (1 + len(qs))
        ax.bar(x, target, width, color="0.35", label="target")
        for i, (name, q) in enumerate(qs.items(), 1):
            ax.bar(x + i * width, q, width, color=color[name], label=name)
        ax.set_xticks(x + width * len(qs) / 2, [short(c) for c in shown], rotation=60, ha="right",
                      rotation_mode="anchor", fontsize=6 if len(shown) > 10 else 7)
        ax.set_title(f"{pid}" + (f" ({len(shown)} of {n_cand} candidates)" if len(shown) < n_cand else ""),
                     fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.supylabel("probability", fontsize=9)
    legend(fig, axes)
    title(fig, "Distributional alignment, first prompt per task: target vs model", results)
    return save(fig, out_png)


def calibration(results, out_png, bins=10):
    """Reliability diagram of the option-scored outputs of every result, with each one's ECE."""
    data = {name: option_outputs(r) for name, r in results.items()}
    data = {name: d for name, d in data.items() if len(d[0])}
    if not data:
        raise cli.UserError("no option-scored outputs in the results: nothing to plot")
    fig, (ax,) = figure(1)
    counts = ax.twinx()  # the histogram behind, on its own axis
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    color = colors(results)
    edges = np.linspace(0, 1, bins + 1)
    width = (1 / bins) / len(data)
    top = 0
    for i, (name, (conf, corr)) in enumerate(data.items()):
        rel = reliability(conf, corr, bins)
        ax.plot(rel["conf"], rel["acc"], color=color[name], marker="o", ms=4, lw=1.3,
                label=f"{name}: ECE {report.ece(conf, corr, bins):.3f} (n = {len(conf)})")
        counts.bar(edges[:-1] + i * width, rel["n"], width, align="edge", color=color[name], alpha=0.18)
        top = max(top, rel["n"].max())
    ax.plot([0, 1], [0, 1], color="0.4", ls=":", lw=1, label="perfect calibration")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.03), xlabel="confidence (largest option probability), mean per bin",
           ylabel="accuracy (argmax is the gold option), mean per bin")
    counts.set_ylim(0, 3 * top)  # bars in the lower third
    counts.set_ylabel("outputs per bin", color="0.5", fontsize=8)
    counts.tick_params(labelsize=7, colors="0.5")
    ax.grid(alpha=0.3)
    legend(fig, [ax])
    title(fig, f"Calibration of option probabilities ({bins} equal-width bins)", results)
    return save(fig, out_png)


def training(log_jsonl, out_png):
    """Training and held-out loss against step, from train.py's log.jsonl."""
    (ts, tl), (vs, vl) = read_log(log_jsonl)
    if not ts and not vs:
        raise cli.UserError(f"{log_jsonl} has no loss records: nothing to plot")
    fig, (ax,) = figure(1)
    from matplotlib.ticker import MaxNLocator
    ax.plot(ts, tl, color="C0", lw=1.3, marker="o" if len(ts) <= 30 else None, ms=3,
            label="training loss (mean since the previous log line)")
    ax.plot(vs, vl, color="C3", lw=1.3, marker="o", ms=4, label="held-out loss")
    ax.set(xlabel="step", ylabel="loss (nats per token)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(textwrap.fill(f"Training and held-out loss vs step: {log_jsonl}", 110), fontsize=10)
    return save(fig, out_png)


def plot_all(results, out_dir, log=None):
    """Every figure there is something to show for, into out_dir; returns the paths written."""
    out_dir = Path(out_dir)
    paths = []
    if steer_tasks(results):
        paths.append(loss_vs_k(results, out_dir / "loss_vs_k.png"))
    if dist_tasks(results):
        paths.append(distributions(results, out_dir / "distributions.png"))
    if any(len(option_outputs(r)[0]) for r in results.values()):
        paths.append(calibration(results, out_dir / "calibration.png"))
    if log is not None and Path(log).exists():
        paths.append(training(log, out_dir / "training.png"))
    return paths
