"""data.py: exact strings (DESIGN.md §3), masks, dropout, budget fitting, packing, the stream."""
import random

import pytest
import torch

import data
import model as M
from tasks import Example, Instance

D = {"role": "description", "content": "Board games"}
O1 = {"role": "output", "content": "Settlers of Catan"}
O2 = {"role": "output", "content": "Twilight Imperium"}
I1 = {"role": "input", "content": "Two players"}


def joined(segs):
    return "".join(t for t, _ in segs)


def scored(segs):
    return [t for t, loss in segs if loss]


# --- exact strings (written out by hand from the spec) ---------------------------------------

def test_spectrum_with_description():
    segs = data.render([D, O1, I1, O2])
    assert joined(segs) == ("<start_of_turn>description\nBoard games<end_of_turn>\n"
                            "<start_of_turn>output\nSettlers of Catan<end_of_turn>\n"
                            "<start_of_turn>input\nTwo players<end_of_turn>\n"
                            "<start_of_turn>output\nTwilight Imperium<end_of_turn>\n")
    assert scored(segs) == ["Settlers of Catan<end_of_turn>", "Twilight Imperium<end_of_turn>"]


def test_spectrum_without_description_first_output_unscored():
    segs = data.render([O1, O2, I1, O1])
    assert joined(segs).startswith("<start_of_turn>output\nSettlers of Catan<end_of_turn>\n")
    assert scored(segs) == ["Twilight Imperium<end_of_turn>", "Settlers of Catan<end_of_turn>"]


def test_generation_prompt():
    assert joined(data.render([D], generation_prompt=True)) == (
        "<start_of_turn>description\nBoard games<end_of_turn>\n<start_of_turn>output\n")
    assert joined(data.render([D, O1], "colon", generation_prompt=True)) == (
        "Description: Board games\n\nOutput: Settlers of Catan\n\nOutput:")


def test_colon_scores_every_output_with_terminator():
    segs = data.render([I1, {"role": "output", "content": " Risk "}, O2], "colon")
    assert joined(segs) == "Input: Two players\n\nOutput: Risk\n\nOutput: Twilight Imperium\n\n"
    assert scored(segs) == [" Risk\n\n", " Twilight Imperium\n\n"]


def test_chat_baseline_turns():
    segs = data.render([O1, I1, O2], "chat", generation_prompt=True)
    text = joined(segs)
    assert text.startswith("<start_of_turn>user\n" + data.CHAT_SYSTEM + "\n\nExample Output: Settlers of Catan"
                           "\n\nTwo players<end_of_turn>\n<start_of_turn>model\n")
    assert text.endswith("Twilight Imperium<end_of_turn>\n<start_of_turn>user\nGenerate<end_of_turn>\n"
                         "<start_of_turn>model\n")
    assert scored(segs) == ["Twilight Imperium<end_of_turn>"]  # the example in the system prompt is not


@pytest.mark.parametrize("bad, msg", [
    ([], "empty message list"),
    ([{"role": "user", "content": "x"}], "unknown role 'user'"),
    ([D, D], "only one"),
    ([O1, D], "must be the first"),
    ([{"role": "output", "content": 3}], "must be a string"),
])
def test_bad_messages(bad, msg):
    with pytest.raises(ValueError, match=msg):
        data.render(bad)


# --- tokens ----------------------------------------------------------------------------------

def test_real_tokenizer_ids(real_tokenizer):
    ids, mask = data.encode(data.render([D, O1], generation_prompt=True), real_tokenizer)
    assert ids[:2] == [2, 105] and ids.count(2) == 1
    assert ids.count(105) == 3 and ids.count(106) == 2
    # the loss covers exactly "Settlers of Catan" + <end_of_turn>
    (a, b), = data.loss_spans(mask)
    assert real_tokenizer.decode(ids[a:b], skip_special_tokens=False) == "Settlers of Catan<end_of_turn>"
    assert ids[b - 1] == 106 and ids[b] == 107


ORDINARY = ["Settlers of Catan", "7", "-0.125", "Q♣", '{"situation": "A party", "is_awkward": true}',
            "Ünïcödé naïve café", "东京", "two  spaces", "line one\nline two", "emoji 🎲"]


def test_segmentwise_equals_joined_for_ordinary_content(real_tokenizer):
    for c in ORDINARY:
        for fmt in ("spectrum", "colon", "chat"):
            segs = data.render([D, {"role": "input", "content": c}, {"role": "output", "content": c}], fmt)
            ids, _ = data.encode(segs, real_tokenizer)
            assert ids == real_tokenizer.encode(joined(segs)).ids, (fmt, c)


