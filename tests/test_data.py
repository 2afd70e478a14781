"""data.py: the formats' exact strings per family (written out by hand), masks, whole-string tokenization
against transformers' apply_chat_template, dropout, budget fitting, packing, the stream."""
import json
import random

import pytest
import torch

import checkpoint
import cli
import data
import model as M
from conftest import GEMMA_IT, tiny_tokenizer
from tasks import Example, Instance

D = {"role": "description", "content": "Board games"}
O1 = {"role": "output", "content": "Settlers of Catan"}
O2 = {"role": "output", "content": "Twilight Imperium"}
I1 = {"role": "input", "content": "Two players"}
TOKS = {f: tiny_tokenizer(f) for f in ("gemma3", "qwen3", "llama")}


def joined(segs):
    return "".join(t for t, _ in segs)


def scored(segs):
    return [t for t, loss in segs if loss]


# --- exact strings (written out by hand from the formats of the three families) -----------------

SPECTRUM = {
    "gemma3": ("<bos><start_of_turn>description\nBoard games<end_of_turn>\n"
               "<start_of_turn>output\nSettlers of Catan<end_of_turn>\n"
               "<start_of_turn>input\nTwo players<end_of_turn>\n"
               "<start_of_turn>output\nTwilight Imperium<end_of_turn>\n", "<end_of_turn>"),
    "qwen3": ("<|im_start|>description\nBoard games<|im_end|>\n"
              "<|im_start|>output\nSettlers of Catan<|im_end|>\n"
              "<|im_start|>input\nTwo players<|im_end|>\n"
              "<|im_start|>output\nTwilight Imperium<|im_end|>\n", "<|im_end|>"),
    "llama": ("<|begin_of_text|><|start_header_id|>description<|end_header_id|>\n\nBoard games<|eot_id|>"
              "<|start_header_id|>output<|end_header_id|>\n\nSettlers of Catan<|eot_id|>"
              "<|start_header_id|>input<|end_header_id|>\n\nTwo players<|eot_id|>"
              "<|start_header_id|>output<|end_header_id|>\n\nTwilight Imperium<|eot_id|>", "<|eot_id|>"),
}


@pytest.mark.parametrize("family", list(SPECTRUM))
def test_spectrum_with_description(family):
    text, end = SPECTRUM[family]
    segs = data.render([D, O1, I1, O2], TOKS[family])
    assert joined(segs) == text
    assert scored(segs) == ["Settlers of Catan" + end, "Twilight Imperium" + end]


@pytest.mark.parametrize("family", list(SPECTRUM))
def test_spectrum_without_description_first_output_unscored(family):
    end = SPECTRUM[family][1]
    segs = data.render([O1, O2, I1, O1], TOKS[family])
    assert scored(segs) == ["Twilight Imperium" + end, "Settlers of Catan" + end]


def test_generation_prompt():
    assert joined(data.render([D], TOKS["gemma3"], generation_prompt=True)) == (
        "<bos><start_of_turn>description\nBoard games<end_of_turn>\n<start_of_turn>output\n")
    assert joined(data.render([D], TOKS["qwen3"], generation_prompt=True)) == (
        "<|im_start|>description\nBoard games<|im_end|>\n<|im_start|>output\n")
    assert joined(data.render([D], TOKS["llama"], generation_prompt=True)) == (
        "<|begin_of_text|><|start_header_id|>description<|end_header_id|>\n\nBoard games<|eot_id|>"
        "<|start_header_id|>output<|end_header_id|>\n\n")
    assert joined(data.render([D, O1], TOKS["gemma3"], "colon", generation_prompt=True)) == (
        "<bos>Description: Board games\n\nOutput: Settlers of Catan\n\nOutput:")
    assert joined(data.render([D, O1], TOKS["qwen3"], "colon", generation_prompt=True)) == (
        "Description: Board games\n\nOutput: Settlers of Catan\n\nOutput:")


