"""Bad input through the command line, as a user would type it: every case is one line naming the
problem and the fix, never a traceback, and fails before any expensive work. Also: --help on every
script lists every option with its default, and answers without importing torch. (Signals, kills,
locks and disk-full are in test_train.py.)"""
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import checkpoint
import model as M
from conftest import tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    """A good tiny checkpoint and broken copies of it, and a few bad files."""
    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    tok = tiny_tokenizer("gemma3")
    good = root / "good"
    checkpoint.save_pretrained(M.Transformer(M.Config(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32,
                                                      num_layers=1, num_heads=1, num_kv_heads=1, head_dim=8,
                                                      max_position_embeddings=256, dtype="float32")), good, tok)
    config = json.loads((good / "config.json").read_text())

    def variant(name, files=None, config_patch=None):
        d = root / name
        d.mkdir()
        for f in good.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        if config_patch is not None:
            (d / "config.json").write_text(json.dumps(config | config_patch))
        for f, content in (files or {}).items():
            (d / f).write_bytes(content if isinstance(content, bytes) else content.encode())
        return d

    weights = (good / "model.safetensors").read_bytes()
    tj = json.loads((good / "tokenizer.json").read_text())
    tj["added_tokens"] = [t for t in tj["added_tokens"] if t["content"] != "<start_of_turn>"]
    (root / "empty").mkdir()
    (root / "a_file").write_text("x")
    (root / "list.json").write_text("[1, 2]")
    (root / "dict.json").write_text(json.dumps({"role": "output", "content": "x"}))
    (root / "strings.json").write_text(json.dumps(["a", "b"]))
    (root / "number.json").write_text(json.dumps([{"role": "output", "content": 7}]))
    return {"root": root, "good": good, "empty": root / "empty",
            "shape": variant("shape", config_patch={"intermediate_size": 48}),
            "missing": variant("missing", config_patch={"num_hidden_layers": 2, "layer_types": None}),
            "notok": variant("notok", {"tokenizer.json": json.dumps(tj)}),
            "truncated": variant("truncated", {"model.safetensors": weights[:len(weights) // 2]}),
            "zero": variant("zero", {"model.safetensors": b""}),
            "badjson": variant("badjson", {"config.json": "{'not': json"}),
            "badtok": variant("badtok", {"tokenizer.json": "{"}),
            "smallvocab": small_vocab(root / "smallvocab", tok)}


def small_vocab(d, tok):
    """A consistent checkpoint whose embedding has fewer rows than its tokenizer has tokens."""
    checkpoint.save_pretrained(M.Transformer(M.Config(vocab_size=100, hidden_size=16, intermediate_size=32,
                                                      num_layers=1, num_heads=1, num_kv_heads=1, head_dim=8)), d, tok)
    return d


def one_line(argv, cwd, expect):
    """Run one bad command line (in cwd; a `-m` module from the repository root) and check its error."""
    p = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                       cwd=ROOT if argv[0] == "-m" else cwd, timeout=300)
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert p.returncode != 0, (argv, p.stdout[-500:])
    assert "Traceback" not in p.stderr and len(lines) == 1, (argv, p.stderr[-3000:])
    assert expect in lines[0], (argv, lines[0])
    return lines[0]


def one_lines(cases, cwd):
    """one_line for each (argv, expect), two at a time: each case is a fresh Python that imports torch,
    and on a 2-core CPU that start-up, not the case, is most of the time."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda case: one_line(case[0], cwd, case[1]), cases))


T, S, E = ROOT / "train.py", ROOT / "sample.py", ROOT / "evaluate.py"
FAST = ["--tasks=coinflip", "--val_tasks=coinflip"]  # train.py cases: a small task, where the task is not the point
# Flags checked before torch loads (each a fraction of a second): the list, then more.
FLAGS = [
    ([T, "--tasks="], "--tasks is empty"),
    ([T, "--window=0"], "--window must be at least 1"),
    ([T, "--log_every=0"], "--log_every must be at least 1"),
    ([T, "--max_steps=-1"], "--max_steps must be 0"),
    ([T, "--p_drop=2"], "--p_drop is a probability"),
    ([S, "--desc", "x", "--top", "-1"], "--top K (K >= 1)"),
    ([S, "--messages", "dict.json"], "expected a JSON list"),
    ([S, "--messages", "strings.json"], "got list of str"),
    ([E, "--max_sequences", "0"], "--max_sequences must be at least 1"),
    ([T, "--help=3"], "ignored explicit argument '3'"),
    ([T, "--lrr", "1"], "unknown option --lrr; did you mean --lr?"),
    ([T, "papr"], "invalid choice: 'papr'"),
    ([T, "--lr=0"], "--lr must be positive"),
    ([T, "--lr=fast"], "invalid float value: 'fast'"),
    ([T, "--dtype=float16"], "invalid choice: 'float16'"),
    ([T, "--resume", "--overwrite"], "give one"),
    ([T, "--max_len=8"], "--max_len must be at least 16"),
    ([T, "--eval_rows=-1"], "must be 0 or positive"),
    ([T, "--save_every=-2"], "must be 0 or positive"),
    ([T, "--time_budget=-5"], "--time_budget is seconds"),
    ([T, "--grad_clip=0"], "--grad_clip must be positive"),
    ([T, "--beta2=1"], "0 < --beta2 < 1"),
    ([T, "--fsdp=maybe"], "expected true or false"),
    ([S, "--desc", "x", "--temperature", "-1"], "--temperature >= 0"),
    ([S, "--desc", "x", "--top_p", "1.5"], "0 < --top_p <= 1"),
    ([S, "--desc", "x", "-n", "0"], "-n and --max_new_tokens must be at least 1"),
    ([S, "--messages", "nope.json"], "cannot read a JSON message list"),
    ([S, "--messages", "a_file"], "cannot read a JSON message list"),
    ([S], "nothing to condition on"),
    ([S, "--format", "xml", "--desc", "x"], "invalid choice: 'xml'"),
    ([E, "--compare", "list.json"], "expected 2 arguments"),
    ([E, "--pool", "0"], "--pool must be at least 1"),
    ([E, "--p_drop", "-0.1"], "--p_drop is a probability"),
    ([E, "--dtype", "half"], "invalid choice: 'half'"),
    (["-m", "tasks", "--seed", "x"], "invalid int value"),
]


@pytest.mark.parametrize("argv, expect", FLAGS, ids=[" ".join(map(str, a[1:]))[:40] for a, _ in FLAGS])
def test_bad_flags(ck, argv, expect):
    one_line(argv, ck["root"], expect)


def test_bad_checkpoints(ck):
    g, r = ck["good"], ck["root"]
    cases = [
        ([S, "--ckpt", ck["empty"], "--desc", "x"], "has no config.json"),
        ([E, "--ckpt", ck["empty"]], "has no config.json"),
        ([T, f"--init={ck['empty']}", *FAST, "--out_dir", r / "o1"], "has no config.json"),
        ([S, "--ckpt", ck["shape"], "--desc", "x"], "has shape (16, 32), but config.json implies (16, 48)"),
        ([T, f"--init={ck['missing']}", *FAST, "--out_dir", r / "o2"], "is missing tensor layers.1."),
        ([S, "--ckpt", ck["notok"], "--desc", "x"], "none of the turn tokens"),
        ([S, "--ckpt", ck["truncated"], "--desc", "x"], "model.safetensors is truncated"),
        ([E, "--ckpt", ck["truncated"], "--tasks", "urn"], "model.safetensors is truncated"),
        ([T, f"--init={ck['truncated']}", *FAST, "--out_dir", r / "o3"], "model.safetensors is truncated"),
        ([S, "--ckpt", ck["zero"], "--desc", "x"], "is not a safetensors file"),
        ([E, "--ckpt", ck["badjson"], "--tasks", "urn"], "config.json is not valid JSON"),
        ([T, f"--init={ck['badjson']}", *FAST, "--out_dir", r / "o4"], "config.json is not valid JSON"),
        ([S, "--ckpt", ck["badjson"], "--desc", "x"], "config.json is not valid JSON"),
        ([S, "--ckpt", ck["badtok"], "--desc", "x"], "tokenizer.json cannot be read"),
        ([S, "--ckpt", ck["smallvocab"], "--desc", "x"], "mismatched tokenizer.json"),
        ([S, "--ckpt", "nobody/nothing", "--desc", "x"], "could not get nobody/nothing from the Hugging Face Hub"),
        ([S, "--ckpt", r / "nope", "--desc", "x"], "not found"),
        ([S, "--ckpt", g, "--desc", "x", "--device", "cuda"] if not torch.cuda.is_available() else
         [S, "--ckpt", g, "--desc", "x", "--device", "cuda:99"], "no CUDA GPU" if not torch.cuda.is_available() else ""),
    ]
    one_lines(cases, r)


def test_bad_prompts_and_options(ck):
    g, r = ck["good"], ck["root"]
    one_lines([
        ([S, "--ckpt", g, "--messages", "number.json"], "content must be a string"),
        ([S, "--ckpt", g, "--input", "only an input"], "nothing to condition on"),
        ([S, "--ckpt", g, "--desc", "x", "--options", "a,b,a"], "option 'a' is given twice"),
        ([S, "--ckpt", g, "--desc", "x", "--options", ",,,"], "--options: no options given"),
        ([S, "--ckpt", g, "--desc", "x", "--options_file", "nope.txt"], "--options_file"),
        ([S, "--ckpt", g, "--desc", "x", "--top", "999999"], "choose between 1 and the vocabulary size"),
        ([S, "--ckpt", g, "--desc", "word " * 300], "past the model's context of 256: shorten the prompt"),
        ([S, "--ckpt", g, "--desc", "x", "--max_new_tokens", "1000"], "past the model's context of 256"),
        ([S, "--ckpt", g, "--desc", "x", "--format", "chat"], "a Spectrum checkpoint: use --format spectrum"),
    ], r)


def test_bad_runs_and_tasks(ck):
    g, r = ck["good"], ck["root"]
    common = [f"--init={g}", "--time_budget=0", *FAST]
    one_lines([
        ([T, *common, "--out_dir", ck["root"] / "a_file"], "is a file, not a directory"),
        ([T, *common, "--max_len=1024", "--out_dir", r / "o5"], "--max_len=1024 is past the model's context (256)"),
        ([T, *common, "--tasks=coinflp", "--out_dir", r / "o6"], "unknown task 'coinflp'; did you mean coinflip"),
        ([T, *common, "--tasks=flight", "--max_len=40", "--out_dir", r / "o7"],
         "task flight: every example is longer than --max_len=40 tokens: raise --max_len"),
        ([T, *common, "--tasks=us_states_full_names", "--out_dir", r / "o8"], "has no sequences to train on"),
        ([T, *common, "--val_tasks=nope", "--out_dir", r / "o9"], "unknown task 'nope'"),
        ([T, *common, "--weights=coinflip", "--out_dir", r / "o13"], "--weights: 'coinflip' is not task=weight"),
        ([T, *common, "--weights=lists=2", "--out_dir", r / "o14"], "--weights: 'lists' matches none of the training"),
        ([T, *common, "--batch_rows=3", "--out_dir", r / "o10"], "must be a multiple of world size 1 x --micro_rows=2"),
        ([T, *common, "--resume", "--out_dir", r / "none"], "--resume: no checkpoint in"),
        ([T, *common, "--chat_tokens_from", r / "nope", "--out_dir", r / "o11"], "not found"),
        ([T, *common, "--tasks=polis_vote", "--data_dir", r / "empty", "--out_dir", r / "o12"],
         "task 'polis_vote' needs polis/"),
        ([E, "--ckpt", g, "--tasks", "coinflp"], "unknown task 'coinflp'"),
        ([E, "--ckpt", g, "--tasks", ",,"], "selects no tasks"),
        ([E, "--ckpt", g, "--tasks", "urn", "--format", "chat", "--json", r / "c.json"],
         "a Spectrum checkpoint: use --format spectrum"),
        ([E, "--ckpt", g, "--json", "/proc/nope/r.json"], "cannot write the results to /proc/nope/r.json"),
        ([E, "--compare", "list.json", "list.json"], "is not a result file of evaluate.py"),
        (["-m", "tasks", "nonsense_task"], "unknown task 'nonsense_task'"),
        (["-m", "tasks", "download", "nonsense_task"], "unknown task 'nonsense_task'"),
    ], r)


@pytest.mark.parametrize("script", ["train.py", "sample.py", "evaluate.py", "tasks"])
def test_help_lists_every_option_with_its_default_without_importing_torch(script):
    argv = ["-m", "tasks", "--help"] if script == "tasks" else [str(ROOT / script), "--help"]
    p = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {ln.split("|")[-1].strip() for ln in p.stderr.splitlines() if ln.startswith("import time:")}
    assert "torch" not in imported, script
    if script == "tasks":
        assert "usage: python -m tasks" in p.stdout
        return
    import dataclasses
    mod = __import__(script[:-3])
    cls = getattr(mod, {"train.py": "TrainConfig", "sample.py": "SampleConfig", "evaluate.py": "EvalConfig"}[script])
    text = " ".join(p.stdout.split())
    for f in dataclasses.fields(cls):
        assert f"--{f.name}" in text and f"(default: {f.default!r})" in text, (script, f.name)
