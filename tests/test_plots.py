"""plots.py: the numbers behind each figure against hand computations (curve points, the bars of a
distribution prompt, reliability bins and the ECE in the legend, the training log), every figure as
a PNG of the expected size, and evaluate.py --plot end to end on two synthetic result files."""
import json
import math
import struct
import sys

import numpy as np
import pytest

import cli
import evaluate as E
import plots
import report

pytest.importorskip("matplotlib", reason="figures need matplotlib (pip install matplotlib)")


# --- synthetic result records, in the shapes evaluate.py writes ---------------------------------------

def point(k, n, loss, se, bayes=None):
    """A curve point: {"k", "n", metric: (mean, se), ...}."""
    p = {"k": k, "n": n, "loss": [loss, se], "tok_loss": [loss / 2, se / 2], "acc": [0.5, 0.1]}
    if bayes is not None:
        p["bayes_loss"] = [bayes, 0.01]
        p["bayes_gap"] = [loss - bayes, se]
    return p


def sequence(task, i, nll, option_q=None, correct=None):
    """A steerability sequence record with outputs k = 0.. and, given option_q, option metrics at
    every output (option_correct None: the gold is not an option)."""
    s = {"id": f"{task}/{i}", "hash": f"h{i}", "desc": True, "n_tokens": 40, "k": list(range(len(nll))),
         "nll": nll, "ntok": [2] * len(nll), "greedy": [0] * len(nll),
         "messages": [{"role": "description", "content": "d"}] + [{"role": "output", "content": "x"}] * len(nll)}
    if option_q is not None:
        s |= {"option_at": list(range(len(option_q))), "option_q": option_q, "option_correct": correct,
              "option_logp": [[math.log(p) if p > 0 else -1e4 for p in q] for q in option_q],
              "option_coverage": [0.9] * len(option_q),
              "gold_option": [None if c is None else 0 for c in correct], "options": ["a", "b", "c"]}
    return s


def prompt(task, i, candidates, target, q, hash_="p"):
    rec = {"id": f"{task}/{i}", "hash": hash_, "coverage": 0.5, "coverage_prefix": 0.6,
           "n_targets": len(candidates)}
    rec |= report.dist_metrics(target, q)
    return rec | {"q": list(q), "candidates": list(candidates), "target": list(target)}


def result(steer=None, dist=None):
    return {"config": {}, "data_dir": "data", "dtype": "torch.float32", "steer": steer or {}, "dist": dist or {},
            "diversity": {}, "skipped": {}, "time": {}}


def steer_task(curve, sequences=()):
    return {"k": curve[-1]["k"], "n_sequences": len(sequences), "curve": curve, "sequences": list(sequences)}


def png_size(path):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", data[16:24])  # the IHDR chunk: width, height


# --- the numbers -----------------------------------------------------------------------------------

def test_curve_points_and_the_bayes_line():
    a = result({"t": steer_task([point(0, 3, 4.0, 0.5), point(1, 3, 3.0, float("nan")), point(2, 2, 2.5, 0.2)]),
                "gone": {"skipped": "no sequence has two outputs within max_len"}})
    b = result({"u": steer_task([point(0, 2, 5.0, 0.1, bayes=1.5), point(1, 2, 4.0, 0.1, bayes=1.25)]),
                "t": steer_task([point(0, 3, 3.5, 0.4, bayes=2.0), point(2, 2, 2.0, 0.1, bayes=1.0)])})
    assert plots.steer_tasks({"A": a, "B": b}) == ["t", "u"]  # first-seen order; skipped tasks left out
    k, mean, se = plots.curve_points(a["steer"]["t"])
    assert k.tolist() == [0, 1, 2] and mean.tolist() == [4.0, 3.0, 2.5]
    assert se[0] == 0.5 and math.isnan(se[1]) and se[2] == 0.2
    k, mean, _ = plots.bayes_curve({"A": a, "B": b}, "t")  # A has none for t: B's
    assert k.tolist() == [0, 2] and mean.tolist() == [2.0, 1.0]
    assert plots.bayes_curve({"A": a}, "t") is None


