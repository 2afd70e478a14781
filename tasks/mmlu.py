"""MMLU, the test split (14,042 questions in 57 subjects): a held-out capability benchmark.

Input "Question: ...\\nA. ...\\nB. ...\\nC. ...\\nD. ..." -> the answer letter (options A-D).
1,000 instances of 20 questions drawn at random, as the reference (n_per 1000, n_iter 20), so a
question can appear in several instances. One description, the reference's.
Layouts read:
  mmlu/all/test-00000-of-00001.parquet   Hugging Face cais/mmlu, config "all", test split
      (question, subject, choices, answer 0-3): what `python -m tasks download mmlu` fetches;
  mmlu/data/mmlu/test/<subject>_test.csv  one CSV per subject with a header
      question,choice0,choice1,choice2,choice3,answer and the answer as an index 0-3 (a
      re-serialised copy of hendrycks/test, whose own CSVs have no header and a letter).
"""
import csv
import functools
from pathlib import Path

from tasks import Download, Example, Instance, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/cais/mmlu"
PARQUET = "mmlu/all/test-00000-of-00001.parquet"
CSV_DIR = "mmlu/data/mmlu/test"
DESCRIPTIONS = ["Given a question and a list of choices, return the correct answer choice."]


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[tuple[str, tuple[str, ...], int]]:
    """(question, choices, answer index) of every test question."""
    if which == 0:
        return [(x["question"], tuple(x["choices"]), int(x["answer"]))
                for x in _layout.read_parquet(Path(root, PARQUET), "mmlu")]
    out = []
    for path in sorted(Path(root, CSV_DIR).glob("*_test.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for x in csv.DictReader(f):
                answer = int(x["answer"])
                if answer not in range(4):
                    raise ValueError(f"{path}: answer {x['answer']!r} is not an index 0-3")
                out.append((x["question"], tuple(x[f"choice{i}"] for i in range(4)), answer))
    return out


def instances(seed=0, data_dir=None, n_instances=1000, size=20):
    root, which = _layout.layout(data_dir, "mmlu", [(PARQUET,), (CSV_DIR,)], URL)
    rows = load(str(root), which)
    examples = [Example(_layout.LETTERS[a], _layout.lettered(f"Question: {q}", c))
                for q, c, a in rows]
    r = common.rng(seed, "mmlu")
    samples = [r.permutation(len(examples))[:size] for _ in range(n_instances)]
    return [Instance("mmlu", DESCRIPTIONS, [examples[i] for i in idx], group=f"sample{k}",
                     options=list("ABCD")) for k, idx in enumerate(samples)]


TASKS = [Task("mmlu", "val", URL, instances=instances, files=(PARQUET,), checked="real",
              capability=True,
              download=Download(hub="cais/mmlu", hub_files=("all/test-00000-of-00001.parquet",),
                                hub_dir="mmlu"))]
