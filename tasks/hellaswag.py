"""HellaSwag, the validation split (10,042 items): a held-out capability benchmark.

Input "Activity: {activity_label}\\nContext: {ctx}\\nChoose the option that best completes the
description:\\nA. ...\\nB. ...\\nC. ...\\nD. ..." -> the letter of the right ending (options
A-D). The items are shuffled and cut into chunks of 20 (503 instances), as the reference.
Layouts read:
  hellaswag/data/validation-00000-of-00001.parquet   Hugging Face Rowan/hellaswag (ind,
      activity_label, ctx_a, ctx_b, ctx, endings, source_id, split, split_type, label as a
      string): what `python -m tasks download hellaswag` fetches;
  hellaswag/hellaswag_val_full.txt.bz2   llama.cpp's text version of the same split: 6 lines per
      item ("activity_label: ctx", the label, 4 endings). Its text was preprocessed (the WikiHow
      "[header]"/"[step]"/"[title]" tags removed), so those prompts differ from the reference's.
"""
import bz2
import functools
from pathlib import Path

from tasks import Download, Example, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/Rowan/hellaswag"
PARQUET = "hellaswag/data/validation-00000-of-00001.parquet"
TEXT = "hellaswag/hellaswag_val_full.txt.bz2"
DESCRIPTIONS = [
    "Given a context and four possible endings, output the letter of the ending that best "
    "completes the context.",
    "Respond with the single uppercase letter for the correct choice.",
]


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[tuple[str, str, tuple[str, ...], int]]:
    """(activity_label, ctx, endings, label) of every item."""
    if which == 0:
        return [(x["activity_label"], x["ctx"], tuple(x["endings"]), int(x["label"]))
                for x in _layout.read_parquet(Path(root, PARQUET), "hellaswag")]
    path = Path(root, TEXT)
    with bz2.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) % 6:
        raise ValueError(f"{path}: {len(lines)} lines, not 6 per item")
    out = []
    for i in range(0, len(lines), 6):
        head, label, *endings = lines[i:i + 6]
        activity, sep, ctx = head.partition(": ")  # no activity label contains ": "
        if not sep or label not in ("0", "1", "2", "3"):
            raise ValueError(f"{path}: the item at line {i + 1} is not 'activity: context' "
                             f"and a label 0-3")
        out.append((activity, ctx, tuple(endings), int(label)))
    return out


def prompt(activity: str, ctx: str, endings) -> str:
    head = [f"Activity: {activity}"] * bool(activity) + [f"Context: {ctx}"] * bool(ctx)
    return _layout.lettered("\n".join(head + ["Choose the option that best completes the "
                                              "description:"]), endings)


def instances(seed=0, data_dir=None):
    root, which = _layout.layout(data_dir, "hellaswag", [(PARQUET,), (TEXT,)], URL)
    examples = [Example(_layout.LETTERS[label], prompt(a, c, e))
                for a, c, e, label in load(str(root), which)]
    return _layout.chunk_instances("hellaswag", examples, common.rng(seed, "hellaswag"), 20,
                                   DESCRIPTIONS, [4] * len(examples))


TASKS = [Task("hellaswag", "val", URL, instances=instances, files=(PARQUET,), checked="real",
              capability=True,
              download=Download(hub="Rowan/hellaswag",
                                hub_files=("data/validation-00000-of-00001.parquet",),
                                hub_dir="hellaswag"))]
