"""Habermas Machine (Tessler et al. 2024): UK residents' written opinions and agreement ratings
on political questions. All four tasks are held out (split "val").

Files, as published on GCS (parquet, read with pyarrow: an optional dependency):
  hm_all_position_statement_ratings.parquet: one row per rating of a question's affirming
    statement; flat column names with dots (question.text, question.affirming_statement,
    question.negating_statement, question.id, worker_id, metadata.provenance,
    ratings.metadata.participant_id, ...); ratings.agreement is a one-element list such as
    ["AGREE"] (seven labels, plus "MOCK" for mock rows, which are dropped).
  hm_all_round_survey_responses.parquet: worker_id, question.id, opinion.text (the opinion the
    participant wrote on the question).

Person-level rows (as the reference): ratings with a worker_id and a known label, joined on
(worker_id, question.id) with the participant's opinion; one row per (worker, question), the
first in file order; rows without an opinion are dropped.

habermas_question: the distinct questions of those rows, shuffled and cut into chunks of
    Geometric+Poisson(32); every question is in exactly one instance.
habermas_individual: one instance per worker (at most 2000, a seeded random choice), holding
    Geometric+Poisson(32) of their rows: json{question.text, statement} -> json{ratings.agreement,
    opinion.text}, where statement is the question's affirming statement. The key names are the
    reference's (its descriptions refer to them).
habermas_individual_categorical: the same inputs -> the agreement label alone (7 options).
habermas (distributional eval): per question, the HUMAN_CITIZEN ratings (one per participant,
    the first), at least 6 of them. Candidates "1".."7": 1-3 strongly/agree/somewhat agree with
    the affirming statement A, 4 neutral, 5-7 somewhat/agree/strongly agree with the negating
    statement B; disagreeing with A is read as agreeing with B, as the reference does.
"""
import functools

from tasks import DistPrompt, Download, Example, Instance, MissingData, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/google-deepmind/habermas_machine"
RATINGS = "habermas/hm_all_position_statement_ratings.parquet"
SURVEY = "habermas/hm_all_round_survey_responses.parquet"
FILES = (RATINGS, SURVEY)
GCS = "https://storage.googleapis.com/habermas_machine/datasets/"
DOWNLOAD = Download(urls={f: GCS + f.split("/")[-1] for f in FILES})
# upstream label -> shown label, from agreeing most with the affirming statement to least
LABELS = {"STRONGLY_AGREE": "Strongly Agree", "AGREE": "Agree", "SOMEWHAT_AGREE": "Somewhat Agree",
          "NEUTRAL": "Neutral", "SOMEWHAT_DISAGREE": "Somewhat Disagree", "DISAGREE": "Disagree",
          "STRONGLY_DISAGREE": "Strongly Disagree"}
OPTIONS = list(LABELS.values())


def read_parquet(path: str, columns: list[str]) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingData(f"reading {path} needs pyarrow: pip install pyarrow") from None
    try:
        names = pq.read_schema(path).names
    except Exception as e:  # not parquet, or truncated
        raise ValueError(f"{path} is not a readable parquet file ({type(e).__name__})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(missing)}; is it the upstream file?")
    return pq.read_table(path, columns=columns).to_pylist()


