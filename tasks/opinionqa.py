"""OpinionQA (Santurkar et al. 2023): individual answers to 15 Pew American Trends Panel surveys.

Files (the human_resp folder of the OpinionQA CodaLab bundle), per survey
opinionqa/human_resp/American_Trends_Panel_W<wave>/:
  info.csv: one row per question: key (the responses.csv column), question, references (a Python
    list literal of the answer options, in order, e.g. "['Very likely', ..., 'Refused']"), and
    option_mapping / option_ordinal (unused).
  responses.csv: one row per respondent: one column per question key holding the answer text
    (empty when not asked), and demographic columns (CREGION, AGE, SEX, ...).
The 15 waves and the demographic columns are those of the OpinionQA code (helpers.py of
tatsu-lab/opinions_qa: PEW_SURVEY_LIST, DEMOGRAPHIC_ATTRIBUTES); they are listed here, so that
file is not needed.

A question renders as its text, then one "A: option" line per option; the answer is the letter.
Answers that are not one of the options (empty, or text outside the list) are dropped.

opinionqa_individual (train): one instance per respondent, all of their answers; per survey at
    most 200 respondents with at least one answer (a seeded random choice). Descriptions: a
    generic one, or "Survey responses from the following individual: " + the respondent's
    demographics as JSON (the reference printed a Python dict), each field left out with
    probability 0.3 (drawn once per respondent).
opinionqa_questions (train): one instance per survey, its questions with their options (15).
"""
import ast
import csv
import functools
import string

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://worksheets.codalab.org/worksheets/0x6fb693719477478aac73fc07db333f69"
WAVES = (26, 27, 29, 32, 34, 36, 41, 42, 43, 45, 49, 50, 54, 82, 92)
SURVEYS = [f"American_Trends_Panel_W{w}" for w in WAVES]
DEMOGRAPHICS = ("CREGION", "AGE", "SEX", "EDUCATION", "CITIZEN", "MARITAL", "RELIG", "RELIGATTEND",
                "POLPARTY", "INCOME", "POLIDEOLOGY", "RACE")
FILES = tuple(f"opinionqa/human_resp/{s}/{f}" for s in SURVEYS
              for f in ("info.csv", "responses.csv"))
DOWNLOAD = Download(manual=(
    "Download the human_resp bundle of the OpinionQA worksheet "
    "(https://worksheets.codalab.org/bundles/0x050b7e72abb04d1f9b493c1743e580cf, from "
    f"{URL}) and extract it (tar -xvf human_resp.tar.gz) in <data_dir>/opinionqa/, so that "
    "<data_dir>/opinionqa/human_resp/American_Trends_Panel_W26/responses.csv exists (info.csv and "
    "responses.csv for each of the 15 waves are read)."))


def read_csv(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


@functools.lru_cache(maxsize=32)
def load_survey(folder: str):
    """([(question key, rendered question, {option: letter})], respondent rows)."""
    questions = []
    for x in read_csv(f"{folder}/info.csv"):
        try:
            options = [str(o) for o in ast.literal_eval(x["references"])]
        except (KeyError, ValueError, SyntaxError):
            raise ValueError(f"{folder}/info.csv: question {x.get('key')!r} has no readable "
                             f"'references' list of options") from None
        letters = string.ascii_uppercase[:len(options)]
        text = common.text(x["question"]) + "\n" + "\n".join(
            f"{ltr}: {o}" for ltr, o in zip(letters, options))
        questions.append((x["key"], text, dict(zip(options, letters))))
    return questions, read_csv(f"{folder}/responses.csv")


def answers(questions, row) -> list[Example]:
    return [Example(letter_of[row[key]], text) for key, text, letter_of in questions
            if row.get(key) in letter_of]


GENERIC = "The following are survey responses for a single individual."


def individual(seed=0, data_dir=None, per_survey=200):
    root = common.root(data_dir, "opinionqa_individual", FILES, URL)
    out = []
    for survey in SURVEYS:
        questions, rows = load_survey(str(root / "opinionqa/human_resp" / survey))
        answered = [(i, ex) for i, row in enumerate(rows) if (ex := answers(questions, row))]
        r = common.rng(seed, "opinionqa_individual", survey)
        for j in sorted(r.permutation(len(answered))[:per_survey]):
            i, examples = answered[j]
            demo = {k: rows[i][k].strip() for k in DEMOGRAPHICS if (rows[i].get(k) or "").strip()}
            demo = {k: v for k, v in demo.items() if r.random() >= 0.3}
            described = "Survey responses from the following individual: " + dumps(demo)
            out.append(Instance("opinionqa_individual", [GENERIC, described], examples,
                                group=f"{survey}:{i}"))
    return out


def questions(seed=0, data_dir=None):
    root = common.root(data_dir, "opinionqa_questions", FILES, URL)
    out = []
    for survey in SURVEYS:
        qs, _ = load_survey(str(root / "opinionqa/human_resp" / survey))
        out.append(Instance("opinionqa_questions", ["The following are survey questions."],
                            [Example(text) for _, text, _ in qs], group=survey))
    return out


TASKS = [
    Task("opinionqa_individual", "train", URL, instances=individual, files=FILES,
         download=DOWNLOAD, checked="fixture"),
    Task("opinionqa_questions", "train", URL, instances=questions, files=FILES,
         download=DOWNLOAD, checked="fixture"),
]
