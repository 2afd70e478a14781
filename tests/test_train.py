"""train.py on tiny random models: DDP/FSDP equivalence, exact resume, checkpoints that no single kill
can lose, signals mid-step, the run directory's rules, faults."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import checkpoint
import cli
import model as M
import train
from conftest import tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
# A driver that registers two toy tasks (so these tests do not depend on the suite's contents), can
# make a chosen moment slow or fatal (SPECTRUM_TEST_SLOW="function:seconds", SPECTRUM_TEST_KILL=
# "function:n": SIGKILL inside the n-th call), and runs train.py's command line.
DRIVER = """
import os, random, signal, sys, time
sys.path.insert(0, {root!r})
import checkpoint, cli, shutil, tasks, train
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
MODULES = {{"loss_sums": train, "save_pretrained": checkpoint, "write_atomic": train, "rmtree": shutil,
           "save_checkpoint": train}}
# SPECTRUM_TEST_SLOW=name:seconds[:from_call] sleeps in each call (from that call on);
# SPECTRUM_TEST_KILL=name:call kills the process at that call
for spec, act in ((os.environ.get("SPECTRUM_TEST_SLOW"), "slow"), (os.environ.get("SPECTRUM_TEST_KILL"), "kill")):
    if spec:
        name, arg, *start = spec.split(":")
        mod, calls = MODULES[name], [0]
        orig = getattr(mod, name)
        def hooked(*a, _orig=orig, _act=act, _arg=float(arg), _from=int(start[0]) if start else 1, **k):
            calls[0] += 1
            if _act == "slow":
                if calls[0] >= _from:
                    time.sleep(_arg)
            elif calls[0] == _arg:
                if name == "save_pretrained":  # die half-way through writing the checkpoint
                    os.makedirs(a[1], exist_ok=True)
                    open(os.path.join(a[1], "config.json"), "w").write("{{half")
                os.kill(os.getpid(), signal.SIGKILL)
            return _orig(*a, **k)
        setattr(mod, name, hooked)