def label(value) -> str | None:
    """The shown label of a ratings.agreement cell (a one-element list upstream), or None."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    return LABELS.get(value) if isinstance(value, str) else None


def _text(v) -> str:
    return common.text(v) if isinstance(v, str) else ""


@functools.lru_cache(maxsize=2)
def person_rows(root: str) -> list[dict]:
    """One row per (worker, question) with a label and an opinion, in file order."""
    ratings = read_parquet(f"{root}/{RATINGS}", ["worker_id", "question.id", "question.text",
                                                 "question.affirming_statement",
                                                 "question.negating_statement", "ratings.agreement"])
    opinion = {}
    for s in read_parquet(f"{root}/{SURVEY}", ["worker_id", "question.id", "opinion.text"]):
        key = (s["worker_id"], s["question.id"])
        if key not in opinion and _text(s["opinion.text"]):
            opinion[key] = _text(s["opinion.text"])
    out, seen = [], set()
    for x in ratings:
        key = (x["worker_id"], x["question.id"])
        lab = label(x["ratings.agreement"])
        if x["worker_id"] is None or lab is None or key in seen or key not in opinion:
            continue
        if not (_text(x["question.text"]) and _text(x["question.affirming_statement"])
                and _text(x["question.negating_statement"])):
            continue
        seen.add(key)
        out.append({"worker": str(x["worker_id"]), "question": _text(x["question.text"]),
                    "statement": _text(x["question.affirming_statement"]), "label": lab,
                    "opinion": opinion[key]})
    return out


QUESTION_DESCRIPTIONS = [
    "Generate a question.",
    "Questions",
    "Generate a list of diverse questions.",
    "Generate questions that could be posed to UK residents.",
    "Questions about UK politics",
]


def questions(seed=0, data_dir=None):
    rows = person_rows(str(common.root(data_dir, "habermas_question", FILES, URL)))
    distinct = list(dict.fromkeys(x["question"] for x in rows))
    r = common.rng(seed, "habermas_question")
    return [Instance("habermas_question", QUESTION_DESCRIPTIONS, [Example(q) for q in chunk],
                     group="UK residents")
            for chunk in common.partition(distinct, r, lambda r: common.gp(r, 32))]


def _people(name, seed, data_dir, max_people=2000, mean=32):
    """(worker, their rows): at most max_people workers, Geometric+Poisson(mean) rows each."""
    rows = person_rows(str(common.root(data_dir, name, FILES, URL)))
    by_worker = {}
    for x in rows:
        by_worker.setdefault(x["worker"], []).append(x)
    ids = list(by_worker)
    r = common.rng(seed, name)
    out = []
    for w in [ids[i] for i in r.permutation(len(ids))[:max_people]]:
        own = by_worker[w]
        out.append((w, [own[i] for i in r.permutation(len(own))[:common.gp(r, mean)]]))
    return out


def _input(x) -> str:
    return dumps({"question.text": x["question"], "statement": x["statement"]})


INDIVIDUAL_DESCRIPTIONS = [
    "UK resident responses. They were given a question and a statement, asked to express their "
    "opinion in 2-3 sentences (opinion.text) and their level of agreement with it on a 7-point "
    "scale (ratings.agreement).",
    "UK resident responses.\nGiven:\n-question.text: A question to respond to.\n-statement: A "
    "statement to respond to.\nOutputs:\n-opinion.text: 2-3 sentences\n-ratings.agreement: "
    "Strongly Agree; Agree; Somewhat Agree; Neutral; Somewhat Disagree; Disagree; Strongly "
    "Disagree",
]
CATEGORICAL_DESCRIPTIONS = [
    "Given a question and a statement, predict the level of agreement with it on a 7-point "
    "scale.\nOptions: Strongly Agree; Agree; Somewhat Agree; Neutral; Somewhat Disagree; "
    "Disagree; Strongly Disagree",
]


def individual(seed=0, data_dir=None, max_people=2000):
    name = "habermas_individual"
    return [Instance(name, INDIVIDUAL_DESCRIPTIONS,
                     [Example(dumps({"ratings.agreement": x["label"], "opinion.text": x["opinion"]}),
                              _input(x)) for x in rows], group=w)
            for w, rows in _people(name, seed, data_dir, max_people)]


def individual_categorical(seed=0, data_dir=None, max_people=2000):
    name = "habermas_individual_categorical"
    return [Instance(name, CATEGORICAL_DESCRIPTIONS, [Example(x["label"], _input(x)) for x in rows],
                     group=w, options=OPTIONS)
            for w, rows in _people(name, seed, data_dir, max_people)]


# --- distributional eval -------------------------------------------------------------------

# "1: Strongly Agree with A" ... "4: Neutral" ... "7: Strongly Agree with B"
SCALE = [f"{i + 1}: {OPTIONS[i]} with A" for i in range(3)] + ["4: Neutral"] + \
    [f"{i + 5}: {OPTIONS[2 - i]} with B" for i in range(3)]
DIST_DESCRIPTION = ("You are a randomly selected UK resident. You will be given a question and two "
                    "statements, A and B. Rate which statement you most agree with on a likert scale "
                    "from 1 to 7:\n" + "\n".join(SCALE))


def dist_prompts(seed=0, data_dir=None, min_responses=6):
    root = common.root(data_dir, "habermas", (RATINGS,), URL)
    rows = read_parquet(str(root / RATINGS), [
        "worker_id", "question.id", "question.text", "question.affirming_statement",
        "question.negating_statement", "ratings.agreement", "metadata.provenance",
        "ratings.metadata.participant_id"])
    counts, seen = {}, set()  # (question id, text, A, B) -> label counts
    for x in rows:
        lab = label(x["ratings.agreement"])
        pair = (x["question.id"], x["ratings.metadata.participant_id"])
        if (x["metadata.provenance"] != "HUMAN_CITIZEN" or x["worker_id"] is None or lab is None
                or pair in seen):
            continue
        key = (x["question.id"], _text(x["question.text"]),
               _text(x["question.affirming_statement"]), _text(x["question.negating_statement"]))
        if not all(key[1:]):
            continue
        seen.add(pair)
        c = counts.setdefault(key, dict.fromkeys(OPTIONS, 0))
        c[lab] += 1
    out = []
    for (_, q, a, b), c in counts.items():
        total = sum(c.values())
        if total < min_responses:
            continue
        out.append(DistPrompt("habermas", [
            {"role": "description", "content": DIST_DESCRIPTION},
            {"role": "input", "content": f"Question: {q}\nA: {a}\nB: {b}"}],
            {str(i + 1): c[o] / total for i, o in enumerate(OPTIONS)}))
    return out


TASKS = [
    Task("habermas_question", "val", URL, instances=questions, files=FILES, download=DOWNLOAD,
         checked="fixture"),
    Task("habermas_individual", "val", URL, instances=individual, files=FILES, download=DOWNLOAD,
         checked="fixture"),
    Task("habermas_individual_categorical", "val", URL, instances=individual_categorical,
         files=FILES, download=DOWNLOAD, checked="fixture"),
    Task("habermas", "val", URL, dist_prompts=dist_prompts, files=(RATINGS,), download=DOWNLOAD,
         checked="fixture"),
]
