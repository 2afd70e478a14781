"""Haikus (haikurnn corpus, 2018-11 version: 25,886 poems from 4 sources), one task, 3 sub-tasks.

Every instance holds poems of a single source (tempslibres, img2poems, sballas, haikuzao), as
chunks of 64 that partition the source's poems; each sub-task keeps 200 chunks:
  syllables      input "5, 5, 2" (syllables per line)              -> poem
  include_word   input json{include_word, syllables}               -> poem
  poem           no input                                          -> poem
A poem is its three lines joined by "\n". Syllable cells with alternatives ("2,3") keep the
first count. The 128 sballas rows with an empty line are dropped (the reference printed "nan").
Deviations: the reference kept the first 200 chunks in source order, which never reaches the
later sources, and pooled all sources for the third sub-task; here the 200 chunks are a seeded
random choice over all sources and every sub-task is grouped by source.
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/docmarionum1/haikurnn"
FILES = ("haikus/haikus.csv",)


@functools.lru_cache(maxsize=2)
def load(root: str) -> list[dict]:
    out = []
    with open(f"{root}/{FILES[0]}", newline="", encoding="utf-8") as f:
        for x in csv.DictReader(f):
            lines = [x[k].strip() for k in ("0", "1", "2")]
            if all(lines):
                out.append({"source": x["source"], "poem": "\n".join(lines),
                            "syllables": ", ".join(x[f"{k}_syllables"].split(",")[0].strip()
                                                   for k in ("0", "1", "2"))})
    return out


DESCRIPTIONS = {
    "syllables": ["Haikus. The input gives the number of syllables in each of the three lines.",
                  "Write a haiku with the given syllable count per line."],
    "include_word": ["Haikus. The input gives a word the haiku must include and the number of "
                     "syllables in each of its three lines.",
                     "Write a haiku that uses the given word and has the given syllable count "
                     "per line."],
    "poem": ["Haikus.", "Three-line haiku poems."],
}


def instances(seed=0, data_dir=None, n_chunks=200):
    rows = load(str(common.root(data_dir, "haikus", FILES, URL)))
    by_source = {}
    for x in rows:
        by_source.setdefault(x["source"], []).append(x)
    out = []
    for sub in DESCRIPTIONS:
        r = common.rng(seed, "haikus", sub)
        chunks = [(s, c) for s, xs in by_source.items() for c in common.partition(xs, r, 64)]
        for i in sorted(r.permutation(len(chunks))[:n_chunks]):
            source, chunk = chunks[i]
            if sub == "syllables":
                ex = [Example(x["poem"], x["syllables"]) for x in chunk]
            elif sub == "include_word":
                ex = [Example(x["poem"], dumps({"include_word": str(r.choice(x["poem"].split())),
                                                "syllables": x["syllables"]})) for x in chunk]
            else:
                ex = [Example(x["poem"]) for x in chunk]
            out.append(Instance("haikus", DESCRIPTIONS[sub], ex, group=f"{source}:{sub}"))
    return out


TASKS = [Task("haikus", "train", URL, instances=instances, files=FILES, checked="real",
              download=Download(urls={FILES[0]: "https://raw.githubusercontent.com/docmarionum1/"
                                                 "haikurnn/HEAD/input/poems/haikus.csv"}))]