cli.run(lambda: train.train(*train.parse_args(sys.argv[1:])))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Gemma with a tiny byte-level tokenizer, and the driver."""
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    tok = tiny_tokenizer("gemma3")
    m = M.Transformer(M.Config(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_layers=2,
                               num_heads=2, num_kv_heads=1, head_dim=16, sliding_window=16, dtype="float32"))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.02)
    checkpoint.save_pretrained(m, d, tok)
    (d / "driver.py").write_text(DRIVER.format(root=str(ROOT)))
    return d


def common(tiny, out, **kw):
    args = dict(init=tiny, tasks="toy_dice", val_tasks="toy_coin", out_dir=out, max_len=96, window=16,
                batch_rows=4, micro_rows=1, max_steps=4, lr=1e-2, dtype="float32", eval_rows=2, log_every=1,
                time_budget=0)
    return [f"--{k}={v}" for k, v in (args | kw).items()]


def run(tiny, out, nproc=1, check=True, env=None, **kw):
    launch = [sys.executable] + (["-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                                  "--standalone"] if nproc > 1 else [])
    p = subprocess.run(launch + [str(tiny / "driver.py")] + common(tiny, out, **kw), capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})), timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout[-2000:] + p.stderr[-4000:])
    return p


def start(tiny, out, env=None, **kw):
    return subprocess.Popen([sys.executable, str(tiny / "driver.py")] + common(tiny, out, **kw), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


def weights(d):
    return checkpoint.from_pretrained(checkpoint.resolve(d)).state_dict()


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def last_error(p):
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return lines[-1]


@pytest.fixture(scope="module")
def full(tiny, tmp_path_factory):
    """The uninterrupted 8-step run every interrupted one must end up equal to."""
    out = tmp_path_factory.mktemp("full") / "out"
    run(tiny, out, max_steps=8, save_every=1)
    return weights(out)


def test_ddp_two_ranks_equal_one_rank_with_accumulation(tiny, tmp_path):
    run(tiny, tmp_path / "one", micro_rows=2)     # 1 rank x 2 micro-steps of 2 rows
    run(tiny, tmp_path / "two", nproc=2)          # 2 ranks x 2 micro-steps of 1 row
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max_diff(one, weights(tiny)) > 1e-3    # training moved the weights
    assert max_diff(one, two) < 1e-5              # the same updates, up to float reassociation


def test_fsdp_matches_ddp(tiny, tmp_path):
    run(tiny, tmp_path / "ddp", nproc=2)
    run(tiny, tmp_path / "fsdp", nproc=2, fsdp="true")
    assert max_diff(weights(tmp_path / "ddp"), weights(tmp_path / "fsdp")) < 1e-5


def wait_for(path, text, p, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None and not (path.exists() and text in path.read_text()):
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_step_saves_the_last_finished_step_and_resume_is_exact(tiny, tmp_path, full, sig):
    """From step 3 on, every micro-step takes 10 minutes: the signal arrives inside step 3, and the
    process must abandon it (waiting for it would outlast the 60 s allowed), save step 2, and exit."""
    out = tmp_path / "cut"
    # calls: 3 in the held-out pass before training (a warm-up row + 2 rows), then 4 micro-steps a
    # step: call 12 is step 3's first
    p = start(tiny, out, max_steps=8, save_every=1, env={"SPECTRUM_TEST_SLOW": "loss_sums:600:12"})
    wait_for(out / "log.jsonl", '"step": 2, "loss"', p)
    time.sleep(1.5)  # inside step 3's first micro-step
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 128 + sig and f"{sig.name}: saved step" in stdout, stdout + stderr[-2000:]
    saved = json.loads((checkpoint.latest_checkpoint(out) / "checkpoint.json").read_text())["step"]
    assert saved == 2
    run(tiny, out, max_steps=8, save_every=1, resume="true")
    assert max_diff(full, weights(out)) == 0.0
    steps = [json.loads(ln)["step"] for ln in (out / "log.jsonl").read_text().splitlines() if '"loss"' in ln]
    assert steps == list(range(1, 9))  # no step logged twice after the resume


def test_second_signal_exits_at_once(tiny, tmp_path):
    out = tmp_path / "twice"
    p = start(tiny, out, max_steps=8, save_every=2, env={"SPECTRUM_TEST_SLOW": "save_checkpoint:600"})
    wait_for(out / "log.jsonl", '"step": 1, "loss"', p)
    p.send_signal(signal.SIGTERM)  # asks for a save, which takes 10 minutes ...
    time.sleep(1)
    p.send_signal(signal.SIGTERM)  # ... so only exiting at once ends it within the 30 s allowed
    p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM


@pytest.mark.parametrize("moment", [
    "loss_sums:9",         # mid-step (step 3, micro-step 1)
    "save_pretrained:3",   # half-way through writing step-3/
    "write_atomic:3",      # step-3/ written but not yet marked complete
    "rmtree:4",            # deleting step-2/ after step-3/ is complete
])
def test_no_single_kill_loses_the_checkpoint(tiny, tmp_path, full, moment):
    out = tmp_path / "killed"
    p = run(tiny, out, check=False, max_steps=8, save_every=1, env={"SPECTRUM_TEST_KILL": moment})
    assert p.returncode == -signal.SIGKILL
    last = checkpoint.latest_checkpoint(out)
    assert last is not None and checkpoint.is_complete(last)
    checkpoint.load(out, "cpu", "float32")  # loads, as sample/evaluate would
    run(tiny, out, max_steps=8, save_every=1, resume="true")
    assert max_diff(full, weights(out)) == 0.0


def test_kill_during_the_first_save_after_a_resume(tiny, tmp_path, full):
    out = tmp_path / "resumed"
    run(tiny, out, check=False, max_steps=8, save_every=1, env={"SPECTRUM_TEST_KILL": "loss_sums:13"})
    for moment in ("save_pretrained:1", "write_atomic:1", "rmtree:1"):
        before = checkpoint.latest_checkpoint(out)
        p = run(tiny, out, check=False, max_steps=8, save_every=1, resume="true", env={"SPECTRUM_TEST_KILL": moment})
        assert p.returncode == -signal.SIGKILL
        assert checkpoint.latest_checkpoint(out) is not None and checkpoint.latest_checkpoint(out) >= before
    run(tiny, out, max_steps=8, save_every=1, resume="true")
    assert max_diff(full, weights(out)) == 0.0


def test_run_directory_rules(tiny, tmp_path):
    out = tmp_path / "run"
    run(tiny, out, max_steps=2)
    # a finished run is never replaced without a flag
    p = run(tiny, out, check=False, max_steps=2)
    assert "already holds a run (step-0000002): continue it with --resume, replace it with --overwrite" in last_error(p)
    (out / "eval_spectrum.json").write_text("{}")
    (out / "eval_gemma-3-270m_colon.json").write_text("{}")  # a baseline's results are not the run's
    run(tiny, out, max_steps=3, overwrite="true")
    assert [d.name for d in out.glob("step-*")] == ["step-0000003"]
    assert not (out / "eval_spectrum.json").exists() and (out / "eval_gemma-3-270m_colon.json").exists()
    # resume keeps the run's settings
    p = run(tiny, out, check=False, max_steps=3, lr=0.5, resume="true")
    assert "--resume: --lr=0.5 differs from the run being resumed (0.01)" in last_error(p)
    assert f"repeat the command that started it with --resume, or give --resume --out_dir {out} alone" in last_error(p)
    p = run(tiny, out, check=False, max_steps=3, resume="true")
    assert "finished at step 3 of 3: nothing to resume" in last_error(p)
    p = run(tiny, out, check=False, max_steps=3, resume="true", overwrite="true")
    assert "give one" in last_error(p)
    # out_dir that is a file
    (tmp_path / "file").write_text("x")
    p = run(tiny, tmp_path / "file", check=False)
    assert "is a file, not a directory" in last_error(p)


def test_two_runs_on_one_out_dir(tiny, tmp_path):
    out = tmp_path / "busy"
    first = start(tiny, out, max_steps=50, env={"SPECTRUM_TEST_SLOW": "loss_sums:0.5"})
    wait_for(out / "log.jsonl", '"val_loss"', first)
    p = run(tiny, out, check=False, overwrite="true")
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert f"another train.py (pid {first.pid}) is using {out}/" in last_error(p)


def test_disk_full_while_saving(tiny, tmp_path, monkeypatch):
    out = tmp_path / "full_disk"
    run(tiny, out, max_steps=2)
    good = weights(out)
    cfg, _ = train.parse_args(common(tiny, out))
    m, tok = checkpoint.load(tiny, "cpu", "float32")

    def no_space(model, d, *a, **k):
        Path(d).mkdir(parents=True, exist_ok=True)
        (Path(d) / "model.safetensors").write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint, "save_pretrained", no_space)
    with pytest.raises(cli.UserError, match="No space left on device.*free some disk space.*step-0000002 is intact"):
        train.save_checkpoint(cfg, m, torch.optim.AdamW(m.parameters()), None, 3, 8, 0, 1, tok)
    assert not (out / "step-0000003").exists() and max_diff(good, weights(out)) == 0.0
    monkeypatch.setattr(train.shutil, "disk_usage", lambda p: type("u", (), {"free": 1000})())
    with pytest.raises(cli.UserError, match="has 0.0 GB free, but a checkpoint of this run takes"):
        train.check_disk(cfg, 10 ** 6, False)


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(tiny, tmp_path):
    run(tiny, tmp_path / "ok", max_steps=2)
    before = weights(tmp_path / "ok")
    broken, tok = checkpoint.load(tiny, "cpu", "float32")
    with torch.no_grad():
        broken.norm.weight[0] = float("nan")
    checkpoint.save_pretrained(broken, tmp_path / "broken", tok)
    p = run(tiny, tmp_path / "ok2", check=False, init=tmp_path / "broken", eval_rows=0)
    assert p.returncode == 1 and "loss is nan; stopping" in p.stdout
    assert max_diff(before, weights(tmp_path / "ok")) == 0.0


def test_chat_tokens_copies_exactly_those_rows(tiny, tmp_path):
    src = tmp_path / "it"
    m, tok = checkpoint.load(tiny, "cpu", "float32")
    with torch.no_grad():
        m.embed_tokens.weight.add_(1.0)  # a different "instruction-tuned" model
    checkpoint.save_pretrained(m, src, tok)
    base, _ = checkpoint.load(tiny, "cpu", "float32")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    train.copy_chat_tokens(base, tok, str(src))
    after = base.state_dict()
    sot, eot = tok.hf.token_to_id("<start_of_turn>"), tok.close_id
    changed = (after["embed_tokens.weight"] != before["embed_tokens.weight"]).any(1).nonzero().flatten().tolist()
    assert changed == sorted([sot, eot])
    assert torch.equal(after["embed_tokens.weight"][changed], m.embed_tokens.weight[changed])
    assert all(torch.equal(after[k], before[k]) for k in before if k != "embed_tokens.weight")
    # "eos": no instruction-tuned sibling at hand, the closing token starts as the model's own eos
    copied = base.embed_tokens.weight.detach().clone()
    train.copy_chat_tokens(base, tok, "eos")
    w = base.embed_tokens.weight
    assert (w != copied).any(1).nonzero().flatten().tolist() == [eot]
    assert torch.equal(w[eot], before["embed_tokens.weight"][tok.eos_id])
    # "newline": the closing token starts as "\n", the opening one as "\n\n" (here two bytes: "\n")
    train.copy_chat_tokens(base, tok, "newline")
    nl = tok.encode("\n")[0]
    assert torch.equal(w[eot], w[nl]) and torch.equal(w[sot], w[nl])
    assert torch.equal(w[nl], before["embed_tokens.weight"][nl])


def test_freeze_embeddings_trains_only_the_turn_token_rows(tiny, tmp_path):
    run(tiny, tmp_path / "out", max_steps=2, freeze_embeddings=True, weight_decay=0.1)
    before, after = weights(tiny), weights(tmp_path / "out")
    tok = checkpoint.load_tokenizer(tiny)
    turns = sorted({tok.hf.token_to_id("<start_of_turn>"), tok.close_id})
    nl = tok.encode("\n")[0]
    emb0, emb1 = before["embed_tokens.weight"], after["embed_tokens.weight"]
    changed = (emb1 != emb0).any(1).nonzero().flatten().tolist()
    # the turn rows start as the newline row (so they differ from the random init), then learn
    assert changed == turns and not torch.equal(emb1[turns[0]], emb0[nl])
    assert max_diff({k: v for k, v in before.items() if k != "embed_tokens.weight"},
                    {k: v for k, v in after.items() if k != "embed_tokens.weight"}) > 0


def test_cli(tmp_path):
    for argv, msg in ((["--lrr=1"], "unknown option --lrr; did you mean --lr"), (["--lr=fast"], "invalid float value"),
                      (["papr"], "invalid choice: 'papr'"), (["--tasks="], "--tasks is empty"),
                      (["--window=0"], "--window must be at least 1"), (["--log_every=0"], "--log_every"),
                      (["--max_steps=-1"], "--max_steps must be 0"), (["--p_drop=2"], "probability"),
                      (["--dtype", "float16"], "invalid choice: 'float16'")):
        with pytest.raises(cli.UserError, match=msg.replace("-", r"\-").replace("(", r"\(")):
            train.parse_args(argv)
    cfg, given = train.parse_args(["paper", "--max-steps", "7", "--no-fsdp"])  # dashes, --key value, --no-flag
    assert (cfg.init, cfg.max_steps, cfg.fsdp, cfg.lr) == ("google/gemma-3-12b-pt", 7, False, 3e-6)
    assert {"max_steps", "fsdp", "init", "lr"} <= given
    assert train.parse_args(["paper-llama"])[0].chat_tokens_from == "meta-llama/Llama-3.1-8B-Instruct"
    assert train.parse_args(["paper-qwen3"])[0].init == "Qwen/Qwen3-14B-Base"


def test_time_budget_sets_the_steps_and_says_how_to_repeat():
    cfg = train.TrainConfig(max_steps=100, time_budget=60, batch_rows=8)
    said = []
    # a held-out pass of 16 rows took 2 s: a step of 8 rows ~2.9 s, so 20 steps fit in 60 s
    assert train.plan_steps(cfg, None, 2.0, 16, said.append, row_cost=2.9) == 20
    assert "--max_steps=20 --time_budget=0" in said[0]
    assert train.plan_steps(cfg, None, 2.0, 16, said.append, row_cost=3.4) == 17  # fp32: a step ~3.4 s
    assert train.plan_steps(cfg, None, 0.01, 16, said.append, row_cost=2.9) == 100  # all fit: max_steps


def test_replan_corrects_the_time_budget_from_measured_steps():
    cfg = train.TrainConfig(max_steps=100, time_budget=60, batch_rows=8)
    said = []
    # 15 s spent, the later steps ~2 s each: 22 more fit -> 27 (the first two steps do not set the pace)
    assert train.replan(cfg, None, 20, [5.0, 4.0, 2.0, 2.5, 1.5], 15.0, said.append) == 27
    assert "so 27 steps, not 20" in said[0] and "--max_steps=27 --time_budget=0" in said[0]
    assert train.replan(cfg, None, 27, [5.0, 4.0, 2.0, 2.5, 1.5], 15.0, said.append) == 27 and len(said) == 1
    assert train.replan(cfg, None, 20, [30.0, 20.0, 10.0, 10.0, 10.0], 80.0, said.append) == 5  # spent: stop now
    assert train.replan(cfg, None, 20, [0.1] * 5, 0.5, said.append) == 100  # at most max_steps


def test_later_replans_follow_the_machine_when_the_plan_is_off_by_more_than_5_percent():
    cfg = train.TrainConfig(max_steps=100, time_budget=60, batch_rows=8)
    said = []
    steady = [5.0, 4.0] + [2.0] * 13  # 35 s for 15 steps: the 12 left of 27 take 24 s, which fits
    assert train.replan(cfg, None, 27, steady, 35.0, said.append, first=False) == 27 and said == []
    slower = [5.0, 4.0] + [2.0] * 5 + [4.0] * 8  # 51 s spent; mean step since the third 42/13 s: 2 more fit
    assert train.replan(cfg, None, 27, slower, 51.0, said.append, first=False) == 17
    assert "so 17 steps, not 27" in said[0]
    blip = [5.0, 4.0] + [2.0] * 12 + [4.0]  # one slow step moves the mean to 2.15 s: 25 fit, 26 is within 5%
    assert train.replan(cfg, None, 26, blip, 37.0, said.append, first=False) == 26 and len(said) == 1
    # the loop's other time (a held-out pass, a save: 6 s here) is spread over the steps run so far
    assert train.replan(cfg, None, 27, steady, 41.0, said.append, first=False) == 22  # 19 s left at 2.4 s: 7 fit
    assert train.replan(cfg, None, 23, steady, 41.0, said.append, first=False) == 23  # 2.4 s over: within 5%
    faster = [5.0, 4.0] + [1.0] * 13  # 22 s spent at 1 s a step: 38 more fit
    assert train.replan(cfg, None, 27, faster, 22.0, said.append, first=False) == 53


def test_a_time_budgeted_run_replans_from_its_steps(tiny, tmp_path):
    # the held-out pass is fast, so the first plan takes all 8 steps; then each training micro-step
    # sleeps 0.6 s (4 a step), so the first 5 steps spend the 12 s budget and the run ends there
    p = run(tiny, tmp_path / "out", max_steps=8, time_budget=12, env={"SPECTRUM_TEST_SLOW": "loss_sums:0.6:4"})
    assert "so 5 steps, not 8" in p.stdout, p.stdout[-2000:]
    assert checkpoint.latest_checkpoint(tmp_path / "out").name == "step-0000005"


def test_a_time_budgeted_run_that_slows_down_ends_near_its_budget(tiny, tmp_path):
    # all 40 steps fit at first; from the 11th step on each micro-step sleeps 0.1 s (0.4 s a step), so
    # the 40 would take ~12 s of a 6 s budget: later re-plans cut the run short
    slow_from = 3 + 4 * 10 + 1  # loss_sums calls: the first held-out pass (3), then 4 per step
    p = run(tiny, tmp_path / "out", max_steps=40, time_budget=6, env={"SPECTRUM_TEST_SLOW": f"loss_sums:0.1:{slow_from}"})
    assert "steps, not 40" in p.stdout, p.stdout[-2000:]
    ran = int(checkpoint.latest_checkpoint(tmp_path / "out").name.split("-")[1])
    assert 10 < ran < 35, p.stdout[-2000:]


def test_weights_repeat_or_subsample_a_task_per_epoch():
    names = ["lists", "pypi_words", "pypi_names", "coinflip"]
    w = train.parse_weights("pypi_*=2.5, coinflip=0.25", names)
    assert w == {"pypi_words": 2.5, "pypi_names": 2.5, "coinflip": 0.25}
    assert train.parse_weights("pypi_*=2,pypi_names=1", names)["pypi_names"] == 1  # the last match wins
    tok = tiny_tokenizer()
    say = lambda *a: None  # noqa: E731
    plain = train.load_instances(["lists", "coinflip"], "", True, say, tok, 512, 40)
    weighted = train.load_instances(["lists", "coinflip"], "", True, say, tok, 512, 40,
                                    weights={"lists": 2.5, "coinflip": 0.25})
    count = lambda got, t: sum(i.task == t for i in got)  # noqa: E731
    assert (count(plain, "lists"), count(plain, "coinflip")) == (40, 40)
    assert (count(weighted, "lists"), count(weighted, "coinflip")) == (100, 10)
    key = lambda got: [(i.descriptions, i.examples) for i in got if i.task == "lists"]  # noqa: E731
    assert key(weighted)[:80] == key(plain) * 2  # whole repeats, then a share of them
    assert all(k in key(plain) for k in key(weighted)[80:])
    for spec, message in [("coinflip", "is not task=weight"), ("coinflip=-1", "is not task=weight"),
                          ("coinflip=nan", "is not task=weight"), ("nope=2", "matches none of the training tasks")]:
        with pytest.raises(cli.UserError, match=message):
            train.parse_weights(spec, names)


def test_auto_mixture_adds_the_suite_tasks_whose_data_is_there(tmp_path, monkeypatch):
    """The default --tasks=auto: the offline tasks, plus each data-backed train task whose files are in
    the data directory, but never diffuse_distribution (its fruit lists are lists_heldout's fruits)."""
    import tasks
    keep = ["coinflip", "diffuse_distribution", "gsm8k_question", "haikus", "urn"]
    monkeypatch.setattr(tasks, "TASKS", {n: tasks.TASKS[n] for n in keep})
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k/train.jsonl").write_text("".join(
        json.dumps({"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"}) + "\n"
        for i in range(80)))
    fruits = tmp_path / "diffuse-distributions/prompts/fruits"
    fruits.mkdir(parents=True)
    (fruits / "fruit-0.json").write_text(json.dumps({"request": "Output a fruit. Only its name.",
                                                     "targets": ["{Apple}", "{Pear}", "{Plum}"]}))
    assert train.TrainConfig().tasks == "auto"
    names = train.task_names("auto")
    assert names == ["coinflip", "gsm8k_question", "haikus"]  # train tasks only, the fruits left out
    said = []
    got = train.load_instances(names, str(tmp_path), False, said.append, tiny_tokenizer(), 512, 5)
    assert sorted({i.task for i in got}) == ["coinflip", "gsm8k_question"]
    assert len(said) == 1 and said[0].startswith("skipped 1 tasks whose data is not here") and "haikus" in said[0]
    monkeypatch.undo()  # the whole suite with no data: one line, not sixty names
    said = []
    missing = [n for n in train.task_names("auto") if tasks.TASKS[n].files]
    assert train.load_instances(missing, str(tmp_path / "none"), False, said.append, tiny_tokenizer(), 512) == []
    assert said == [f"skipped {len(missing)} tasks whose data is not here (files under {tmp_path / 'none'}/ or a "
                    f"package; python -m tasks says how to get each): {', '.join(missing[:8])}, and "
                    f"{len(missing) - 8} more"]


def test_flops_count_by_hand():
    c = M.Config(vocab_size=10, hidden_size=4, intermediate_size=8, num_layers=1, num_heads=1, num_kv_heads=1,
                 head_dim=4, sliding_window=2, layer_types=["sliding_attention"])
    batch = {"seq": torch.tensor([[0, 0, 0, -1]]), "mask": torch.tensor([[0, 1, 1, 0]])}
    # 3 real tokens x (q,k,v,o: 4*4*4 + mlp: 3*4*8) params; 2 loss tokens x 10*4 logits;
    # window 2 over 3 queries: 1 + 2 + 2 keys
    assert train.train_flops(c, batch) == 6 * 3 * (64 + 96) + 6 * 2 * 40 + 6 * 2 * 4 * 5


def test_peak_flops_is_measured_in_the_compute_dtype_quickly():
    cfg = train.TrainConfig()
    for dtype in (torch.float32, checkpoint.pick_dtype("auto", torch.device("cpu"))):
        assert train.peak_flops(cfg, torch.device("cpu"), dtype) > 1e9
    assert train.peak_flops(train.TrainConfig(peak_tflops=2.5), torch.device("cpu"), torch.float32) == 2.5e12