def test_colon_scores_every_output_with_terminator():
    segs = data.render([I1, {"role": "output", "content": " Risk "}, O2], TOKS["gemma3"], "colon")
    assert joined(segs) == "<bos>Input: Two players\n\nOutput: Risk\n\nOutput: Twilight Imperium\n\n"
    assert scored(segs) == [" Risk\n\n", " Twilight Imperium\n\n"]


def test_chat_baseline_through_the_checkpoints_template():
    tok = tiny_tokenizer("gemma3", chat_template=GEMMA_IT)
    segs = data.render([O1, I1, O2], tok, "chat", generation_prompt=True)
    text = joined(segs)
    assert text.startswith("<bos><start_of_turn>user\n" + data.CHAT_SYSTEM + "\n\nExample Output: Settlers of Catan"
                           "\n\nTwo players<end_of_turn>\n<start_of_turn>model\n")
    assert text.endswith("Twilight Imperium<end_of_turn>\n<start_of_turn>user\nGenerate<end_of_turn>\n"
                         "<start_of_turn>model\n")
    assert scored(segs) == ["Twilight Imperium<end_of_turn>"]  # the example in the system prompt is not
    segs = data.render([D, {"role": "output", "content": "  Risk "}, O2], tok, "chat")
    assert scored(segs) == ["Risk<end_of_turn>", "Twilight Imperium<end_of_turn>"]  # as the template trims
    with pytest.raises(cli.UserError, match="has no chat template.*use --format colon"):
        data.render([D, O1], tiny_tokenizer("gemma3"), "chat")


@pytest.mark.parametrize("bad, msg", [
    ([], "empty"),
    ([{"role": "user", "content": "x"}], "unknown role 'user'"),
    ([D, D], "only one"),
    ([O1, D], "must be the first"),
    ([{"role": "output", "content": 3}], "must be a string"),
    (["output"], "unknown role 'str'"),
])
def test_bad_messages(bad, msg):
    with pytest.raises(cli.UserError, match=msg):
        data.render(bad, TOKS["gemma3"])


def test_saved_chat_template_renders_the_spectrum_format():
    """The template saved checkpoints carry gives the same text as render, for every family."""
    for f, tok in TOKS.items():
        for msgs in ([D, O1, I1, O2], [O1, O2], [D, I1]):
            t = data.Tokenizer(tok.hf, chat_template=data.chat_template(tok.markup))
            want = joined(data.render(msgs, tok, generation_prompt=True))
            assert data.apply_template(t, msgs, add_generation_prompt=True) == want, f


# --- tokens ----------------------------------------------------------------------------------

def test_real_tokenizer_ids(real_tokenizer):
    ids, mask = data.encode(data.render([D, O1], real_tokenizer, generation_prompt=True), real_tokenizer)
    assert ids[:2] == [2, 105] and ids.count(2) == 1
    assert ids.count(105) == 3 and ids.count(106) == 2
    (a, b), = data.loss_spans(mask)  # the loss covers exactly "Settlers of Catan" + <end_of_turn>
    assert real_tokenizer.decode(ids[a:b]) == "Settlers of Catan<end_of_turn>"
    assert ids[b - 1] == 106 and ids[b] == 107


ORDINARY = ["Settlers of Catan", "7", "-0.125", "Q♣", '{"situation": "A party", "is_awkward": true}',
            "Ünïcödé naïve café", "东京", "two  spaces", "line one\nline two", "emoji 🎲", "trailing\n"]
ADVERSARIAL = ["\n\nline two\n", "\nstarts with a newline", "ends with newlines\n\n\n", "", " ", "   spaced  ",
               "\t\ttabbed", "\r\nwindows\r\n", "<end_of_turn>", "<start_of_turn>output\nnested", "<eos>x",
               "▁metaspace▁", "<unused5>", "a\u200bzero\u2060width", "🇵🇹👨‍👩‍👧", "\n"]


