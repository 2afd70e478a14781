"""sample.py against independent references: exact distributions from full forwards (no cache),
chi-square tests of the sampler, option probabilities as exp(-NLL) of whole sequences, the model
card's prompts end to end on the real 270M."""
import copy
import json
import math

import pytest
import torch

import checkpoint
import cli
import data
import model as M
import sample
from conftest import GEMMA_IT

D = {"role": "description", "content": "Board games"}
O1 = {"role": "output", "content": "Settlers of Catan"}
O2 = {"role": "output", "content": "Twilight Imperium"}
I1 = {"role": "input", "content": "Two players"}


def tiny(vocab=262144, seed=0, window=4, layers=3, scale=1.0):
    """A random Gemma small enough to be instant; sliding window 4 so decoding crosses it."""
    torch.manual_seed(seed)
    c = M.Config(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_layers=layers, num_heads=2,
                 num_kv_heads=1, head_dim=16, sliding_window=window,
                 layer_types=["sliding_attention", "full_attention", "sliding_attention"][:layers],
                 dtype="float32")
    m = M.Transformer(c).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim == 1 else scale * 0.4))
    return m


def full_logprobs(m, ids):
    """log-softmax of a plain full forward (no cache, no selection): the reference."""
    with torch.no_grad():
        return m.logits(m(torch.tensor([ids]))).float().log_softmax(-1)[0]


def chi2_bound(k, z=4.75):
    """Upper quantile of chi-square with k dof (Wilson-Hilferty); z = 4.75 is p ~ 1e-6."""
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def chi2(counts, probs, min_expected=5.0):
    """Pearson statistic and dof, pooling cells with expected count < min_expected into one."""
    N = counts.sum().item()
    exp = probs * N
    small = exp < min_expected
    obs = torch.cat([counts[~small], counts[small].sum()[None]])
    e = torch.cat([exp[~small], exp[small].sum()[None]])
    keep = e > 0
    if (obs[~keep] > 0).any():  # a draw where the distribution has no mass
        return math.inf, 1
    return (((obs[keep] - e[keep]) ** 2) / e[keep]).sum().item(), int(keep.sum()) - 1


# --- the sampler -------------------------------------------------------------------------------

def restrict(logits, temperature=1.0, top_k=0, top_p=1.0):
    """Reference of the target distribution, written independently of sample.sampler: sort once,
    keep the top_k prefix, then (renormalized, in transformers' order) the top_p prefix."""
    p = (logits.double() / temperature).softmax(-1)
    order = p.argsort(descending=True)
    ps = p[order]
    keep = torch.ones_like(ps, dtype=torch.bool)
    if top_k:
        keep &= torch.arange(len(ps)) < top_k
    if top_p < 1:
        q = ps * keep / (ps * keep).sum()
        before = torch.cat([torch.zeros(1, dtype=q.dtype), q.cumsum(0)[:-1]])
        keep &= before < top_p
    out = torch.zeros_like(p)
    out[order[keep]] = ps[keep] / ps[keep].sum()
    return out


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7), dict(top_k=5), dict(top_p=0.6),
                                dict(temperature=1.3, top_k=8, top_p=0.8)])
def test_sampler_matches_distribution_and_support(kw):
    torch.manual_seed(0)
    logits = torch.randn(40) * 2
    want = restrict(logits, **kw)
    g = torch.Generator().manual_seed(1)
    pick = sample.sampler(generator=g, **kw)
    N = 40000
    draws = pick(logits.expand(N, -1).contiguous())
    counts = torch.bincount(draws, minlength=40).double()
    assert set(draws.unique().tolist()) <= set(want.nonzero()[:, 0].tolist())  # support restricted
    stat, dof = chi2(counts, want)
    assert stat < chi2_bound(dof), (stat, dof)
    # the test can fail: the unrestricted / untempered distribution is rejected
    if kw:
        wrong = logits.double().softmax(-1)
        stat_wrong, dof_wrong = chi2(counts, wrong)
        assert stat_wrong > chi2_bound(dof_wrong)


