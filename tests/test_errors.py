"""Every user-facing failure of DESIGN.md §9, tried through the command line as a user would: a
one-line message naming the problem and the fix, never a traceback. (Non-finite loss and an
interrupted checkpoint write are in test_train.py.)"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import model as M

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, real_ckpt):
    """A good tiny checkpoint with the real tokenizer, and broken copies of it."""
    root = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    good = root / "good"
    M.save_pretrained(M.Gemma(M.Config(vocab_size=262144, hidden_size=16, intermediate_size=32, num_layers=1,
                                       num_heads=1, num_kv_heads=1, head_dim=8, query_pre_attn_scalar=8,
                                       dtype="float32")), good, tokenizer_from=real_ckpt)
    config = json.loads((good / "config.json").read_text())

    def variant(name, config_patch=None, tokenizer=None):
        d = root / name
        d.mkdir()
        for f in good.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        if config_patch is not None:
            (d / "config.json").write_text(json.dumps(config | config_patch))
        if tokenizer is not None:
            (d / "tokenizer.json").write_text(tokenizer)
        return d

    tok = json.loads((good / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<start_of_turn>"]
    tok["model"]["vocab"]["<start_of_turn>"] = "renamed"
    tok["model"]["vocab"] = {(k if v != "renamed" else "<renamed>"): (v if v != "renamed" else 105)
                             for k, v in tok["model"]["vocab"].items()}
    empty = root / "empty"
    empty.mkdir()
    return {"good": good, "empty": empty,
            "shape": variant("shape", {"intermediate_size": 48}),
            "missing": variant("missing", {"num_hidden_layers": 2, "layer_types": None}),
            "tokenizer": variant("tokenizer", tokenizer=json.dumps(tok))}


def one_line_error(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode != 0, p.stdout
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr and len(lines) == 1, p.stderr[-3000:]
    return lines[0]


def test_checkpoint_without_config(ckpts):
    for cli in (["sample.py", "--desc", "x", "--ckpt"], ["evaluate.py", "--ckpt"], ["train.py", "--init="]):
        arg = cli[:-1] + [cli[-1] + str(ckpts["empty"])] if cli[-1].endswith("=") else cli + [ckpts["empty"]]
        assert "has no config.json" in one_line_error(*arg)


def test_missing_and_misshapen_tensors(ckpts):
    assert "has shape" in one_line_error("sample.py", "--ckpt", ckpts["shape"], "--desc", "x")
    assert "is missing tensor layers.1." in one_line_error("train.py", f"--init={ckpts['missing']}")


def test_tokenizer_without_turn_tokens(ckpts):
    msg = one_line_error("sample.py", "--ckpt", ckpts["tokenizer"], "--desc", "x")
    assert "no <start_of_turn> token" in msg


@pytest.mark.parametrize("messages, expect", [
    ([{"role": "user", "content": "hi"}], "unknown role 'user'"),
    ([{"role": "description", "content": "a"}, {"role": "description", "content": "b"}], "only one"),
    ([{"role": "input", "content": "only an input"}], "nothing to condition on"),
])
def test_bad_message_lists(ckpts, tmp_path, messages, expect):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(messages))
    assert expect in one_line_error("sample.py", "--ckpt", ckpts["good"], "--messages", f)


def test_unknown_task(ckpts):
    assert "unknown task 'coinflp'; did you mean coinflip" in one_line_error(
        "train.py", f"--init={ckpts['good']}", "--tasks=coinflp")
    assert "coinflp" in one_line_error("evaluate.py", "--ckpt", ckpts["good"], "--tasks", "coinflp")


def test_example_longer_than_max_len(ckpts, tmp_path):
    msg = one_line_error("train.py", f"--init={ckpts['good']}", "--tasks=flight", "--max_len=40",
                         f"--out_dir={tmp_path / 'out'}")
    assert "tokens > max_len 40; raise --max_len" in msg


def test_resume_without_checkpoint(ckpts, tmp_path):
    assert one_line_error("train.py", f"--init={ckpts['good']}", "--resume",
                          f"--out_dir={tmp_path / 'none'}").startswith("--resume: no checkpoint in")
