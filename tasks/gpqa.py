"""GPQA (Rein et al. 2023), main set (448 questions): graduate-level multiple choice, a capability
benchmark (split "val").

File: gpqa/dataset/gpqa_main.csv, as extracted from the password-protected dataset.zip of the
idavidrein/gpqa repository (the password is in that repository's README; its authors ask that the
questions not be published in plain text, so neither the password nor any question is repeated
here). Columns read: Question, Correct Answer, Incorrect Answer 1..3.

gpqa: 1000 instances of 20 questions drawn at random (as the reference): "Question: ...\nA. ...
\nB. ..." -> the letter of the correct answer. Each question's choices are shuffled once per seed
(the reference's order before shuffling: incorrect 1-3, then correct). The reference would prefix
"Subject: ..." from a Subject/Domain/Topic/Field/Category column; gpqa_main.csv has none of these
(its domain columns are "High-level domain" and "Subdomain"), so no prefix, as in the reference.
"""
import csv
import functools

import numpy as np

from tasks import Download, Example, Instance, Task
from tasks import common

URL = "https://github.com/idavidrein/gpqa"
FILE = "gpqa/dataset/gpqa_main.csv"
DOWNLOAD = Download(manual=(
    f"Clone {URL} and unzip its dataset.zip with the password given in that repository's README "
    "(the authors ask that the data not be posted in plain text online, so it is not repeated "
    f"here), so that <data_dir>/{FILE} exists (`unzip -P <password> dataset.zip` inside "
    "<data_dir>/gpqa/ extracts dataset/gpqa_main.csv)."))
DESCRIPTIONS = ["You will be given a difficult question. Respond with the correct answer letter."]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[tuple[str, list[str], int]]:
    """(question, choices in the reference's order, index of the correct one) per row."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        wrong = sorted((c for c in fields if c.lower().startswith("incorrect answer")),
                       key=lambda c: int(c.split()[-1]) if c.split()[-1].isdigit() else 0)
        if "Question" not in fields or "Correct Answer" not in fields or not wrong:
            raise ValueError(f"{path} has no Question / Correct Answer / Incorrect Answer columns; "
                             "is it gpqa_main.csv?")
        out = []
        for x in reader:
            choices = [x[c].strip() for c in wrong if (x[c] or "").strip()]
            correct = (x["Correct Answer"] or "").strip()
            if x["Question"].strip() and correct:
                out.append((common.text(x["Question"]), choices + [correct], len(choices)))
    if not out:
        raise ValueError(f"{path} has no questions")
    return out


def instances(seed=0, data_dir=None, n_instances=1000, per_instance=20):
    rows = load(str(common.root(data_dir, "gpqa", (FILE,), URL) / FILE))
    r = common.rng(seed, "gpqa")
    examples = []
    for question, choices, correct in rows:
        order = r.permutation(len(choices))
        lines = [f"Question: {question}"] + [f"{LETTERS[k]}. {choices[j]}"
                                             for k, j in enumerate(order)]
        answer = LETTERS[int(np.flatnonzero(order == correct)[0])]
        examples.append(Example(answer, "\n".join(lines)))
    options = list(LETTERS[:max(len(c) for _, c, _ in rows)])
    return [Instance("gpqa", DESCRIPTIONS,
                     [examples[i] for i in r.permutation(len(examples))[:per_instance]],
                     options=options) for _ in range(n_instances)]


TASKS = [Task("gpqa", "val", URL, instances=instances, files=(FILE,), download=DOWNLOAD,
              checked="fixture", capability=True)]