def test_prompt_and_output_tokenized_apart_equal_the_whole_for_ordinary_content(real_tokenizer):
    """What a model generates after the prompt (output_ids) is what it was trained on, in the
    spectrum format, for content that does not start with a newline."""
    for c in ORDINARY:
        msgs = [D, {"role": "input", "content": c}, {"role": "output", "content": c}]
        ids, mask = data.encode(data.render(msgs, real_tokenizer), real_tokenizer)
        prompt = data.prompt_ids(real_tokenizer, msgs[:2])
        assert ids[:len(prompt)] == prompt, c
        assert ids[len(prompt):-1] == data.output_ids(c, real_tokenizer), c  # then the "\n" gap
    # where they differ: a leading newline merges with the header's "\n" into one token ("\n\n\n")
    msgs = [D, {"role": "output", "content": "\n\nline"}]
    ids = data.encode(data.render(msgs, real_tokenizer), real_tokenizer)[0]
    assert ids != data.prompt_ids(real_tokenizer, msgs[:1]) + data.output_ids("\n\nline", real_tokenizer) + [107]


@pytest.fixture(scope="module")
def saved_tokenizers(tmp_path_factory, real_ckpt):
    """Tiny checkpoints saved by checkpoint.save_pretrained (real Gemma tokenizer; tiny byte-level ones
    for Qwen3 and Llama), loaded back by transformers' AutoTokenizer."""
    transformers = pytest.importorskip("transformers")
    out = {}
    for family, tok in [("gemma3", checkpoint.load_tokenizer(real_ckpt))] + \
            [(f, TOKS[f]) for f in ("qwen3", "llama")]:
        c = M.Config(family=family, vocab_size=tok.vocab_size, hidden_size=8, intermediate_size=8, num_layers=1,
                     num_heads=1, num_kv_heads=1, head_dim=8, sliding_window=8)
        d = tmp_path_factory.mktemp(family)
        checkpoint.save_pretrained(M.Transformer(c), d, tok)
        out[family] = (checkpoint.load_tokenizer(d), transformers.AutoTokenizer.from_pretrained(d))
    return out


@pytest.mark.parametrize("family", ["gemma3", "qwen3", "llama"])
def test_ids_equal_apply_chat_template_on_adversarial_contents(saved_tokenizers, family):
    ours, hf = saved_tokenizers[family]
    for c in ORDINARY + ADVERSARIAL:
        for msgs in ([D, {"role": "input", "content": c}, {"role": "output", "content": c}, O2],
                     [{"role": "output", "content": c}, {"role": "output", "content": c}]):
            ids, mask = data.encode(data.render(msgs, ours), ours)
            got = hf.apply_chat_template(msgs, tokenize=True)
            got = got["input_ids"] if hasattr(got, "keys") else got  # a BatchEncoding in transformers 5
            assert list(got) == ids, (family, c)
            # every scored output's text lies inside its run of loss tokens
            spans = data.loss_spans(mask)
            outs = [m["content"] for m in msgs if m["role"] == "output"][1 - (msgs[0]["role"] == "description"):]
            assert len(spans) == len(outs), (family, c)
            for (a, b), o in zip(spans, outs):  # (a literal "▁" decodes as a space in Gemma's vocabulary)
                want = (o + ours.markup.close).replace("\u2581", " " if family == "gemma3" else "\u2581")
                assert want in ours.decode(ids[a - 1:b]), (family, c)
    with pytest.raises(Exception, match="Spectrum roles"):
        hf.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


# --- sequences from instances -----------------------------------------------------------------

def inst(n=200, descriptions=("Draws of a die",), input_every=0):
    ex = [Example(str(i % 6 + 1), f"roll {i}" if input_every and i % input_every == 0 else None)
          for i in range(n)]
    return Instance(task="toy", descriptions=list(descriptions), examples=ex, group="die")


def test_draw_fits_whole_examples(real_tokenizer):
    pool = inst(input_every=3)
    biggest = max(len(data.encode(data.render(data.example_messages(e), real_tokenizer), real_tokenizer)[0]) - 1
                  for e in pool.examples)
    for seed in range(20):
        msgs, ids, mask = data.draw(pool, random.Random(seed), real_tokenizer, 0.5, 128)
        assert len(ids) <= 128
        # no half outputs: every output message appears whole and its span ends with <end_of_turn>
        spans = data.loss_spans(mask)
        outs = [m["content"] for m in msgs if m["role"] == "output"]
        first_scored = 0 if msgs[0]["role"] == "description" else 1
        assert len(spans) == len(outs) - first_scored
        for (a, b), o in zip(spans, outs[first_scored:]):
            assert real_tokenizer.decode(ids[a:b]) == o + "<end_of_turn>"
        assert len(ids) + biggest > 128  # it stopped because of the budget, not early


