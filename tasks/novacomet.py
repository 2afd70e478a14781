"""NovaCOMET (Hugging Face tsor13/novacomet, train split): commonsense premises and hypotheses.
Both tasks are held out (split "val").

novacomet_premise: the distinct premises (events), shuffled and cut into chunks of
    Geometric+Poisson(64); every premise is in exactly one instance.
novacomet_hypothesis: premise -> the JSON list of all hypotheses recorded for it (in file order),
    the (premise, list) pairs cut into chunks of Geometric+Poisson(32).

The train split is read from the parquet shards the datasets library publishes under data/
(data/train-*.parquet; columns premise, hypothesis). Fixed from the reference implementation
(tsor13/spectrum): its two generators carry each other's internal names (the keys are what counts
here), and the hypothesis descriptions said "separated by semicolons" while the output is a JSON
list; they now say JSON list.
"""
import functools

from tasks import Download, Example, Instance, MissingData, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/tsor13/novacomet"
DATA = "novacomet/data"  # the shard folder of the dataset repo, under the data directory
# The shard names (with or without the datasets library's hash suffix) are not pinned here, so the
# download is the whole dataset repo and the loader reads whatever data/train-*.parquet it holds.
DOWNLOAD = Download(hub="tsor13/novacomet", hub_dir="novacomet", manual=(
    "huggingface-cli download tsor13/novacomet --repo-type dataset "
    "--local-dir <data_dir>/novacomet"))


@functools.lru_cache(maxsize=2)
def load(folder: str) -> list[dict]:
    rows = []
    for p in hubfiles.shards(folder, "train"):
        rows += hubfiles.columns(hubfiles.parquet(p), p, "premise", "hypothesis")
    return [r for r in rows if r["premise"] and r["hypothesis"]]


def rows(name, data_dir):
    root = common.root(data_dir, name, (), URL)
    if not hubfiles.shards(root / DATA, "train"):
        raise MissingData(f"task {name!r} needs {DATA}/train-*.parquet under {root}/ (get it from "
                          f"{URL}: {DOWNLOAD.manual}; set --data_dir or SPECTRUM_DATA to its "
                          "folder)")
    return load(str(root / DATA))


def premises(seed=0, data_dir=None):
    name = "novacomet_premise"
    distinct = list(dict.fromkeys(common.text(r["premise"]) for r in rows(name, data_dir)))
    chunks = common.partition(distinct, common.rng(seed, name), lambda r: common.gp(r, 64))
    return [Instance(name, PREMISE_DESCRIPTIONS, [Example(p) for p in c]) for c in chunks]


def hypotheses(seed=0, data_dir=None):
    name = "novacomet_hypothesis"
    by_premise = {}
    for r in rows(name, data_dir):
        by_premise.setdefault(common.text(r["premise"]), []).append(common.text(r["hypothesis"]))
    pairs = [Example(dumps(h), p) for p, h in by_premise.items()]
    chunks = common.partition(pairs, common.rng(seed, name), lambda r: common.gp(r, 32))
    return [Instance(name, HYPOTHESIS_DESCRIPTIONS, c) for c in chunks]


PREMISE_DESCRIPTIONS = [
    "Generate an event.",
    "Events",
    "Generate a list of diverse events.",
    "Situations about which commonsense reasoning could be required.",
    "Single sentence events",
]
HYPOTHESIS_DESCRIPTIONS = [
    "Given a premise (or situation), generate a list of commonsense hypotheses as a JSON list.",
    "You will be given a premise. Generate a list of around 8-10 hypotheses (or inferences) as a "
    "JSON list.",
]

TASKS = [
    Task("novacomet_hypothesis", "val", URL, instances=hypotheses, files=(DATA,),
         download=DOWNLOAD, checked="fixture"),
    Task("novacomet_premise", "val", URL, instances=premises, files=(DATA,), download=DOWNLOAD,
         checked="fixture"),
]
