"""ValueConsistency (Hugging Face jlcmoore/ValueConsistency, train split: valueconsistency.jsonl):
value-laden questions, controversial or not, in English, Chinese, German and Japanese, about
topics from the U.S., China, Germany and Japan. Train.

valueconsistency: {controversial, language, country} (JSON, controversial as true/false) ->
    question, over the original questions only (rows whose `rephrase` is set are paraphrases and
    are left out, as the reference does); shuffled and cut into chunks of Geometric+Poisson(64).
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/jlcmoore/ValueConsistency"
FILES = ("valueconsistency/valueconsistency.jsonl",)
DOWNLOAD = Download(hub="jlcmoore/ValueConsistency", hub_files=("valueconsistency.jsonl",),
                    hub_dir="valueconsistency")
DESCRIPTIONS = [
    "Value-based questions.",
    "Value-based questions given whether the question is controversial, the language it is asked "
    "in, and the country it is for.",
]


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[dict]:
    rows = hubfiles.columns(hubfiles.jsonl(path), path, "question", "controversial", "language",
                            "country", "rephrase")
    return [r for r in rows if not r.get("rephrase") and r["question"]]


def instances(seed=0, data_dir=None):
    name = "valueconsistency"
    rows = load(str(common.root(data_dir, name, FILES, URL) / FILES[0]))
    examples = [Example(common.text(r["question"]),
                        dumps({"controversial": r["controversial"], "language": r["language"],
                               "country": r["country"]})) for r in rows]
    chunks = common.partition(examples, common.rng(seed, name), lambda r: common.gp(r, 64))
    return [Instance(name, DESCRIPTIONS, c) for c in chunks]


TASKS = [Task("valueconsistency", "train", URL, instances=instances, files=FILES,
              download=DOWNLOAD, checked="fixture")]