def test_where_segmentwise_differs(real_tokenizer):
    """Documented: content starting with a newline merges with the header's \\n when the text is
    tokenized joined ("\\n\\n" is one token), but not segment by segment. We train on the segments,
    which is also what the model sees when it generates after the header."""
    segs = data.render([D, {"role": "output", "content": "\nstarts with a newline"}])
    assert data.encode(segs, real_tokenizer)[0] != real_tokenizer.encode(joined(segs)).ids


def test_chat_template_matches_render(real_ckpt, tmp_path):
    transformers = pytest.importorskip("transformers")
    tiny = M.Gemma(M.Config(vocab_size=262144, hidden_size=8, intermediate_size=8, num_layers=1,
                            num_heads=1, num_kv_heads=1, head_dim=8, query_pre_attn_scalar=8))
    M.save_pretrained(tiny, tmp_path, tokenizer_from=real_ckpt, chat_template=data.CHAT_TEMPLATE)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ours = M.load_tokenizer(tmp_path)
    for msgs in ([D, O1, I1, O2], [O1, O2], [D, I1]):
        want = data.encode(data.render(msgs, generation_prompt=True), ours)[0]
        got = hf_tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        got = got["input_ids"] if hasattr(got, "keys") else got  # a BatchEncoding in transformers 5
        assert list(got) == want
    with pytest.raises(Exception, match="Spectrum roles"):
        hf_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


# --- sequences from instances -----------------------------------------------------------------

def inst(n=200, descriptions=("Draws of a die",), input_every=0):
    ex = [Example(str(i % 6 + 1), f"roll {i}" if input_every and i % input_every == 0 else None)
          for i in range(n)]
    return Instance(task="toy", descriptions=list(descriptions), examples=ex, group="die")


def test_draw_fits_whole_examples(real_tokenizer):
    pool = inst(input_every=3)
    biggest = max(len(data.encode(data.render(data.example_messages(e)), real_tokenizer)[0]) - 1
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
            assert real_tokenizer.decode(ids[a:b], skip_special_tokens=False) == o + "<end_of_turn>"
        # it stopped because of the budget, not early
        assert len(ids) + biggest > 128


def test_description_dropout_rate(real_tokenizer):
    n = 2000  # rate 0.2 +- 4 sigma (0.036) excludes both 0 and the reference's 0.4
    kept = sum(data.draw(inst(20), random.Random(s), real_tokenizer, 0.2, 1024)[0][0]["role"] == "description"
               for s in range(n))
    assert abs((1 - kept / n) - 0.2) < 4 * (0.2 * 0.8 / n) ** 0.5


def test_examples_shuffled_per_draw(real_tokenizer):
    firsts = {data.draw(inst(50), random.Random(s), real_tokenizer, 0.0, 1024)[0][1]["content"] for s in range(30)}
    assert len(firsts) == 6


def test_no_loss_sequence_is_skipped_and_long_example_is_an_error(real_tokenizer):
    one = Instance("toy", [], [Example("only one")])
    assert data.draw(one, random.Random(0), real_tokenizer, 0.2, 1024) is None
    long = Instance("toy", ["d"], [Example("word " * 300)], group="x")
    with pytest.raises(ValueError, match="needs .* tokens > max_len 64"):
        data.draw(long, random.Random(0), real_tokenizer, 0.0, 64)


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
        assert batch["ids"][r, 0] == data.BOS
    stream.rows_per_epoch()
    assert stream.real_tokens / stream.row_tokens >= 0.95


def test_packed_logits_equal_each_sequence_alone(real_tokenizer):
    c = M.Config(vocab_size=262144, hidden_size=16, intermediate_size=32, num_layers=2, num_heads=2,
                 num_kv_heads=1, head_dim=8, query_pre_attn_scalar=8, sliding_window=16)
    torch.manual_seed(0)
    tiny = M.Gemma(c)
    for p in tiny.parameters():
        torch.nn.init.normal_(p, std=0.3)
    stream = data.Stream([inst(n) for n in (5, 9, 30)], real_tokenizer,
                         data.StreamConfig(max_len=160, window=3, p_drop=0.0))
    rows = stream.window_rows(0, 0)
    seqs, row = max(rows, key=lambda r: len(r[1]))
    assert len(row) >= 2
    b = data.collate(seqs, [row], 160)
    with torch.no_grad():
        packed = tiny(b["ids"], pos=b["pos"], seq=b["seq"])[0]
        at = 0
        for i in row:
            ids = torch.tensor([seqs[i][0]])
            alone = tiny(ids)[0]
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
    with pytest.raises(ValueError, match="same --seed"):
        data.Stream(instances, real_tokenizer, data.StreamConfig(seed=6)).load_state_dict(a.state_dict())
