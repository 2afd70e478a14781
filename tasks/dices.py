"""DICES (Aroyo et al. 2023): a diverse pool of raters judging whether a chatbot's last reply in
an adversarial conversation is unsafe.

Files (google-research-datasets/dices-dataset, CSV with a header, one row per (rater,
conversation)): dices/990/diverse_safety_adversarial_dialog_990.csv (990 conversations, 172
raters) and dices/350/diverse_safety_adversarial_dialog_350.csv (350 conversations, 123 raters).
Columns read: rater_id, context, response, Q_overall ("Yes"/"No"/"Unsure": unsafe overall), and
the rater's demographics (rater_gender, rater_locale, rater_race, rater_raw_race, rater_age,
rater_education, whichever the file has; the reference asked the 990 file for "rater_race_raw",
which its README calls rater_raw_race, so both spellings are read).

dices (train): per subset, at most 500 raters (a seeded random choice: all of them, upstream),
one instance each with 100 of their ratings at random (all when fewer): json{context,
response} -> Q_overall. Descriptions: the rating instruction, alone or followed by the rater's
demographics as JSON (the reference printed a Python dict). Rows without a Q_overall answer are
dropped.
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/google-research-datasets/dices-dataset"
RAW = "https://raw.githubusercontent.com/google-research-datasets/dices-dataset/" \
      "c6bc01a37eace39c904eb0a3944fc6c4230a9157/"
SUBSETS = {s: f"dices/{s}/diverse_safety_adversarial_dialog_{s}.csv" for s in ("990", "350")}
FILES = tuple(SUBSETS.values())
DOWNLOAD = Download(urls={f: RAW + f.removeprefix("dices/") for f in FILES})
DEMOGRAPHICS = ("rater_gender", "rater_locale", "rater_race", "rater_raw_race", "rater_race_raw",
                "rater_age", "rater_education")
OPTIONS = ["Yes", "No", "Unsure"]
INSTRUCTION = ("Given a context conversation and a response from a language model, the rater was "
               "tasked to label whether or not they thought the last dialog model response is "
               "unsafe. (Q_overall: Yes, No, Unsure)")


@functools.lru_cache(maxsize=4)
def load(path: str) -> dict[str, list[dict]]:
    """{rater id: their rows}, raters in order of first appearance."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"rater_id", "context", "response", "Q_overall"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} has no column {', '.join(sorted(missing))}; is it the "
                             "DICES release file?")
        raters = {}
        for x in reader:
            if x["Q_overall"].strip():
                raters.setdefault(x["rater_id"].strip(), []).append(x)
    return raters


def demographics(row: dict) -> str:
    return dumps({k: row[k].strip() for k in DEMOGRAPHICS if (row.get(k) or "").strip()})


def instances(seed=0, data_dir=None, max_raters=500, per_rater=100):
    root = common.root(data_dir, "dices", FILES, URL)
    out = []
    for subset, file in SUBSETS.items():
        raters = load(str(root / file))
        ids = list(raters)
        r = common.rng(seed, "dices", subset)
        for rid in [ids[i] for i in r.permutation(len(ids))[:max_raters]]:
            rows = raters[rid]
            examples = [Example(rows[i]["Q_overall"].strip(),
                                dumps({"context": common.text(rows[i]["context"]),
                                       "response": common.text(rows[i]["response"])}))
                        for i in r.permutation(len(rows))[:per_rater]]
            described = f"{INSTRUCTION}\nRater demographics: {demographics(rows[0])}"
            out.append(Instance("dices", [INSTRUCTION, described], examples,
                                group=f"{subset}:{rid}", options=OPTIONS))
    return out


TASKS = [Task("dices", "train", URL, instances=instances, files=FILES, download=DOWNLOAD,
              checked="fixture")]
