"""IMDB movie reviews (the 25,000 training reviews, 12,500 per class): a training task.

Input the review text (verbatim, with its "<br />" markup) -> "negative" or "positive" (options
both). 200 instances of Geometric+Poisson(128) reviews drawn at random, as the reference
(n_per 200); data.py keeps the ones that fit.
Layouts read:
  imdb/plain_text/train-00000-of-00001.parquet   Hugging Face stanfordnlp/imdb (text, label 0 =
      negative, 1 = positive): what `python -m tasks download imdb` fetches;
  imdb/imdb_train.jsonl.gz   the aclImdb train/{pos,neg}/*.txt reviews packed as gzipped JSON
      lines {file, text, label} with the same labels.
"""
import functools
import gzip
import json
from pathlib import Path

from tasks import Download, Example, Instance, Task
from tasks import _layout, common

URL = "https://huggingface.co/datasets/stanfordnlp/imdb"
PARQUET = "imdb/plain_text/train-00000-of-00001.parquet"
PACKED = "imdb/imdb_train.jsonl.gz"
RATING = ("negative", "positive")
DESCRIPTIONS = ["Classify whether the following movie reviews as negative or positive."]


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[tuple[str, int]]:
    """(review, label) of every training review."""
    if which == 0:
        rows = _layout.read_parquet(Path(root, PARQUET), "imdb")
    else:
        with gzip.open(Path(root, PACKED), "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    out = [(x["text"], int(x["label"])) for x in rows]
    if any(label not in (0, 1) for _, label in out):
        raise ValueError(f"{Path(root, (PARQUET, PACKED)[which])}: a label is not 0 or 1")
    return out


def instances(seed=0, data_dir=None):
    root, which = _layout.layout(data_dir, "imdb", [(PARQUET,), (PACKED,)], URL)
    examples = [Example(RATING[label], text) for text, label in load(str(root), which)]
    r = common.rng(seed, "imdb")
    return [Instance("imdb", DESCRIPTIONS, sub, group=f"sample{k}", options=list(RATING))
            for k, sub in enumerate(common.subsets(examples, r, 200, 128))]


TASKS = [Task("imdb", "train", URL, instances=instances, files=(PARQUET,), checked="real",
              download=Download(hub="stanfordnlp/imdb",
                                hub_files=("plain_text/train-00000-of-00001.parquet",),
                                hub_dir="imdb"))]
