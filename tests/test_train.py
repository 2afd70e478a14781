"""train.py on tiny random models: DDP/FSDP equivalence, exact resume, atomic checkpoints, faults."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import model as M
import train

ROOT = Path(__file__).resolve().parents[1]
# A driver that registers two toy tasks (so these tests do not depend on the suite's contents)
# and runs train.py's CLI on them.
DRIVER = """
import random, sys
sys.path.insert(0, {root!r})
import tasks, train
from tasks import Example, Instance, Task

def dice(seed=0, data_dir=None):
    r = random.Random(seed)
    return [Instance("toy_dice", [f"A die with {{s}} sides"], [Example(str(r.randint(1, s))) for _ in range(60)],
                     group=str(i)) for i, s in enumerate([4, 6, 8, 10, 12, 20] * 6)]

def coins(seed=0, data_dir=None):
    r = random.Random(seed + 1)
    return [Instance("toy_coin", ["Coin flips"], [Example(r.choice(["Heads", "Tails"])) for _ in range(30)])
            for _ in range(8)]

tasks.TASKS["toy_dice"] = Task("toy_dice", "train", "synthetic", instances=dice)
tasks.TASKS["toy_coin"] = Task("toy_coin", "val", "synthetic", instances=coins)
train.train(train.parse_args(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, real_ckpt):
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    m = M.Gemma(M.Config(vocab_size=262144, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                         num_kv_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=16, dtype="float32"))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.02)
    M.save_pretrained(m, d, tokenizer_from=real_ckpt)
    (d / "driver.py").write_text(DRIVER.format(root=str(ROOT)))
    return d


def common(tiny, out, **kw):
    args = dict(init=tiny, tasks="toy_dice", val_tasks="toy_coin", out_dir=out, max_len=96, window=16,
                batch_rows=4, micro_rows=1, max_steps=4, lr=1e-2, dtype="float32", eval_rows=2, log_every=1)
    return [f"--{k}={v}" for k, v in (args | kw).items()]


