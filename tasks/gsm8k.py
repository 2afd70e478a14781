"""GSM8K (train split, 7,473 rows): four views of the same grade-school math problems.

Each task has 50 sequences of Geometric+Poisson(mean 64) random problems (as the reference).
Answers are kept verbatim, with their <<calc>> annotations and the final "#### n" line.
"""
import functools
import json

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/openai/grade-school-math"
FILES = ("gsm8k/train.jsonl",)


@functools.lru_cache(maxsize=2)
def load(root: str) -> list[dict]:
    with open(f"{root}/gsm8k/train.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _task(name, example, descriptions):
    def instances(seed=0, data_dir=None):
        rows = load(str(common.root(data_dir, name, FILES, URL)))
        r = common.rng(seed, name)
        return [Instance(name, descriptions, [example(x) for x in sub])
                for sub in common.subsets(rows, r, 50, 64)]
    return Task(name, "train", URL, instances=instances, files=FILES, checked="real",
                download=Download(urls={FILES[0]: "https://raw.githubusercontent.com/openai/"
                                                  "grade-school-math/HEAD/grade_school_math/data/"
                                                  "train.jsonl"}))


TASKS = [
    _task("gsm8k_question", lambda x: Example(x["question"]), [
        "Generate grade school math word problems covering arithmetic, basic algebra, and word "
        "problem reasoning.",
        "Create diverse math word problems involving real-world scenarios and numerical reasoning.",
        "Math word problems suitable for grade school students."]),
    _task("gsm8k_answer_from_question", lambda x: Example(x["answer"], x["question"]), [
        "Given a math word problem, generate its step-by-step solution with calculations and "
        "reasoning.",
        "Solve grade school math word problems by providing detailed worked solutions.",
        "Given: question (math word problem). Generate: answer (step-by-step solution with final "
        "numerical answer)."]),
    _task("gsm8k_question_answer",
          lambda x: Example(dumps({"question": x["question"], "answer": x["answer"]})), [
        "Generate both a math word problem (question) and its step-by-step solution (answer). "
        "These are grade school math problems covering arithmetic, basic algebra, and word "
        "problem reasoning.",
        "Create complete math problem pairs: generate both the word problem statement and its "
        "detailed solution with calculations.",
        "Generate: question (math word problem), answer (step-by-step solution with final "
        "numerical answer)."]),
    _task("gsm8k_question_from_answer", lambda x: Example(x["question"], x["answer"]), [
        "Given a step-by-step math solution, generate a word problem that would lead to this "
        "solution.",
        "Create math word problems that match the given worked solution and final answer.",
        "Given: answer (step-by-step solution). Generate: question (word problem that leads to "
        "this solution)."]),
]
