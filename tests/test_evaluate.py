"""evaluate.py: metric functions against hand-computed values, a model whose logits are set by hand,
shared-prefix scoring against plain full forwards, the geq_1 rule across formats, --compare, errors."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import checkpoint
import cli
import data
import evaluate as E
import model as M
import report
from conftest import GEMMA_IT
from tasks import DistPrompt, DiversityTask, Example, Instance

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: a second thread only adds synchronization (100x slower on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- a character-level tokenizer with the Gemma special ids -------------------------------------

def char_tokenizer(vocab_size=112):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    special = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 105, "<end_of_turn>": 106}
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    free = [i for i in range(4, vocab_size) if i not in special.values()]
    vocab = dict(special) | {c: i for c, i in zip(chars, free)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(list(special))
    return data.Tokenizer(tk, chat_template=GEMMA_IT, name="char tokenizer")


TOK = char_tokenizer()
ID = {c: TOK.hf.token_to_id(c) for c in [chr(c) for c in range(32, 127)] + ["\n"]}
NL, EOT, SP, COLON = ID["\n"], TOK.close_id, ID[" "], ID[":"]


def test_char_tokenizer():
    assert TOK.encode("<start_of_turn>out\n") == [105, ID["o"], ID["u"], ID["t"], NL]
    assert TOK.decode([ID["a"], ID["b"]]) == "ab" and (TOK.bos_id, TOK.close_id, TOK.eos_id) == (2, 106, 1)


def cfg(**kw):
    base = dict(max_sequences=50, pool=1000, seed=0, max_len=1024, p_drop=0.0, dtype="float32", batch_rows=2)
    return E.EvalConfig(**(base | kw))


# --- statistics by hand ---------------------------------------------------------------------------

def test_dist_metrics_by_hand():
    m = report.dist_metrics([0.5, 0.5], [0.25, 0.75])
    js = 0.5 * (0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.625)) \
        + 0.5 * (0.25 * math.log(0.25 / 0.375) + 0.75 * math.log(0.75 / 0.625))
    assert m["js"] == pytest.approx(js, abs=1e-5)
    assert m["kl"] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-5)
    assert m["rkl"] == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-5)
    assert m["mode_match"] == 1.0  # a uniform target: every candidate is a mode
    # disjoint supports: the eps (1e-6 on both sides, renormalized) keeps KL finite, JS ~ ln 2
    m = report.dist_metrics([1.0, 0.0], [0.0, 1.0])
    big, small = (1 + 1e-6) / (1 + 2e-6), 1e-6 / (1 + 2e-6)
    assert m["kl"] == pytest.approx(big * math.log(big / small) + small * math.log(small / big), rel=1e-9)
    assert m["js"] == pytest.approx(math.log(2), abs=1e-4) and m["js"] < math.log(2)
    assert m["mode_match"] == 0.0


def test_ece_by_hand():
    conf = [0.95, 0.95, 0.55, 0.55, 0.55, 0.35, 1.0]
    correct = [1, 0, 1, 1, 0, 0, 1]
    # bins: 9 holds .95,.95,1.0 (acc 2/3, conf .9667); 5 holds .55 x3 (acc 2/3); 3 holds .35 (acc 0)
    want = (3 * abs(2 / 3 - (0.95 + 0.95 + 1.0) / 3) + 3 * abs(2 / 3 - 0.55) + 1 * 0.35) / 7
    assert report.ece(conf, correct) == pytest.approx(want, abs=1e-12)


def test_cluster_se_by_hand():
    values = [1, 2, 3, 10, 4, 4]
    clusters = ["a", "a", "a", "b", "c", "c"]
    mean, se, g = report.cluster_mean_se(values, clusters)
    means = [2.0, 10.0, 4.0]  # per-sequence means
    m = sum(means) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in means) / 2)
    assert g == 3 and mean == pytest.approx(m) and se == pytest.approx(sd / math.sqrt(3))
    # not the row-level SE (the reference's mistake)
    assert se != pytest.approx(np.std(values, ddof=1) / math.sqrt(6), rel=1e-3)


def test_t_pvalue_known_values():
    assert report.t_pvalue(1.0, 1) == pytest.approx(0.5, abs=1e-12)             # Cauchy: P(|T| > 1) = 1/2
    assert report.t_pvalue(1.0, 2) == pytest.approx(1 - 1 / math.sqrt(3), abs=1e-12)  # df=2: 1 - t/sqrt(t^2+2)
    assert report.t_pvalue(2.228138851986, 10) == pytest.approx(0.05, abs=1e-9)  # the table's t_.975,10
    assert report.t_pvalue(1.959963985, 10 ** 7) == pytest.approx(0.05, abs=1e-5)
    assert report.t_pvalue(0.0, 5) == pytest.approx(1.0)
    d, se, p, n = report.paired_test([1, 2, 3, 4], [2, 3, 4, 5.5])
    assert (d, n) == (pytest.approx(1.125), 4) and p < 0.05


def test_choose_k():
    # k * #{n >= k+1}: k=1 -> 4, k=2 -> 6, k=3 -> 6 (tie: smaller k), k=4 -> 4
    assert E.choose_k([2, 3, 4, 5]) == 2
    assert E.choose_k([10, 10, 10, 1]) == 9
    assert E.choose_k([1, 1]) == 0


# --- a model whose logits are set by hand ---------------------------------------------------------
# One layer with every block weight zero: the residual stream stays the (one-hot) embedding, the
# final RMSNorm maps it to sqrt(H) e_v, and a separate output matrix W = A^T / sqrt(H) makes the
# logits after token v exactly A[v]. So P(next = u | ..., v) = softmax(A[v])[u]: a first-order
# Markov model whose every probability is known.

V = 112


def markov_model(A):
    c = M.Config(vocab_size=V, hidden_size=V, intermediate_size=4, num_layers=1, num_heads=1, num_kv_heads=1,
                 head_dim=4, sliding_window=64, layer_types=["full_attention"], max_position_embeddings=4096,
                 dtype="float32")
    m = M.Transformer(c)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.embed_tokens.weight.copy_(torch.eye(V))
    W = torch.tensor(A, dtype=torch.float32).T / math.sqrt(V)
    m.logits = lambda h: F.linear(h, W)
    return m.eval()


def markov_A(seed=0):
    A = np.random.default_rng(seed).normal(0, 1.5, (V, V))
    A[NL, ID["a"]] = 6.0      # after "\n" (the line that opens an output) "a" is the argmax
    A[ID["a"], EOT] = 6.0     # ... and then the end of turn: greedy reproduces "a<end_of_turn>"
    A[NL, ID["b"]] = 3.0      # "b" is likely but not the argmax: "bc" is never greedy
    return A


def logp(A, v, u):
    return float(A[v, u] - np.log(np.exp(A[v]).sum()))


def nll_spectrum(A, out):
    """-log P(out + <end_of_turn>) after "<start_of_turn>output\\n": a chain over the characters."""
    toks = [ID[ch] for ch in out] + [EOT]
    return -sum(logp(A, p, t) for p, t in zip([NL] + toks[:-1], toks))


def greedy_spectrum(A, out):
    toks = [ID[ch] for ch in out] + [EOT]
    return all(int(np.argmax(A[p])) == t for p, t in zip([NL] + toks[:-1], toks))


def two_instances(options=None, bayes=None):
    # every example of an instance has the same output, so the drawn order cannot matter
    return [Instance("t", ["desc"], [Example("a")] * 4, options=options, bayes=bayes),
            Instance("t", ["desc"], [Example("bc", "x")] * 4, options=options, bayes=bayes)]


@pytest.mark.parametrize("with_options", [False, True])  # packed rows / one cached pass per sequence
def test_markov_model_loss_and_accuracy(with_options):
    A = markov_A()
    model = markov_model(A)
    opts = ["a", "bc", "c"] if with_options else None
    r = E.evaluate_steer(model, TOK, "t", two_instances(opts), cfg())
    assert r["k"] == 3 and r["n_sequences"] == 2 and r["n_with_desc"] == 2
    want = {"a": nll_spectrum(A, "a"), "bc": nll_spectrum(A, "bc")}
    assert greedy_spectrum(A, "a") and not greedy_spectrum(A, "bc")
    for s in r["sequences"]:
        out = "a" if s["id"] == "t/0" else "bc"
        assert s["k"] == [0, 1, 2, 3]
        assert s["nll"] == pytest.approx([want[out]] * 4, abs=1e-4)
        assert s["ntok"] == [len(out) + 1] * 4
        assert s["greedy"] == [int(out == "a")] * 4
    assert r["loss"]["mean"] == pytest.approx((want["a"] + want["bc"]) / 2, abs=1e-4)
    assert r["loss_geq_1"]["mean"] == pytest.approx((want["a"] + want["bc"]) / 2, abs=1e-4)
    assert r["tok_loss"]["mean"] == pytest.approx((want["a"] / 2 + want["bc"] / 3) / 2, abs=1e-4)
    assert r["acc_geq_1"]["mean"] == pytest.approx(0.5) and r["acc_geq_1"]["n_seq"] == 2
    assert r["acc_geq_1"]["se"] == pytest.approx(0.5)  # per-sequence means 1 and 0: sd sqrt(1/2), /sqrt(2)
    assert [p["k"] for p in r["curve"]] == [0, 1, 2, 3]
    if with_options:
        P = np.exp([-nll_spectrum(A, o) for o in opts])
        q = P / P.sum()
        for s in r["sequences"]:
            gold = 0 if s["id"] == "t/0" else 1
            assert s["option_q"][0] == pytest.approx(q.tolist(), abs=1e-5)
            assert s["option_coverage"][0] == pytest.approx(P.sum(), rel=1e-4)
            assert s["option_correct"] == [int(np.argmax(q) == gold)] * 4
        conf, correct = q.max(), [int(np.argmax(q) == g) for g in (0, 1)]
        assert r["ece"] == pytest.approx(abs(np.mean(correct) - conf), abs=1e-5)  # one bin holds all
        assert r["option_acc_geq_1"]["mean"] == pytest.approx(np.mean(correct))
        assert r["option_dist"] == pytest.approx(q.tolist(), abs=1e-5)
        assert r["gold_dist"] == pytest.approx([0.5, 0.5, 0.0])


def test_greedy_needs_the_end_token():
    """"a" is the argmax after "\\n", but <end_of_turn> is not the argmax after "a": not a greedy match."""
    A = markov_A()
    A[ID["a"], EOT] = -6.0
    assert int(np.argmax(A[NL])) == ID["a"] and int(np.argmax(A[ID["a"]])) != EOT
    r = E.evaluate_steer(markov_model(A), TOK, "t", two_instances(), cfg())
    assert all(s["greedy"] == [0] * 4 for s in r["sequences"]) and r["acc"]["mean"] == 0


def test_option_metrics_at_evenly_spaced_outputs():
    assert E.option_positions(4, 16) == [0, 1, 2, 3] and E.option_positions(4, 0) == [0, 1, 2, 3]
    assert E.option_positions(163, 16)[:3] == [0, 11, 22] and E.option_positions(163, 16)[-1] == 162
    assert len(E.option_positions(163, 16)) == 16 and E.option_positions(5, 2) == [0, 4]
    A = markov_A()
    r = E.evaluate_steer(markov_model(A), TOK, "t", two_instances(["a", "bc", "c"]), cfg(option_outputs=2))
    for s in r["sequences"]:
        assert s["option_at"] == [0, 3] and len(s["option_q"]) == 2 and len(s["nll"]) == 4
    assert r["option_acc"]["n_out"] == 4 and r["option_acc_geq_1"]["n_out"] == 2 and r["loss"]["n_out"] == 8


def test_markov_model_colon_terminator():
    """colon scores " a\\n\\n" after "Output:" (leading space and the blank line included)."""
    A = markov_A()
    r = E.evaluate_steer(markov_model(A), TOK, "t", two_instances(), cfg(format="colon"))
    toks = [SP, ID["a"], NL, NL]
    want = -sum(logp(A, p, t) for p, t in zip([COLON] + toks[:-1], toks))
    s = next(s for s in r["sequences"] if s["id"] == "t/0")
    assert s["nll"] == pytest.approx([want] * 4, abs=1e-4) and s["ntok"] == [4] * 4


def test_bayes_gap_of_an_oracle_is_zero():
    """A process whose exact predictive is the Markov model's own P(output + end): gap 0 at every k.
    A wrong predictive (uniform over the two outputs) gives the known nonzero gap."""
    A = markov_A()
    oracle = lambda desc, prior, ex: -nll_spectrum(A, ex.output)  # noqa: E731
    r = E.evaluate_steer(markov_model(A), TOK, "t", two_instances(bayes=oracle), cfg())
    assert abs(r["bayes_gap"]["mean"]) < 1e-4 and abs(r["bayes_gap_geq_1"]["mean"]) < 1e-4
    assert all(abs(p["bayes_gap"][0]) < 1e-4 for p in r["curve"])
    half = lambda desc, prior, ex: math.log(0.5)  # noqa: E731
    r = E.evaluate_steer(markov_model(A), TOK, "t", two_instances(bayes=half), cfg())
    want = (nll_spectrum(A, "a") + nll_spectrum(A, "bc")) / 2 - math.log(2)
    assert r["bayes_gap_geq_1"]["mean"] == pytest.approx(want, abs=1e-4)


# --- shared-prefix scoring against plain full forwards (tiny random Gemma) -------------------------

def random_model(seed=0, window=8):
    c = M.Config(vocab_size=V, hidden_size=32, intermediate_size=48, num_layers=3, num_heads=2, num_kv_heads=1,
                 head_dim=16, sliding_window=window,
                 layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                 max_position_embeddings=4096, dtype="float32")
    torch.manual_seed(seed)
    m = M.Transformer(c)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape) * (0.3 if p.ndim == 1 else 0.2))
    return m.eval()


def full_logprob(model, prefix, cont):
    """sum log P(cont | prefix) by one plain forward of prefix + cont, no cache, no packing."""
    ids = torch.tensor([list(prefix) + list(cont)])
    with torch.no_grad():
        lp = model.logits(model(ids))[0].log_softmax(-1)
    return sum(lp[len(prefix) - 1 + i, t].item() for i, t in enumerate(cont))


def rebuild(rec, fmt):
    return data.encode(data.render(rec["messages"], TOK, fmt), TOK)


def varied_instances(options=None):
    out = []
    for i in range(5):
        exs = [Example(o, x) for o, x in [("yes", "q1"), ("no", "question two"), ("yes", "3"), ("maybe", "q4"),
                                          ("no", "q5")][: 3 + i % 3]]
        out.append(Instance("v", ["Answer yes, no or maybe.", "Reply."], exs, options=options))
    return out


@pytest.mark.parametrize("fmt", ["spectrum", "colon", "chat"])
def test_option_scoring_equals_full_forwards(fmt):
    model = random_model()
    opts = ["yes", "no", "maybe", "yes!", "nope"]  # options that prefix one another
    r = E.evaluate_steer(model, TOK, "v", varied_instances(opts), cfg(format=fmt, p_drop=0.5, seed=3))
    assert r["n_sequences"] >= 3
    for rec in r["sequences"]:
        ids, mask = rebuild(rec, fmt)
        spans = data.loss_spans(mask)
        spans = spans[len(spans) - len(rec["k"]):]
        for n, (s, e) in enumerate(spans):
            assert full_logprob(model, ids[:s], ids[s:e]) == pytest.approx(-rec["nll"][n], abs=1e-4)
            want = [full_logprob(model, ids[:s], data.output_ids(o, TOK, fmt)) for o in opts]
            assert rec["option_logp"][n] == pytest.approx(want, abs=1e-4)


def test_packed_scoring_equals_each_sequence_alone():
    """Many sequences packed into rows (window 8 < sequence length) == one plain forward each."""
    model = random_model(window=8)
    r = E.evaluate_steer(model, TOK, "v", varied_instances(), cfg(p_drop=0.5, seed=1, max_len=200, batch_rows=2))
    assert r["n_sequences"] >= 3
    for rec in r["sequences"]:
        ids, mask = rebuild(rec, "spectrum")
        with torch.no_grad():
            lp = model.logits(model(torch.tensor([ids])))[0].log_softmax(-1)
        spans = data.loss_spans(mask)
        want = [-sum(lp[t - 1, ids[t]].item() for t in range(s, e)) for s, e in spans]
        greedy = [int(all(lp[t - 1].argmax().item() == ids[t] for t in range(s, e))) for s, e in spans]
        assert rec["nll"] == pytest.approx(want, abs=1e-4)
        assert rec["greedy"] == greedy


def test_dist_prompt_shared_equals_unshared():
    model = random_model()
    prompts = [DistPrompt("d", [{"role": "description", "content": "Roll a die."}],
                          {"1": 0.25, "2": 0.25, "12": 0.5}),
               DistPrompt("d", [{"role": "input", "content": "Pick a color."}], {"red": 0.5, "blue": 0.5})]
    for fmt in ("spectrum", "colon"):
        r = E.evaluate_dist(model, TOK, "d", prompts, cfg(format=fmt))
        assert r["n_prompts"] == 2
        for rec in r["prompts"]:
            p = prompts[int(rec["id"].split("/")[1])]
            prompt = data.prompt_ids(TOK, p.messages, fmt)
            cands = list(p.target)
            lp = [full_logprob(model, prompt, data.output_ids(c, TOK, fmt)) for c in cands]
            P = np.exp(lp)
            assert rec["coverage"] == pytest.approx(P.sum(), rel=1e-4)
            assert rec["q"] == pytest.approx((P / P.sum()).tolist(), abs=1e-5)
            bare = [full_logprob(model, prompt, data.output_ids(c, TOK, fmt, end=False)) for c in cands]
            assert rec["coverage_prefix"] == pytest.approx(np.exp(bare).sum(), rel=1e-4)
            want = report.dist_metrics([p.target[c] for c in cands], P / P.sum())
            assert rec["js"] == pytest.approx(want["js"], abs=1e-6)


# --- the same outputs in every format ---------------------------------------------------------------

def test_geq_1_is_the_same_outputs_in_every_format():
    """Description-less sequences: colon could score output 0, spectrum/chat cannot; none does."""
    model = random_model()
    inst = varied_instances()
    res = {fmt: E.evaluate_steer(model, TOK, "v", inst, cfg(format=fmt, p_drop=0.5, seed=5))
           for fmt in ("spectrum", "colon", "chat")}
    seqs = {fmt: {s["id"]: (s["hash"], s["desc"], s["k"]) for s in r["sequences"]} for fmt, r in res.items()}
    assert seqs["spectrum"] == seqs["colon"] == seqs["chat"]
    assert any(not d for _, d, _ in seqs["spectrum"].values()) and any(d for _, d, _ in seqs["spectrum"].values())
    k = res["spectrum"]["k"]
    for h, desc, ks in seqs["spectrum"].values():
        assert ks == (list(range(0, k + 1)) if desc else list(range(1, k + 1)))
    for fmt in res:
        assert res[fmt]["loss_geq_1"]["n_out"] == res["spectrum"]["loss_geq_1"]["n_out"]
    # colon really does score the first output of a description-less sequence: it is dropped
    rec = next(s for s in res["colon"]["sequences"] if not s["desc"])
    _, mask = rebuild(rec, "colon")
    assert len(data.loss_spans(mask)) == len(rec["k"]) + 1


def test_sequences_are_deterministic_and_k_independent_of_max_sequences():
    inst = varied_instances()
    k1, s1 = E.eval_sequences("v", inst, TOK, cfg(p_drop=0.5, seed=7))
    k2, s2 = E.eval_sequences("v", inst, TOK, cfg(p_drop=0.5, seed=7, max_sequences=2))
    assert k1 == k2 and [s["hash"] for s in s1[:2]] == [s["hash"] for s in s2]
    k3, s3 = E.eval_sequences("v", inst, TOK, cfg(p_drop=0.5, seed=8))
    assert [s["hash"] for s in s1] != [s["hash"] for s in s3]


# --- diversity ---------------------------------------------------------------------------------------

def test_diversity_metrics_by_hand():
    colors = {"red", "blue", "green"}
    insensitive = lambda s: s.strip().lower() in colors  # noqa: E731
    samples = ["Red", " red ", "RED", "blue", "purple", "green", "green"]
    stopped = [True, True, True, True, True, True, False]   # the last hit max_new_tokens: invalid
    m = report.diversity_metrics(samples, stopped, insensitive)
    assert m["case_insensitive"] and m["valid"] == pytest.approx(5 / 7)
    assert m["yield"] == 3 and m["unique"] == pytest.approx(3 / 5) and m["truncated"] == 1
    symbols = {"He", "Co", "W"}
    sensitive = lambda s: s.strip() in symbols  # noqa: E731
    m = report.diversity_metrics(["He", "He ", "Co", "CO", "W"], [True] * 5, sensitive)
    assert not m["case_insensitive"] and m["valid"] == pytest.approx(4 / 5) and m["yield"] == 3
    m = report.diversity_metrics(["x"], [True], sensitive)
    assert m["valid"] == 0 and m["unique"] == 0 and m["yield"] == 0


def test_diversity_with_sampling():
    pytest.importorskip("sample")
    model = random_model()
    d = DiversityTask("letters", "A letter", ["a", "b", "c"], lambda s: len(s.strip()) == 1, max_new_tokens=3)
    r1 = E.evaluate_diversity(model, TOK, d, cfg(n_samples=12))
    r2 = E.evaluate_diversity(model, TOK, d, cfg(n_samples=12))
    assert r1 == r2  # seeded
    for v in report.VARIANTS:
        assert len(r1[v]["samples"]) == 12 and 0 <= r1[v]["valid"] <= 1
        # a random model rarely stops within 3 tokens; every unstopped sample is invalid
        assert r1[v]["valid"] <= sum(r1[v]["stopped"]) / 12
    assert r1["valid"] == pytest.approx(np.mean([r1[v]["valid"] for v in report.VARIANTS]))


# --- compare ---------------------------------------------------------------------------------------

def fake_results(shift, noise_seed):
    """Results with three steer tasks (B-A differences: -1, 0 noise, +1 per sequence) and one dist task."""
    rng = np.random.default_rng(noise_seed)
    steer = {}
    for t, d in (("better", -shift), ("same", 0.0), ("worse", shift)):
        seqs = []
        for i in range(30):
            base = 2.0 + i % 5
            nll = [base + d + rng.normal(0, 0.1) for _ in range(3)]
            seqs.append({"id": f"{t}/{i}", "hash": f"h{i}", "desc": True, "k": [0, 1, 2], "nll": nll,
                         "ntok": [2, 2, 2], "greedy": [1, 0, 1]})
        steer[t] = {"sequences": seqs}
    prompts = [{"id": f"d/{i}", "hash": f"p{i}", "js": 0.3 - shift * 0.1 + rng.normal(0, 0.01),
                "kl": 0.5 - shift * 0.1 + rng.normal(0, 0.01)} for i in range(20)]
    return {"steer": steer, "dist": {"d": {"prompts": prompts}}, "diversity": {}}


def test_compare_counts():
    a, b = fake_results(0.0, 1), fake_results(1.0, 2)
    # B lists sequences in another order, has an extra one, and one whose content differs
    for t in b["steer"].values():
        t["sequences"].reverse()
        t["sequences"].append(dict(t["sequences"][0], id="extra/0"))
        t["sequences"][1]["hash"] = "changed"
    c = report.compare(a, b)
    rows = {(r["task"], r["metric"]): r for r in c["rows"]}
    assert rows[("better", "loss_geq_1")]["verdict"] == "improved"
    assert rows[("better", "loss_geq_1")]["diff"] == pytest.approx(-1.0, abs=0.05)
    assert rows[("same", "loss_geq_1")]["verdict"] == "unchanged"
    assert rows[("worse", "loss_geq_1")]["verdict"] == "degraded"
    assert rows[("better", "loss_geq_1")]["n"] == 29  # paired by (id, hash): the changed one is out
    assert rows[("d", "js")]["verdict"] == "improved"
    assert c["counts"]["loss_geq_1"] == {"improved": 1, "unchanged": 1, "degraded": 1}
    assert c["counts"]["acc_geq_1"] == {"improved": 0, "unchanged": 3, "degraded": 0}  # identical accs
    # paired: the per-sequence spread (2..6) is far larger than the shift's noise, yet it is significant
    assert rows[("better", "loss_geq_1")]["p"] < 1e-6


def test_compare_cli(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(fake_results(0.0, 1)))
    b.write_text(json.dumps(fake_results(1.0, 2)))
    c = E.main(*E.parse_args(["--compare", str(a), str(b)]))
    assert c["counts"]["loss_geq_1"]["degraded"] == 1
    with pytest.raises(cli.UserError, match="no file"):
        E.main(*E.parse_args(["--compare", str(a), str(tmp_path / "nope.json")]))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(cli.UserError, match="is not a result file of evaluate.py"):
        E.main(*E.parse_args(["--compare", str(a), str(tmp_path / "list.json")]))
    other = fake_results(0.0, 3)
    other["steer"] = {"elsewhere": other["steer"]["same"]}
    other["dist"] = {}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(cli.UserError, match="no task with the same sequences or prompts in common"):
        E.main(*E.parse_args(["--compare", str(a), str(tmp_path / "other.json")]))


# --- errors ------------------------------------------------------------------------------------------

def one_line_error(argv, cwd):
    p = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *argv], capture_output=True, text=True, cwd=cwd,
                       timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.strip().count("\n") == 0, p.stderr
    return p.stderr.strip()


def test_bad_inputs_are_one_line_before_any_loading(tmp_path):
    assert "not found" in one_line_error(["--ckpt", str(tmp_path / "nope")], tmp_path)
    assert "not found" in one_line_error(["--ckpt", "nope/"], tmp_path)
    assert "no checkpoint in out/: run python train.py first" in one_line_error([], tmp_path)
    assert "unknown task 'flightz'" in one_line_error(["--ckpt", str(tmp_path), "--tasks", "flightz"], tmp_path)
    assert "has no config.json" in one_line_error(["--ckpt", str(tmp_path), "--tasks", "flight"], tmp_path)
    assert "invalid choice: 'xml'" in one_line_error(["--format", "xml"], tmp_path)
    assert "--max_sequences must be at least 1" in one_line_error(["--max_sequences", "0"], tmp_path)
    assert "cannot write the results to /proc/nope/r.json" in one_line_error(
        ["--ckpt", str(tmp_path), "--json", "/proc/nope/r.json"], tmp_path)


def test_results_live_beside_the_run_not_in_its_checkpoints(tmp_path):
    run = tmp_path / "out"
    (run / "step-0000004").mkdir(parents=True)
    (run / "step-0000004" / "checkpoint.json").write_text(json.dumps({"step": 4, "files": {}}))
    assert E.results_path(cfg(ckpt=str(run), format="colon")) == run / "eval_colon.json"
    assert E.results_path(cfg(ckpt="gemma-3-270m")) == Path("out") / "eval_gemma-3-270m_spectrum.json"
    assert E.results_path(cfg(ckpt="google/gemma-3-1b-pt")) == Path("out") / "eval_google_gemma-3-1b-pt_spectrum.json"
    assert E.results_path(cfg(ckpt=str(run), json="x.json")) == Path("x.json")


# --- the real 270M -----------------------------------------------------------------------------------

@pytest.mark.real
def test_real_flight_options_and_dice(real_ckpt, real_tokenizer):
    """The real 270M on two short flight sequences (colon) and the two-dice prompt: finite losses, option
    probabilities that match sample.option_probs (an independent route through the same model)."""
    import tasks
    model = checkpoint.from_pretrained(real_ckpt, dtype=torch.float32)
    c = cfg(format="colon", max_sequences=2, max_len=400, p_drop=0.4)
    r = E.evaluate_steer(model, real_tokenizer, "flight", tasks.get("flight").instances(seed=0), c)
    assert r["n_sequences"] == 2 and r["k"] >= 1 and math.isfinite(r["loss_geq_1"]["mean"])
    assert 0 < r["option_coverage"] <= 1
    dice = tasks.get("dice").dist_prompts(seed=0)[:1]
    d = E.evaluate_dist(model, real_tokenizer, "dice", dice, cfg(format="spectrum"))["prompts"][0]
    sample = pytest.importorskip("sample")
    probs, coverage = sample.option_probs(model, real_tokenizer, dice[0].messages, list(dice[0].target), "spectrum")
    assert d["q"] == pytest.approx(probs, abs=1e-4) and d["coverage"] == pytest.approx(coverage, rel=1e-3)