def test_sampler_top_k_top_p_support_exact():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 5.0, 0.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    seen = sample.sampler(top_k=2, generator=g)(logits.repeat(500, 1)).view(500, 2)
    assert set(seen[:, 0].tolist()) == {0, 1} and set(seen[:, 1].tolist()) == {2, 4}
    # top_p=0.5: row 0's top token holds 0.64 >= 0.5, so it is all that is kept
    seen = sample.sampler(top_p=0.5, generator=g)(logits.repeat(500, 1)).view(500, 2)
    assert set(seen[:, 0].tolist()) == {0}
    seen = sample.sampler(top_p=0.7, generator=g)(logits.repeat(500, 1)).view(500, 2)
    assert set(seen[:, 0].tolist()) == {0, 1}
    assert sample.sampler(temperature=0)(logits).tolist() == [0, 2]
    with pytest.raises(cli.UserError, match="0 < --top_p <= 1"):
        sample.parse_args(["--desc", "x", "--top_p", "0"])


def test_decoded_pairs_match_exact_joint_distribution():
    """Two tokens after a prompt, 20000 rows decoded together on the expanded cache: the counts of
    each (t1, t2) pair match p(t1) p(t2 | t1) from full forwards (chi-square)."""
    V = 12
    m = tiny(vocab=V, seed=3, scale=0.2)
    prompt = [2, 5, 7, 3, 9, 4]  # longer than the window (4)
    joint = torch.zeros(V, V, dtype=torch.float64)
    p1 = full_logprobs(m, prompt)[-1].double().exp()
    for t1 in range(V):
        joint[t1] = p1[t1] * full_logprobs(m, prompt + [t1])[-1].double().exp()
    assert joint.max() < 0.1 and (joint > 1e-3).sum() > 100  # a distribution worth testing
    g = torch.Generator().manual_seed(0)
    ids, stopped = sample.sample_ids(copy.deepcopy(m), prompt, 20000, sample.sampler(generator=g), 2, stop=())
    pairs = torch.tensor(ids)
    assert pairs.shape == (20000, 2) and not any(stopped)
    counts = torch.bincount(pairs[:, 0] * V + pairs[:, 1], minlength=V * V).double()
    stat, dof = chi2(counts, joint.flatten())
    assert stat < chi2_bound(dof), (stat, dof)
    # the test can fail: the second token drawn from p(t2) of the wrong history is rejected
    wrong = (p1[:, None] * full_logprobs(m, prompt + [0])[-1].double().exp()[None]).flatten()
    assert chi2(counts, wrong)[0] > chi2_bound(chi2(counts, wrong)[1])


def test_seed_reproduces(real_tokenizer):
    m = tiny(seed=1, scale=3.0)
    msgs = [D, O1, O2]
    a = sample.generate(m, real_tokenizer, msgs, n=4, max_new_tokens=6, seed=7)[0]
    b = sample.generate(m, real_tokenizer, msgs, n=4, max_new_tokens=6, seed=7)[0]
    c = sample.generate(m, real_tokenizer, msgs, n=4, max_new_tokens=6, seed=8)[0]
    assert a == b and a != c
    assert len(a) == 4 and all(isinstance(t, str) and t for t in a)


# --- cached decoding ---------------------------------------------------------------------------

@pytest.mark.parametrize("forced, max_new", [
    # rows that all differ, finishing at different steps (stop token 1), one never stopping
    ({0: [20, 21, 1], 1: [22, 1], 2: [23, 24, 25, 26, 27, 28, 29, 30], 3: [31, 32, 33, 34, 1], 4: [1]}, 8),
    # rows sharing their first tokens, then splitting
    ({0: [20, 21, 1], 1: [20, 21, 22, 23], 2: [20, 24, 1], 3: [25, 26, 27, 28], 4: [20, 21, 22, 29], 5: [1]}, 4)])
