"""TruthfulQA as 4-way multiple choice (684 questions): a held-out capability benchmark.

The reference uses Hugging Face EleutherAI/truthful_qa_mc ("multiple_choice", validation): the
TruthfulQA questions with at least 4 MC1 choices, each with 4 choices (the true one and 3 false
ones sampled at random) in random order. Input "Question: ...\\nA. ...\\nB. ...\\nC. ...\\nD. ..."
-> the letter of the true answer (options A-D). Chunks of 10 questions (69 instances).
Layouts read:
  truthfulqa/multiple_choice/validation/0000.parquet   EleutherAI/truthful_qa_mc as the Hub
      serves it (revision refs/convert/parquet; question, choices, label), the exact choices
      the reference used: what `python -m tasks download truthful_qa` fetches;
  truthfulqa/v0/mc_task.json   the TruthfulQA release that dataset was built from (a JSON list of
      {question, mc1_targets: {choice: 1 if true else 0}, mc2_targets}). Its 3 false choices
      (where there are more) and the order are drawn here with a fixed seed, independent of the
      task seed, so the benchmark is the same in every run -- but not EleutherAI's draw.
"""
import functools
import json
from pathlib import Path

from tasks import Download, Example, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/EleutherAI/truthful_qa_mc"
PARQUET = "truthfulqa/multiple_choice/validation/0000.parquet"
JSON = "truthfulqa/v0/mc_task.json"
DESCRIPTIONS = ["You will be given a question and several answer choices, only one of which is "
                "true. Respond with the correct answer letter."]


def four_choices(question: str, targets: dict, r) -> tuple[tuple[str, ...], int] | None:
    """The true choice and 3 random false ones, shuffled; None if there are fewer than 4."""
    choices = list(targets)
    true = [c for c in choices if targets[c] == 1]
    if len(choices) < 4 or len(true) != 1:
        return None
    false = [c for c in choices if targets[c] != 1]
    picked = true + [false[i] for i in sorted(r.permutation(len(false))[:3])]
    order = r.permutation(4)
    return tuple(picked[i] for i in order), int(list(order).index(0))


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[tuple[str, tuple[str, ...], int]]:
    """(question, 4 choices, index of the true one)."""
    if which == 0:
        return [(x["question"], tuple(x["choices"]), int(x["label"]))
                for x in _layout.read_parquet(Path(root, PARQUET), "truthful_qa")]
    with open(Path(root, JSON), encoding="utf-8") as f:
        rows = json.load(f)
    r = common.rng(0, "truthful_qa", "choices")
    out = []
    for x in rows:
        got = four_choices(x["question"], x["mc1_targets"], r)
        if got is not None:
            out.append((x["question"], *got))
    return out


def instances(seed=0, data_dir=None):
    root, which = _layout.layout(data_dir, "truthful_qa", [(PARQUET,), (JSON,)], URL)
    examples = [Example(_layout.LETTERS[a],
                        _layout.lettered(f"Question: {q.strip()}", [c.strip() for c in cs]))
                for q, cs, a in load(str(root), which)]
    return _layout.chunk_instances("truthful_qa", examples, common.rng(seed, "truthful_qa"), 10,
                                   DESCRIPTIONS, [4] * len(examples))


TASKS = [Task("truthful_qa", "val", URL, instances=instances, files=(PARQUET,), checked="real",
              capability=True,
              download=Download(hub="EleutherAI/truthful_qa_mc",
                                hub_files=("multiple_choice/validation/0000.parquet",),
                                hub_dir="truthfulqa", hub_revision="refs/convert/parquet"))]
