"""DROP (Hugging Face ucinlp/drop, validation split: data/validation-00000-of-00001.parquet; 9,535
questions): reading comprehension with discrete reasoning over paragraphs. A held-out capability
task (split "val").

drop: "Passage: <passage>\\nQuestion: <question>" -> the first gold answer span (numbers and dates
    are spans too: answers_spans is {spans: [...], types: [...]}), the questions shuffled and cut
    into chunks of 10. Questions with no gold span are skipped (the reference stops with an error).
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles

URL = "https://huggingface.co/datasets/ucinlp/drop"
PARQUET = "data/validation-00000-of-00001.parquet"
FILES = (f"drop/{PARQUET}",)
DOWNLOAD = Download(hub="ucinlp/drop", hub_files=(PARQUET,), hub_dir="drop")
DESCRIPTION = ("Answer the question based on the passage. Respond with just the answer, usually a "
               "short word or phrase, either extracted from the passage or deduced from the "
               "information in the passage.")


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[Example]:
    out = []
    for r in hubfiles.columns(hubfiles.parquet(path), path, "passage", "question", "answers_spans"):
        spans = [s.strip() for s in (r["answers_spans"] or {}).get("spans") or []
                 if s and s.strip()]
        if spans:
            out.append(Example(spans[0], f"Passage: {(r['passage'] or '').strip()}\n"
                                         f"Question: {(r['question'] or '').strip()}"))
    return out


def instances(seed=0, data_dir=None):
    examples = load(str(common.root(data_dir, "drop", FILES, URL) / FILES[0]))
    return [Instance("drop", [DESCRIPTION], c)
            for c in common.partition(examples, common.rng(seed, "drop"), 10)]


TASKS = [Task("drop", "val", URL, instances=instances, files=FILES, download=DOWNLOAD,
              checked="fixture", capability=True)]
