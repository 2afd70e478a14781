"""WinoGrande (winogrande_xl), the validation split (1,267 sentences): a held-out capability
benchmark.

Input "Sentence: {sentence, its blank "_" shown as "_____"}\\nWhich option correctly fills in
the blank?\\nA. {option1}\\nB. {option2}" -> "A" or "B". The sentences are shuffled and cut into
chunks of 10 (127 instances), as the reference.
Layouts read (the same fields):
  winogrande/winogrande_xl/validation-00000-of-00001.parquet   Hugging Face allenai/winogrande
      (sentence, option1, option2, answer "1"/"2"): what `python -m tasks download winogrande`
      fetches;
  winogrande/winogrande_xl_dev_reconstructed.jsonl   a rebuilt copy of the split, one JSON
      object per line with the same four fields.
"""
import functools
import json
from pathlib import Path

from tasks import Download, Example, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/allenai/winogrande"
PARQUET = "winogrande/winogrande_xl/validation-00000-of-00001.parquet"
JSONL = "winogrande/winogrande_xl_dev_reconstructed.jsonl"
DESCRIPTIONS = [
    "Given a sentence with a blank and two candidate fillers, respond with the letter of the "
    "correct option.",
    "Return the single uppercase letter corresponding to the correct choice.",
]


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[dict]:
    if which == 0:
        rows = _layout.read_parquet(Path(root, PARQUET), "winogrande")
    else:
        with open(Path(root, JSONL), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    for x in rows:
        if str(x["answer"]).strip() not in ("1", "2"):
            raise ValueError(f"{Path(root, (PARQUET, JSONL)[which])}: answer {x['answer']!r} "
                             f"is not 1 or 2")
    return rows


def example(x: dict) -> Example:
    return Example("AB"[int(str(x["answer"]).strip()) - 1],
                   f"Sentence: {x['sentence'].replace('_', '_____')}\n"
                   f"Which option correctly fills in the blank?\nA. {x['option1']}\n"
                   f"B. {x['option2']}")


def instances(seed=0, data_dir=None):
    root, which = _layout.layout(data_dir, "winogrande", [(PARQUET,), (JSONL,)], URL)
    examples = [example(x) for x in load(str(root), which)]
    return _layout.chunk_instances("winogrande", examples, common.rng(seed, "winogrande"), 10,
                                   DESCRIPTIONS, [2] * len(examples))


TASKS = [Task("winogrande", "val", URL, instances=instances, files=(PARQUET,), checked="real",
              capability=True,
              download=Download(hub="allenai/winogrande",
                                hub_files=("winogrande_xl/validation-00000-of-00001.parquet",),
                                hub_dir="winogrande"))]