def test_each_row_sees_its_own_history_and_shared_histories_run_once(forced, max_new):
    """Forced tokens per row: the logits each row saw while the batch shrank and split equal a
    full forward of that row alone, and each step ran one lm_head row per distinct history."""
    V = 50
    m = copy.deepcopy(tiny(vocab=V, seed=2))
    prompt = [2, 11, 12, 13, 14, 15, 16]
    seen = {r: [] for r in forced}

    def pick(logits, rows, node):
        out = []
        for i, r in zip(node.tolist(), rows.tolist()):
            out.append(forced[r][len(seen[r])])
            seen[r].append(logits[i].clone())
        return torch.tensor(out)

    head_rows, logits = [], m.logits
    m.logits = lambda h: (head_rows.append(h.shape[0]), logits(h))[1]
    ids, stopped = sample.sample_ids(m, prompt, len(forced), pick, max_new_tokens=max_new, stop=(1,))
    assert ids == [forced[r] for r in range(len(forced))]
    assert stopped == [f[-1] == 1 for f in forced.values()]
    # the prompt, then after s tokens the distinct histories of the rows still going
    assert head_rows == [1] + [len({tuple(f[:s]) for f in forced.values() if len(f) > s and 1 not in f[:s]})
                               for s in range(1, max_new)]
    assert len(set(head_rows)) > 2
    for r, toks in forced.items():
        ref = full_logprobs(m, prompt + toks)  # positions P-1 .. P-1+len-1 predict the forced tokens
        got = torch.stack(seen[r]).log_softmax(-1)
        assert len(got) == len(toks)
        assert (got - ref[len(prompt) - 1:len(prompt) - 1 + len(toks)]).abs().max() < 1e-4


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7, top_k=5), dict(top_p=0.6), dict(temperature=0)])
def test_shared_logits_rows_draw_as_if_each_row_had_its_own(kw):
    torch.manual_seed(0)
    logits = torch.randn(3, 1500) * 3
    node = torch.tensor([0, 2, 2, 1, 0, 2, 2, 2])
    shared = sample.sampler(generator=torch.Generator().manual_seed(1), **kw)(logits.clone(), None, node)
    own = sample.sampler(generator=torch.Generator().manual_seed(1), **kw)(logits[node].clone())
    assert torch.equal(shared, own)


def test_max_new_tokens_and_stop_flags(real_tokenizer):
    m = tiny(seed=4)
    texts, stopped = sample.generate(m, real_tokenizer, [D], n=3, max_new_tokens=3)
    assert len(texts) == 3 and len(stopped) == 3
    # a random 262k-vocab model essentially never emits a stop token in 3 steps
    assert stopped == [False] * 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_cpu_same_results_follows_weight_updates_and_keeps_gradients(dtype):
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("oneDNN has no bf16 kernels on this CPU (needs AVX512 or AVX-NE-CONVERT): fast_cpu leaves "
                    "bf16 models on the plain path")
    m = tiny(vocab=300, seed=7).to(dtype)
    ref = copy.deepcopy(m)
    assert sample.fast_cpu(m).prepacked
    x = torch.tensor([[2, 5, 9, 11, 40, 7]])
    full = lambda mm: mm.logits(mm(x))  # noqa: E731
    exact = (lambda a, b: torch.equal(a, b)) if dtype == torch.bfloat16 else \
        (lambda a, b: (a - b).abs().max() < 1e-4)  # bitwise in bf16, up to fp32 rounding in fp32
    with torch.no_grad():
        assert exact(full(m), full(ref))
        for mm in (m, ref):  # an in-place update (an optimizer step) must be seen
            mm.layers[0].mlp.up_proj.weight.mul_(3)
            mm.embed_tokens.weight.add_(0.1)
        assert exact(full(m), full(ref))
    if dtype == torch.float32:
        full(m).sum().backward()  # grad-enabled calls take the plain path
        full(ref).sum().backward()
        assert torch.allclose(m.layers[1].self_attn.q_proj.weight.grad, ref.layers[1].self_attn.q_proj.weight.grad,
                              atol=1e-5)
    assert list(m.state_dict()) == list(ref.state_dict())


