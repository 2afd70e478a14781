"""Jeopardy! clues (J! Archive, 216,930 clues in JEOPARDY_CSV.csv), two training tasks.

jeopardy_question_generation: no input -> a clue ("Question" column).
jeopardy_answer_prediction: clue -> its answer.
Kept, as the reference: regular and Double Jeopardy! rounds, clues without "href" (they point
at an image or video), rows with a clue, an answer and a category. Each task shuffles the kept
clues, cuts them into chunks of Geometric+Poisson(64) and keeps at most 1,000 chunks (the
reference's max_total). Column names carry a leading space in the file and are stripped.
Fixed: cells are read as text, so answers such as "None", "NA" or "null" are kept (pandas read
them as missing values and the reference dropped those rows).
Layouts read: jeopardy/JEOPARDY_CSV.csv (the full file: a manual download) or, when only that is
present, jeopardy/jeopardy_first19999.csv (its first 19,999 rows, same columns).
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks import _layout, common

URL = ("https://drive.google.com/file/d/0BwT5wj_P7BKXUl9tOUJWYzVvUjA/view"
       "?resourcekey=0-uFrn8bQkUfSCvJlmtKGCdQ")
FULL = "jeopardy/JEOPARDY_CSV.csv"
PARTIAL = "jeopardy/jeopardy_first19999.csv"
ROUNDS = ("Jeopardy!", "Double Jeopardy!")


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[tuple[str, str]]:
    """(clue, answer) of every kept row, in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        head = [h.strip() for h in next(rows)]
        missing = {"Round", "Category", "Question", "Answer"} - set(head)
        if missing:
            raise ValueError(f"{path}: no column {', '.join(sorted(missing))} (header {head})")
        out = []
        for row in rows:
            x = dict(zip(head, row))
            q, a = x.get("Question", "").strip(), x.get("Answer", "").strip()
            if (x["Round"] in ROUNDS and "href" not in q.lower() and q and a
                    and x.get("Category", "").strip()):
                out.append((q, a))
    return out


def _task(name, example, descriptions, max_chunks=1000):
    def instances(seed=0, data_dir=None):
        root, which = _layout.layout(data_dir, name, [(FULL,), (PARTIAL,)], URL)
        examples = [example(q, a) for q, a in load(str(root / (FULL, PARTIAL)[which]))]
        chunks = common.partition(examples, common.rng(seed, name), lambda r: common.gp(r, 64))
        return [Instance(name, descriptions, c, group=f"chunk{k}")
                for k, c in enumerate(chunks[:max_chunks])]
    return Task(name, "train", URL, instances=instances, files=(FULL,), checked="real",
                download=Download(manual=(
                    f"Download JEOPARDY_CSV.csv (216,930 clues, about 50 MB; the link the "
                    f"reference's data README gives) from {URL} and save it as {FULL} in the "
                    f"data directory.")))


TASKS = [
    _task("jeopardy_question_generation", lambda q, a: Example(q), [
        "Generate Jeopardy-style questions (clues). These are factual statements that describe "
        "something, and contestants must identify what is being described.",
        "Create trivia clues in the style of Jeopardy. The clues should be informative statements "
        "about people, places, things, or concepts.",
        "Generate: Question (Jeopardy clue as a factual statement)."]),
    _task("jeopardy_answer_prediction", lambda q, a: Example(a, q), [
        "Given a Jeopardy question (clue), predict the correct answer. The answer should be the "
        "specific person, place, thing, or concept that the clue describes.",
        "Solve Jeopardy clues by providing the answer that fits the given statement. Use only the "
        "information provided in the clue.",
        "Given: Question (Jeopardy clue statement). Generate: Answer (correct response to the "
        "clue)."]),
]