def test_curve_points_read_report_summaries():
    """The curve evaluate.py writes (report.summarize_steer): per-k means and SEs by hand."""
    seqs = [sequence("t", 0, [1.0, 2.0, 3.0]), sequence("t", 1, [3.0, 4.0, 5.0])]
    summary = json.loads(json.dumps(report.summarize_steer(seqs, 2)))  # as read back from the file
    k, mean, se = plots.curve_points(summary)
    assert k.tolist() == [0, 1, 2]
    assert mean.tolist() == pytest.approx([2.0, 3.0, 4.0])
    assert se.tolist() == pytest.approx([1.0, 1.0, 1.0])  # std([1, 3], ddof=1) / sqrt(2)


def test_prompt_bars_top_candidates_matched_by_id_and_hash():
    cands = [f"c{i}" for i in range(25)]
    target = np.arange(1, 26) / np.arange(1, 26).sum()  # c24 most probable
    q = np.full(25, 1 / 25)
    a = result(dist={"d": {"prompts": [prompt("d", 3, cands, target, q), prompt("d", 5, cands, target, q, "x")]}})
    # B: the same prompt second, its candidates in another order; C: the same id, other content
    perm = list(reversed(range(25)))
    q_b = np.arange(25) / np.arange(25).sum()
    b = result(dist={"d": {"prompts": [prompt("d", 1, cands, target, q),
                                       prompt("d", 3, [cands[i] for i in perm], target[perm], q_b[perm])]}})
    c = result(dist={"d": {"prompts": [prompt("d", 3, cands, target, q, "other")]}})
    pid, shown, t, qs, n = plots.prompt_bars({"A": a, "B": b, "C": c}, "d")
    assert pid == "d/3" and n == 25
    assert shown == [f"c{i}" for i in range(24, 4, -1)]  # the 20 most probable under the target
    assert t.tolist() == pytest.approx([(i + 1) / 325 for i in range(24, 4, -1)])
    assert list(qs) == ["A", "B"]
    assert qs["A"].tolist() == pytest.approx([1 / 25] * 20)
    assert qs["B"].tolist() == pytest.approx([i / 300 for i in range(24, 4, -1)])
    assert plots.dist_tasks({"A": a, "E": result(dist={"e": {"prompts": []}})}) == ["d"]


def test_reliability_bins_and_ece_by_hand():
    def q(top):  # option probabilities whose largest is top (top >= 1/3)
        return [top, (1 - top) / 2, (1 - top) / 2]

    seqs = [sequence("t", 0, [1.0, 1.0, 1.0], [q(0.35), q(0.45), q(0.42)], [0, 1, 0]),
            sequence("t", 1, [1.0, 1.0, 1.0, 1.0], [q(0.95), q(1.0), q(0.65), q(0.8)], [1, 1, 0, None]),
            sequence("t", 2, [1.0, 1.0])]  # no options
    r = result({"t": steer_task([point(0, 3, 1.0, 0.0)], seqs), "gone": {"skipped": "..."}})
    conf, corr = plots.option_outputs(r)
    assert conf.tolist() == pytest.approx([0.35, 0.45, 0.42, 0.95, 1.0, 0.65])  # the None output left out
    assert corr.tolist() == [0, 1, 0, 1, 1, 0]
    rel = plots.reliability(conf, corr, 10)
    # bins: 0.35 -> 3; 0.45, 0.42 -> 4; 0.65 -> 6; 0.95, 1.0 -> 9 (1.0 joins the last bin)
    assert rel["n"].tolist() == [0, 0, 0, 1, 2, 0, 1, 0, 0, 2]
    full = rel["n"] > 0
    assert rel["conf"][full].tolist() == pytest.approx([0.35, 0.435, 0.65, 0.975])
    assert rel["acc"][full].tolist() == pytest.approx([0.0, 0.5, 0.0, 1.0])
    assert np.isnan(rel["conf"][~full]).all() and np.isnan(rel["acc"][~full]).all()
    ece = (1 * 0.35 + 2 * 0.065 + 1 * 0.65 + 2 * 0.025) / 6
    assert ece == pytest.approx(1.18 / 6)
    assert report.ece(conf, corr, 10) == pytest.approx(ece)
    assert np.nansum(rel["n"] / 6 * np.abs(rel["acc"] - rel["conf"])) == pytest.approx(ece)