def run(tiny, out, nproc=1, check=True, **kw):
    launch = [sys.executable] + (["-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                                  "--standalone"] if nproc > 1 else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(launch + [str(tiny / "driver.py")] + common(tiny, out, **kw),
                       capture_output=True, text=True, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout[-2000:] + p.stderr[-4000:])
    return p


def weights(d):
    return M.from_pretrained(d).state_dict()


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_ddp_two_ranks_equal_one_rank_with_accumulation(tiny, tmp_path):
    run(tiny, tmp_path / "one", micro_rows=2)     # 1 rank x 2 micro-steps of 2 rows
    run(tiny, tmp_path / "two", nproc=2)          # 2 ranks x 2 micro-steps of 1 row
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    init = weights(tiny)
    assert max_diff(one, init) > 1e-3             # training moved the weights
    assert max_diff(one, two) < 1e-5              # the same updates, up to float reassociation


def test_fsdp_matches_ddp(tiny, tmp_path):
    run(tiny, tmp_path / "ddp", nproc=2)
    run(tiny, tmp_path / "fsdp", nproc=2, fsdp="true")
    assert max_diff(weights(tmp_path / "ddp"), weights(tmp_path / "fsdp")) < 1e-5


def test_sigterm_saves_and_resume_is_exact(tiny, tmp_path):
    run(tiny, tmp_path / "full", max_steps=12)
    out = tmp_path / "cut"
    cmd = [sys.executable, str(tiny / "driver.py")] + common(tiny, out, max_steps=12)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.time() + 120  # interrupt once training is under way
    while time.time() < deadline and not (log.exists() and '"loss"' in log.read_text()):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    stdout, _ = p.communicate(timeout=120)
    assert p.returncode == 0 and "SIGTERM: saved step" in stdout
    stopped = json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"]
    assert 0 < stopped < 12, stdout
    run(tiny, out, max_steps=12, resume="true")
    assert max_diff(weights(tmp_path / "full"), weights(out)) == 0.0


def test_resume_without_checkpoint_is_one_line(tiny, tmp_path):
    p = run(tiny, tmp_path / "none", check=False, resume="true")
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith("--resume: no checkpoint in")


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(tiny, tmp_path):
    run(tiny, tmp_path / "ok", max_steps=2)
    before = weights(tmp_path / "ok")
    broken = M.from_pretrained(tiny)
    with torch.no_grad():
        broken.norm.weight[0] = float("nan")
    M.save_pretrained(broken, tmp_path / "broken", tokenizer_from=tiny)
    p = run(tiny, tmp_path / "ok", check=False, init=tmp_path / "broken", eval_rows=0)
    assert p.returncode == 1 and "loss is nan; stopping" in p.stdout
    assert max_diff(before, weights(tmp_path / "ok")) == 0.0


def test_interrupted_save_never_replaces_good_checkpoint(tiny, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run(tiny, out, max_steps=2)
    good = weights(out)
    cfg = train.parse_args(common(tiny, out))

    def crash(*a, **k):
        Path(a[1]).mkdir(parents=True, exist_ok=True)
        (Path(a[1]) / "config.json").write_text("{half")
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(M, "save_pretrained", crash)
    m = M.from_pretrained(tiny)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(cfg, m, torch.optim.AdamW(m.parameters()), None, 3, 0, 1, tiny)
    assert M.last_checkpoint(out) == out and max_diff(good, weights(out)) == 0.0
    # killed between the two renames: out/ is gone, out.prev/ is the last good checkpoint
    os.rename(out, str(out) + ".prev")
    assert M.last_checkpoint(out) == Path(str(out) + ".prev")


def test_chat_tokens_copies_exactly_those_rows(tiny, tmp_path):
    src = tmp_path / "it"
    m = M.from_pretrained(tiny)
    with torch.no_grad():
        m.embed_tokens.weight.add_(1.0)  # a different "instruction-tuned" model
    M.save_pretrained(m, src)
    base = M.from_pretrained(tiny)
    before = base.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    train.copy_chat_tokens(base, str(src))
    after = base.state_dict()
    changed = (after["embed_tokens.weight"] != before["embed_tokens.weight"]).any(1).nonzero().flatten().tolist()
    assert changed == [105, 106]
    assert torch.equal(after["embed_tokens.weight"][105:107], m.embed_tokens.weight[105:107])
    assert all(torch.equal(after[k], before[k]) for k in before if k != "embed_tokens.weight")

    # "eos": no instruction-tuned sibling at hand, <end_of_turn> starts as the model's own <eos>
    copied = base.embed_tokens.weight.detach().clone()
    train.copy_chat_tokens(base, "eos")
    w = base.embed_tokens.weight
    changed = (w != copied).any(1).nonzero().flatten().tolist()
    assert changed == [106] and torch.equal(w[106], before["embed_tokens.weight"][1])


def test_cli_errors():
    with pytest.raises(SystemExit, match="unknown option --lrr"):
        train.parse_args(["--lrr=1"])
    with pytest.raises(SystemExit, match="takes a float"):
        train.parse_args(["--lr=fast"])
    with pytest.raises(SystemExit, match="unknown preset"):
        train.parse_args(["papr"])
    assert train.parse_args(["paper"]).init == "google/gemma-3-12b-pt"


def test_flops_count_by_hand():
    c = M.Config(vocab_size=10, hidden_size=4, intermediate_size=8, num_layers=1, num_heads=1, num_kv_heads=1,
                 head_dim=4, query_pre_attn_scalar=4, sliding_window=2, layer_types=["sliding_attention"])
    batch = {"seq": torch.tensor([[0, 0, 0, -1]]), "mask": torch.tensor([[0, 1, 1, 0]])}
    # 3 real tokens x (q,k,v,o: 4*4*4 + mlp: 3*4*8) params; 2 loss tokens x 10*4 logits;
    # window 2 over 3 queries: 1 + 2 + 2 keys
    assert train.train_flops(c, batch) == 6 * 3 * (64 + 96) + 6 * 2 * 40 + 6 * 2 * 4 * 5