def test_fast_cpu_skips_bf16_where_onednn_cannot(monkeypatch):
    """An AVX2-only CPU: oneDNN's bf16 weight packing raises there, so fast_cpu must not use it."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    m = sample.fast_cpu(tiny(vocab=300, seed=7).to(torch.bfloat16))
    assert not getattr(m, "prepacked", False)
    assert sample.fast_cpu(tiny(vocab=300, seed=7)).prepacked  # fp32 packing works on every x86 CPU


# --- distributions -----------------------------------------------------------------------------

def with_chat(tok):
    return data.Tokenizer(tok.hf, chat_template=GEMMA_IT, name="gemma + an IT template")


@pytest.mark.parametrize("fmt", ["spectrum", "colon", "chat"])
def test_option_probs_equal_full_sequence_nll(real_tokenizer, fmt):
    """P(option) = exp(-NLL) of the option's scored tokens (content + end marker, as data.render
    marks them) in the full sequence messages + [option], computed without any cache."""
    tok = with_chat(real_tokenizer)
    m = tiny(seed=5, scale=2.0)
    ref_model = copy.deepcopy(m)
    msgs = [D, O1, I1]
    options = ["Risk", "Twilight Imperium", " Go ", "Ticket to Ride: Europe"]
    probs, coverage = sample.option_probs(m, tok, msgs, options, fmt)
    raw = []
    for o in options:
        ids, mask = data.encode(data.render(msgs + [{"role": "output", "content": o}], tok, fmt), tok)
        s, e = data.loss_spans(mask)[-1]
        lp = full_logprobs(ref_model, ids)
        raw.append(math.exp(sum(lp[t - 1, ids[t]].item() for t in range(s, e))))
    assert coverage == pytest.approx(sum(raw), rel=1e-3)
    assert probs == pytest.approx([r / sum(raw) for r in raw], rel=1e-3, abs=1e-9)
    assert sum(probs) == pytest.approx(1.0)
    with pytest.raises(cli.UserError, match="given twice"):
        sample.option_probs(m, tok, msgs, ["Risk", "Go", "Risk"], fmt)


def test_top_tokens_equal_softmax_of_full_forward(real_tokenizer):
    m = tiny(seed=6, scale=3.0)
    ref_model = copy.deepcopy(m)
    msgs = [D, O1, O2]
    top = sample.top_tokens(m, real_tokenizer, msgs, k=5)
    p = full_logprobs(ref_model, data.prompt_ids(real_tokenizer, msgs))[-1].exp()
    want_p, want_i = p.topk(5)
    assert [t for t, _ in top] == [real_tokenizer.decode([i]) for i in want_i.tolist()]
    assert [q for _, q in top] == pytest.approx(want_p.tolist(), rel=1e-4)
    with pytest.raises(cli.UserError, match="choose between 1 and the vocabulary size"):
        sample.top_tokens(m, real_tokenizer, msgs, k=300000)


def test_prompt_and_option_tokens_are_the_training_tokens(real_tokenizer):
    """prompt ids + option ids = the ids of the full sequence as data.py encodes it for training."""
    tok = with_chat(real_tokenizer)
    for fmt in ("spectrum", "colon", "chat"):
        msgs = [D, O1]
        prompt = data.prompt_ids(tok, msgs, fmt)
        cont = data.output_ids("Risk", tok, fmt)
        full = data.encode(data.render(msgs + [{"role": "output", "content": "Risk"}], tok, fmt), tok)[0]
        assert full[:len(prompt) + len(cont)] == prompt + cont, fmt


def test_colon_stops_at_newline(real_tokenizer):
    stops = set(data.stop_ids(real_tokenizer, "colon"))
    for t in ("\n", "\n\n"):
        assert real_tokenizer.hf.token_to_id(t) in stops
    assert real_tokenizer.eos_id in stops and real_tokenizer.close_id not in stops
    ids = real_tokenizer.encode(" Catan\n\n")
    assert ids[-1] in stops
    assert sample.decode_output(real_tokenizer, ids, True, "colon") == "Catan"
    ids = real_tokenizer.encode("Catan<end_of_turn>")
    assert sample.decode_output(real_tokenizer, ids, True, "spectrum") == "Catan"
    assert sample.decode_output(real_tokenizer, ids[:-1], False, "spectrum") == "Catan"


# --- prompts and the command line ---------------------------------------------------------------

def test_refuses_prompt_without_description_or_output(real_tokenizer, tmp_path, monkeypatch):
    m = tiny(vocab=262144, seed=0)
    for fn in (lambda msgs: sample.generate(m, real_tokenizer, msgs, n=1, max_new_tokens=1),
               lambda msgs: sample.top_tokens(m, real_tokenizer, msgs),
               lambda msgs: sample.option_probs(m, real_tokenizer, msgs, ["a"])):
        with pytest.raises(cli.UserError, match="expects a description or at least one example output"):
            fn([{"role": "input", "content": "Write a haiku"}])
        with pytest.raises(cli.UserError, match="empty"):
            fn([])
    short = tiny(seed=0)
    short.config.max_position_embeddings = 64
    long = [{"role": "description", "content": "word " * 300}]
    for fn in (lambda: sample.generate(short, real_tokenizer, long, n=1, max_new_tokens=10),
               lambda: sample.top_tokens(short, real_tokenizer, long),
               lambda: sample.option_probs(short, real_tokenizer, long, ["a", "b"])):
        with pytest.raises(cli.UserError, match="past the model's context of 64: shorten the prompt"):
            fn()
    monkeypatch.chdir(tmp_path)
    for argv, msg in ([["--input", "x"], "expects a description or at least one example output"],
                      [[], "expects a description or at least one example output"],
                      [["--desc", "Board games"], "no checkpoint in out/: run python train.py first"],
                      [["--desc", "x", "--top", "3", "--options", "a,b"], "separate modes"],
                      [["--bogus"], "unknown option --bogus"]):
        with pytest.raises(cli.UserError) as e:
            sample.main(*sample.parse_args(argv))
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_cli_messages_keep_argv_order(tmp_path):
    _, msgs = sample.parse_args(["--output", "A", "--input", "x", "--output", "B", "--desc", "D", "--input", "y"])
    assert msgs == [
        {"role": "description", "content": "D"}, {"role": "output", "content": "A"},
        {"role": "input", "content": "x"}, {"role": "output", "content": "B"}, {"role": "input", "content": "y"}]
    f = tmp_path / "m.json"
    f.write_text(json.dumps([O1]))
    _, msgs = sample.parse_args(["--messages", str(f), "--output", "B", "--desc", "D"])
    assert msgs == [{"role": "description", "content": "D"}, O1, {"role": "output", "content": "B"}]
    cfg, _ = sample.parse_args(["--options", "2, 3,4 ,,", "--desc", "x"])
    assert sample.read_options(cfg) == ["2", "3", "4"]
    for content, msg in ((json.dumps({"role": "output"}), "expected a JSON list"),
                         (json.dumps(["a", "b"]), "expected a JSON list .* got list of str"), ("{", "cannot read")):
        f.write_text(content)
        with pytest.raises(cli.UserError, match=msg):
            sample.parse_args(["--messages", str(f)])


# --- the real 270M -----------------------------------------------------------------------------

@pytest.mark.real
def test_model_card_prompts_end_to_end(real_ckpt, real_tokenizer, capsys, monkeypatch):
    """The model card's examples run on the real 270M (content not asserted: it is the untuned base
    model): samples are text and generation ends (a stop token or max_new_tokens)."""
    m = checkpoint.from_pretrained(real_ckpt, dtype=checkpoint.pick_dtype("auto", torch.device("cpu")))
    card_games = {"role": "description", "content": "Card games"}
    situations = [{"role": "description", "content": "Situations to do social reasoning over, along with "
                   "whether or not it is an awkward situation."}] + [
        {"role": "output", "content": json.dumps({"situation": s, "is_awkward": a})}
        for s, a in (("You're at a party and you realize that your shirt is on backwards.", True),
                     ("While at work, your boss commends you on a job well done.", False))]
    prompts = [[D, O1, O2], [O1, O2], [card_games],
               [card_games, {"role": "output", "content": "gin rummy"},
                {"role": "output", "content": "monopoly deal"}], situations]
    for msgs in prompts:
        texts, stopped = sample.generate(m, real_tokenizer, msgs, n=2, max_new_tokens=4)
        assert len(texts) == 2 and all(isinstance(t, str) for t in texts) and any(texts)
        assert len(stopped) == 2
    dice = [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]
    probs, coverage = sample.option_probs(m, real_tokenizer, dice, [str(i) for i in range(2, 13)])
    assert len(probs) == 11 and sum(probs) == pytest.approx(1.0) and 0 < coverage <= 1
    top = sample.top_tokens(m, real_tokenizer, [{"role": "description",
                                                 "content": "Pick a U.S. state uniformly at random."}])
    assert len(top) == 10 and all(0 < p <= 1 for _, p in top)
    # the command line, in-process, on the model loaded above: the dtype asked for is auto to sample
    # (bf16 where it is fast), float32 for probabilities
    asked = []
    monkeypatch.setattr(sample.checkpoint, "load", lambda ckpt, device, dtype: asked.append(dtype) or (m, real_tokenizer))
    sample.main(*sample.parse_args(["--ckpt", str(real_ckpt), "--desc", "Board games", "--output", "Settlers of Catan",
                                    "-n", "2", "--max_new_tokens", "4", "--json"]))
    out = json.loads(capsys.readouterr().out)
    assert len(out["samples"]) == 2 and len(out["stopped"]) == 2
    sample.main(*sample.parse_args(["--ckpt", str(real_ckpt), "--desc", dice[0]["content"],
                                    "--options", "2,3,4,5,6,7,8,9,10,11,12"]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Coverage: ") and len(lines) == 12 and lines[7].startswith(" 7. '8' -> ")
    sample.main(*sample.parse_args(["--ckpt", str(real_ckpt), "--desc", dice[0]["content"], "--top", "3", "--json"]))
    assert len(json.loads(capsys.readouterr().out)["top"]) == 3
    assert asked == ["auto", "float32", "float32"]