def test_calibration_legend_shows_report_ece(tmp_path, monkeypatch):
    a = result({"t": steer_task([point(0, 2, 1.0, 0.0)], [
        sequence("t", 0, [1.0, 1.0, 1.0], [[0.05, 0.5, 0.45], [0.7, 0.2, 0.1], [0.9, 0.05, 0.05]], [1, 1, 0])])})
    b = result({"t": steer_task([point(0, 2, 1.0, 0.0)], [
        sequence("t", 0, [1.0, 1.0], [[0.34, 0.33, 0.33], [0.6, 0.3, 0.1]], [0, None])])})
    drawn = []
    save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, out: drawn.append(fig) or save(fig, out))
    out = plots.calibration({"base (colon)": a, "tuned (spectrum)": b}, tmp_path / "c.png")
    assert png_size(out) == (800, 500)
    texts = [t.get_text() for legend in drawn[0].legends for t in legend.get_texts()]
    ece_a = (abs(1 - 0.5) + abs(1 - 0.7) + abs(0 - 0.9)) / 3  # one output per bin
    assert report.ece([0.5, 0.7, 0.9], [1, 1, 0]) == pytest.approx(ece_a)
    assert texts == [f"base (colon): ECE {ece_a:.3f} (n = 3)", "tuned (spectrum): ECE 0.340 (n = 1)",
                     "perfect calibration"]


def test_read_log(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 0, "val_loss": 3.0}\n{"step": 5, "loss": 2.5, "lr": 1e-4}\n\n'
                   '{"step": 10, "loss": 2.0, "grad_norm": 1.0}\n{"step": 10, "val_loss": 2.25}\n')
    assert plots.read_log(log) == (([5, 10], [2.5, 2.0]), ([0, 10], [3.0, 2.25]))
    log.write_text('{"step": 0, "val_loss": 3.0}\n{"step": 5, "loss": \n')
    with pytest.raises(cli.UserError, match="line 2 is not a log record of train.py"):
        plots.read_log(log)


# --- the figures -------------------------------------------------------------------------------------

def curve(losses, bayes=None):
    return [point(k, 4, v, 0.2, None if bayes is None else bayes[k]) for k, v in enumerate(losses)]


def test_figures_are_pngs_of_the_expected_size(tmp_path):
    long_k = [5.0 / (1 + k) + 1 for k in range(60)]  # k up to 59: the log axis
    a = result({"urn": steer_task(curve(long_k, [1.0] * 60)), "flight": steer_task(curve([3.0, 2.0, 1.5]))},
               {f"d{i}": {"prompts": [prompt(f"d{i}", 0, ["red", "green", "a very long candidate\nname"],
                                             [0.5, 0.3, 0.2], [0.2, 0.3, 0.5])]} for i in range(3)})
    b = result({"urn": steer_task(curve([v - 0.5 for v in long_k])), "flight": {"skipped": "..."}})
    both = {"base 270M (colon)": a, "tuned (spectrum)": b}
    assert png_size(plots.loss_vs_k(both, tmp_path / "k.png")) == (800, 500)        # 2 panels
    assert png_size(plots.distributions(both, tmp_path / "d.png")) == (800, 500)    # 3 panels, 2 x 2
    eight = result({f"t{i}": steer_task(curve([2.0, 1.0])) for i in range(8)},
                   {f"d{i}": {"prompts": [prompt(f"d{i}", 0, ["x", "y"], [0.5, 0.5], [0.9, 0.1])]} for i in range(7)})
    assert png_size(plots.loss_vs_k({"m": eight}, tmp_path / "k8.png")) == (800, 750)  # 3 x 3, 250 px a row
    assert png_size(plots.distributions({"m": eight}, tmp_path / "d6.png")) == (800, 750)  # 6 of 7: 2 x 3
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [{"step": 0, "val_loss": 3.0}, {"step": 5, "loss": 2.0},
                                                          {"step": 10, "loss": 1.5}, {"step": 10, "val_loss": 2.0}]))
    assert png_size(plots.training(log, tmp_path / "t.png")) == (800, 500)


