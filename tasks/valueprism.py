"""ValuePrism (Hugging Face allenai/ValuePrism, config "full": full/full.csv): human-written
situations with machine-generated values, rights and duties (vrd), each with a valence and an
explanation. Gated: log in and accept the AI2 ImpACT licence (medium risk) on the dataset page.
Columns used: situation, vrd (Value / Right / Duty), text, explanation, valence. All train.

valueprism_situation: the distinct situations, shuffled and cut into chunks of
    Geometric+Poisson(256); every situation is in exactly one instance.
valueprism_vrd: situation -> JSON list of {text, vrd, explanation, valence}, all of the
    situation's rows in a random order; the pairs cut into chunks of Geometric+Poisson(32), at
    most 500 instances (as the reference).
valueprism_vrds_noncontextual: for each of Value, Right, Duty, its distinct texts cut into
    chunks of Geometric+Poisson(256).
valueprism_misc: values named in >= 10 Value rows, a seeded random 400 of them; one instance per
    value: a random Geometric+Poisson(32) of the distinct situations whose rows name it.

Fixed from the reference implementation (tsor13/spectrum): the vrd output was a Python repr
(str of a list of dicts); it is JSON here, and the description says so and names the valence
labels the data uses (Supports, Opposes, Either) instead of "Neutral".
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/allenai/ValuePrism"
FILES = ("valueprism/full/full.csv",)
GATED = f"{URL} (gated: accept the AI2 ImpACT MR licence there, then `huggingface-cli login`)"
DOWNLOAD = Download(hub="allenai/ValuePrism", hub_files=("full/full.csv",), hub_dir="valueprism",
                    manual=f"Log in at {URL}, accept the AI2 ImpACT licence (medium risk) and "
                           "fill in the form, run `huggingface-cli login`, then `python -m tasks "
                           "download` (or put full/full.csv under <data_dir>/valueprism/).")
VRDS = ("Value", "Right", "Duty")


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[dict]:
    rows = hubfiles.columns(hubfiles.csv_rows(path), path, "situation", "vrd", "text",
                            "explanation", "valence")
    return [r for r in rows if r["situation"].strip() and r["text"].strip()]


def rows(name, data_dir):
    return load(str(common.root(data_dir, name, FILES, GATED) / FILES[0]))


def _task(name, instances):
    return Task(name, "train", URL, instances=instances, files=FILES, download=DOWNLOAD,
                checked="fixture")


def situations(seed=0, data_dir=None):
    name = "valueprism_situation"
    distinct = list(dict.fromkeys(common.text(r["situation"]) for r in rows(name, data_dir)))
    chunks = common.partition(distinct, common.rng(seed, name), lambda r: common.gp(r, 256))
    return [Instance(name, ["Generate a situation.", "Situations to do moral reasoning over"],
                     [Example(s) for s in c]) for c in chunks]


def vrd(seed=0, data_dir=None, max_instances=500):
    name = "valueprism_vrd"
    r = common.rng(seed, name)
    by_situation = {}
    for x in rows(name, data_dir):
        by_situation.setdefault(common.text(x["situation"]), []).append(
            {"text": x["text"].strip(), "vrd": x["vrd"],
             "explanation": common.text(x["explanation"]), "valence": x["valence"]})
    pairs = [Example(dumps([xs[i] for i in r.permutation(len(xs))]), s)
             for s, xs in by_situation.items()]
    chunks = common.partition(pairs, r, lambda r: common.gp(r, 32))[:max_instances]
    return [Instance(name, [VRD_DESCRIPTION], c) for c in chunks]


VRD_DESCRIPTION = (
    "You will be given a situation and be asked to do moral reasoning over it. For each situation, "
    "you will output a JSON list of objects, each with the following keys:\n"
    "-text: A relevant moral consideration or factor.\n"
    "-vrd: Whether the consideration is a value, a right, or a duty.\n"
    "-explanation: A short explanation of why the consideration is relevant to the situation.\n"
    "-valence: The valence of the consideration (Supports, Opposes, or Either). It should ideally "
    "contain at least 3-8 moral considerations.")


def noncontextual(seed=0, data_dir=None):
    name = "valueprism_vrds_noncontextual"
    xs = rows(name, data_dir)
    out = []
    for kind in VRDS:
        texts = list(dict.fromkeys(x["text"].strip() for x in xs if x["vrd"] == kind))
        r = common.rng(seed, name, kind)
        chunks = common.partition(texts, r, lambda r: common.gp(r, 256))
        out += [Instance(name, [f"{kind} (wrt moral reasoning)"], [Example(t) for t in c],
                         group=kind) for c in chunks]
    return out


def misc(seed=0, data_dir=None, max_values=400, min_occurrences=10):
    name = "valueprism_misc"
    xs = rows(name, data_dir)
    counts = {}
    for x in xs:
        if x["vrd"] == "Value":
            counts[x["text"].strip()] = counts.get(x["text"].strip(), 0) + 1
    values = [v for v, n in counts.items() if n >= min_occurrences]
    r = common.rng(seed, name)
    values = [values[i] for i in r.permutation(len(values))[:max_values]]
    where = {v: [] for v in values}
    for x in xs:  # rows of any kind whose text is the value (as the reference)
        if x["text"].strip() in where:
            where[x["text"].strip()].append(common.text(x["situation"]))
    out = []
    for v in values:
        sub = common.subsets(list(dict.fromkeys(where[v])), r, 1, 32)[0]
        out.append(Instance(name, [f"Generate a situation relating to {v}."],
                            [Example(s) for s in sub], group=v))
    return out


TASKS = [
    _task("valueprism_situation", situations),
    _task("valueprism_vrd", vrd),
    _task("valueprism_vrds_noncontextual", noncontextual),
    _task("valueprism_misc", misc),
]
