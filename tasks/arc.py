"""ARC-Challenge, the test split (1,172 questions): a held-out capability benchmark.

Input "Question: {stem}\\nA. ...\\nB. ..." -> the answer letter. The questions are shuffled and
cut into chunks of 10 (118 instances), as the reference. Options are the letters up to the most
choices in the chunk (most questions have 4; a few 3 or 5).
Fixed: 22 questions label their choices "1".."4" instead of "A".."D"; the reference showed and
expected those digits, so one task mixed two answer alphabets. They are relabelled A, B, ...
Layouts read:
  arc/ARC-Challenge/test-00000-of-00001.parquet   Hugging Face allenai/ai2_arc (id, question,
      choices {text, label}, answerKey): what `python -m tasks download arc` fetches;
  arc/ARC-Challenge-Test_1172_merged.jsonl   the original AI2 JSONL records (id, question {stem,
      choices [{text, label}]}, answerKey).
"""
import functools
from pathlib import Path

from tasks import Download, Example, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/allenai/ai2_arc"
PARQUET = "arc/ARC-Challenge/test-00000-of-00001.parquet"
JSONL = "arc/ARC-Challenge-Test_1172_merged.jsonl"
DESCRIPTIONS = [
    "Given a question and multiple choice answers, return the correct answer letter.",
    "Respond with only the uppercase letter corresponding to the correct option.",
]


def question(stem: str, labels, texts, key: str, where: str) -> tuple[str, tuple[str, ...], int]:
    labels = [str(x).strip() for x in labels]
    if len(labels) != len(texts) or str(key).strip() not in labels:
        raise ValueError(f"{where}: answer {key!r} is not one of the choice labels {labels}")
    return str(stem).strip(), tuple(str(t).strip() for t in texts), labels.index(str(key).strip())


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[tuple[str, tuple[str, ...], int]]:
    """(stem, choice texts, answer index) of every question."""
    if which == 0:
        path = Path(root, PARQUET)
        return [question(x["question"], x["choices"]["label"], x["choices"]["text"],
                         x["answerKey"], f"{path} id {x['id']}")
                for x in _layout.read_parquet(path, "arc")]
    path = Path(root, JSONL)
    out = []
    for n, x in common.jsonl(path):
        q = x["question"]
        out.append(question(q["stem"], [c["label"] for c in q["choices"]],
                            [c["text"] for c in q["choices"]], x["answerKey"], f"{path} line {n}"))
    return out


def instances(seed=0, data_dir=None):
    root, which = _layout.layout(data_dir, "arc", [(PARQUET,), (JSONL,)], URL)
    rows = load(str(root), which)
    examples = [Example(_layout.LETTERS[a], _layout.lettered(f"Question: {s}", c))
                for s, c, a in rows]
    return _layout.chunk_instances("arc", examples, common.rng(seed, "arc"), 10, DESCRIPTIONS,
                                   [len(c) for _, c, _ in rows])


TASKS = [Task("arc", "val", URL, instances=instances, files=(PARQUET,), checked="real",
              capability=True,
              download=Download(hub="allenai/ai2_arc",
                                hub_files=("ARC-Challenge/test-00000-of-00001.parquet",),
                                hub_dir="arc"))]