def test_description_dropout_rate(real_tokenizer):
    n = 2000  # rate 0.2 +- 4 sigma (0.036) excludes both 0 and the reference's 0.4
    kept = sum(data.draw(inst(20), random.Random(s), real_tokenizer, 0.2, 1024)[0][0]["role"] == "description"
               for s in range(n))
    assert abs((1 - kept / n) - 0.2) < 4 * (0.2 * 0.8 / n) ** 0.5


def test_examples_shuffled_per_draw(real_tokenizer):
    firsts = {data.draw(inst(50), random.Random(s), real_tokenizer, 0.0, 1024)[0][1]["content"] for s in range(30)}
    assert len(firsts) == 6


def test_no_loss_sequence_long_examples_and_long_descriptions(real_tokenizer):
    one = Instance("toy", [], [Example("only one")])
    assert data.draw(one, random.Random(0), real_tokenizer, 0.2, 1024) is None
    long = Instance("toy", ["d"], [Example("word " * 300)], group="x")
    with pytest.raises(cli.UserError, match="needs .* tokens > max_len 64"):
        data.draw(long, random.Random(0), real_tokenizer, 0.0, 64)
    # drop_long_examples leaves them out and says how many, per task
    mixed = Instance("toy", ["d"], [Example("word " * 300), Example("a"), Example("b")], group="x")
    kept, dropped = data.drop_long_examples([mixed, long], real_tokenizer, 64)
    assert dropped == {"toy": 2} and len(kept) == 1 and [e.output for e in kept[0].examples] == ["a", "b"]
    # a description too long to share the budget with an example: the sequence goes without it
    wordy = Instance("toy", ["very " * 40], [Example("x"), Example("y")], group="w")
    msgs, ids, _ = data.draw(wordy, random.Random(0), real_tokenizer, 0.0, 40)
    assert msgs[0]["role"] == "output" and len(ids) <= 40


# --- packing and the stream -------------------------------------------------------------------

def test_packing_fill_and_layout(real_tokenizer):
    instances = [inst(n, input_every=2) for n in (3, 8, 40, 200) * 10]
    stream = data.Stream(instances, real_tokenizer, data.StreamConfig(max_len=256, window=40, p_drop=0.0))
    batch, n_loss = stream.next_batch(8)
    assert batch["ids"].shape == (8, 256)
    assert n_loss == int(batch["mask"].sum())
    for r in range(8):  # positions restart at 0 at each new sequence id
        s, p = batch["seq"][r], batch["pos"][r]
        starts = torch.nonzero(torch.diff(s) != 0).flatten() + 1
        assert all(p[i] == 0 for i in starts) and p[0] == 0
        assert batch["ids"][r, 0] == real_tokenizer.bos_id
    stream.rows_per_epoch()
    assert stream.real_tokens / stream.row_tokens >= 0.95


def test_rows_per_epoch_draws_once_and_keeps_the_window_being_read(real_tokenizer, monkeypatch):
    # a time-budgeted run asks at every re-plan: redrawing the epoch each time cost seconds a re-plan
    draws = []
    real_draw = data.draw
    monkeypatch.setattr(data, "draw", lambda *a: draws.append(1) or real_draw(*a))
    instances = [inst(n, input_every=2) for n in (3, 8, 40, 200) * 10]

    def stream():  # windows of 20: two in the epoch
        return data.Stream(instances, real_tokenizer, data.StreamConfig(max_len=256, window=20, p_drop=0.0))

    n, fresh, asked = stream().rows_per_epoch(), stream(), stream()
    expected = [fresh.next_batch(2)]
    del draws[:]
    expected += [fresh.next_batch(2) for _ in range(3)]
    reading_on = len(draws)
    got = [asked.next_batch(2)]
    del draws[:]
    assert asked.rows_per_epoch() == n and len(draws) == 20  # window 1 only: window 0, being read, stays built
    assert asked.rows_per_epoch() == n and len(draws) == 20  # and a second ask draws nothing
    del draws[:]
    got += [asked.next_batch(2) for _ in range(3)]
    assert len(draws) == reading_on
    for (g, n_g), (e, n_e) in zip(got, expected):
        assert n_g == n_e and all(torch.equal(g[k], e[k]) for k in e)