def test_plot_all_skips_figures_with_nothing_to_show(tmp_path):
    only_curves = result({"t": steer_task(curve([2.0, 1.0]), [sequence("t", 0, [2.0, 1.0])])})
    log = tmp_path / "run" / "log.jsonl"
    paths = plots.plot_all({"m": only_curves}, tmp_path / "figs", log=log)  # no dist, no options, no log file
    assert paths == [tmp_path / "figs" / "loss_vs_k.png"]
    log.parent.mkdir()
    log.write_text('{"step": 0, "val_loss": 3.0}\n')
    assert [p.name for p in plots.plot_all({"m": only_curves}, tmp_path / "figs", log=log)] == \
        ["loss_vs_k.png", "training.png"]
    assert plots.plot_all({"m": result()}, tmp_path / "none") == []
    with pytest.raises(cli.UserError, match="nothing to plot"):
        plots.loss_vs_k({"m": result()}, tmp_path / "x.png")
    with pytest.raises(cli.UserError, match="nothing to plot"):
        plots.calibration({"m": only_curves}, tmp_path / "x.png")


def test_missing_matplotlib_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(cli.UserError, match=r"figures need matplotlib: pip install matplotlib"):
        plots.require()
    with pytest.raises(cli.UserError, match="figures need matplotlib"):  # before any work
        E.main(*E.parse_args(["--compare", "nope.json", "nope.json", "--plot", "figs"]))


# --- evaluate.py --plot ----------------------------------------------------------------------------

def result_file(path, shift):
    """A result file whose three sequences per task pair with the other file's (same ids, hashes)."""
    seqs = [sequence("urn", i, [3.0 + shift + i, 2.0 + shift, 1.5 + shift + 0.1 * i],
                     [[0.6, 0.3, 0.1], [0.5 - shift / 4, 0.25, 0.25 + shift / 4], [0.8, 0.1, 0.1]], [1, 0, 1])
            for i in range(3)]
    r = result({"urn": steer_task(curve([3.0 + shift, 2.0 + shift, 1.5 + shift], [1.0, 1.0, 1.0]), seqs)},
               {"urn": {"prompts": [prompt("urn", 0, ["red", "blue"], [0.7, 0.3],
                                           [0.6 - shift / 4, 0.4 + shift / 4])]}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r))
    return path


def test_evaluate_compare_plot(tmp_path, capsys, monkeypatch):
    a = result_file(tmp_path / "base_colon.json", 0.0)
    b = result_file(tmp_path / "tuned" / "eval_spectrum.json", -0.4)
    names = []
    plot_all = plots.plot_all
    monkeypatch.setattr(plots, "plot_all",
                        lambda results, *args: names.append(list(results)) or plot_all(results, *args))
    E.main(*E.parse_args(["--compare", str(a), str(b), "--plot", str(tmp_path / "figs")]))
    out = capsys.readouterr().out
    assert "urn" in out and "loss_geq_1" in out  # the comparison table still comes first
    figs = [tmp_path / "figs" / f for f in ("loss_vs_k.png", "distributions.png", "calibration.png")]
    assert [line for line in out.splitlines() if line.startswith("figure: ")] == [f"figure: {f}" for f in figs]
    assert all(png_size(f) == (800, 500) for f in figs)
    assert names == [["base_colon", "eval_spectrum"]]  # legend names: the file stems
    # the same stem twice (two runs' eval_spectrum.json): the paths as given
    c = result_file(tmp_path / "eval_spectrum.json", 0.0)
    E.main(*E.parse_args(["--compare", str(c), str(b), "--plot", str(tmp_path / "figs2")]))
    assert names[-1] == [str(c), str(b)]
    # an unwritable folder: one line naming it
    with pytest.raises(cli.UserError, match="cannot write the figure /proc/nope/loss_vs_k.png"):
        E.main(*E.parse_args(["--compare", str(a), str(b), "--plot", "/proc/nope"]))