def test_packed_logits_equal_each_sequence_alone(real_tokenizer):
    c = M.Config(vocab_size=262144, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2,
                 num_kv_heads=1, head_dim=8, sliding_window=16)
    torch.manual_seed(0)
    tiny = M.Transformer(c)
    for p in tiny.parameters():
        torch.nn.init.normal_(p, std=0.3)
    stream = data.Stream([inst(n) for n in (5, 9, 30)], real_tokenizer,
                         data.StreamConfig(max_len=160, window=3, p_drop=0.0))
    rows = stream.window_rows(0, 0)
    seqs, row = max(rows, key=lambda r: len(r[1]))
    assert len(row) >= 2
    b = data.collate(seqs, [row], 160)
    with torch.no_grad():
        packed = tiny.logits(tiny(b["ids"], pos=b["pos"], seq=b["seq"]))[0]
        at = 0
        for i in row:
            ids = torch.tensor([seqs[i][0]])
            alone = tiny.logits(tiny(ids))[0]
            assert (packed[at:at + ids.shape[1]] - alone).abs().max() < 1e-5
            at += ids.shape[1]


def test_stream_deterministic_sharded_and_resumable(real_tokenizer):
    instances = [inst(n, input_every=2) for n in (3, 8, 40, 200) * 6]
    cfg = data.StreamConfig(max_len=128, window=7, seed=5)
    one = data.Stream(instances, real_tokenizer, cfg)
    full = [one.next_batch(4)[0]["ids"] for _ in range(6)]  # crosses windows and an epoch boundary
    assert one.epoch >= 1
    # two ranks: disjoint halves of the same global batches, same global loss count
    r0, r1 = (data.Stream(instances, real_tokenizer, cfg, rank=r, world=2) for r in (0, 1))
    for step in range(6):
        (b0, n0), (b1, n1) = r0.next_batch(2), r1.next_batch(2)
        assert n0 == n1
        assert torch.equal(torch.stack([b0["ids"], b1["ids"]], 1).reshape(4, -1), full[step])
    # resume: a fresh stream restored after 3 steps continues identically
    a = data.Stream(instances, real_tokenizer, cfg)
    for _ in range(3):
        a.next_batch(4)
    b = data.Stream(instances, real_tokenizer, cfg)
    b.load_state_dict(a.state_dict())
    for step in range(3, 6):
        assert torch.equal(b.next_batch(4)[0]["ids"], full[step])
    with pytest.raises(cli.UserError, match="same --seed"):
        data.Stream(instances, real_tokenizer, data.StreamConfig(seed=6)).load_state_dict(a.state_dict())
    gone = "the run had 24 instances of 1 tasks, this has 23 of 1 \\(first difference: toy\\)"
    with pytest.raises(cli.UserError, match=gone):  # resumed where a data file has gone missing
        data.Stream(instances[:-1], real_tokenizer, cfg).load_state_dict(a.state_dict())


def test_stream_with_nothing_to_draw_stops_instead_of_looping(real_tokenizer):
    lonely = [Instance("toy", [], [Example("only one")]) for _ in range(5)]
    with pytest.raises(cli.UserError, match="no training sequence can be drawn"):
        data.Stream(lonely, real_tokenizer, data.StreamConfig(max_len=64, window=2)).next_batch(1)


def test_tokenizer_without_turn_tokens_is_refused(real_ckpt, tmp_path):
    tok = json.loads((real_ckpt / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<start_of_turn>"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(cli.UserError, match="none of the turn tokens"):
        checkpoint.load_tokenizer(tmp_path)
