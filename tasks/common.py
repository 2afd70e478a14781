"""Helpers shared by the data-backed task modules: locating files, seeding, example counts,
and the exact predictive of sampling from known finite lists.

Every data module reads its files in place from the data directory (never copies them) and
caches what it parsed once per process, keyed by the directory.
"""
import csv
import json
import math
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from tasks import MissingData, data_dir

csv.field_size_limit(sys.maxsize)  # polis descriptions and survey HTML exceed csv's default cap


def root(path, task: str, files, url: str) -> Path:
    """The data directory, after checking `files` are there, else MissingData naming the
    missing files (the first two and how many more) and where to get them."""
    r = data_dir(path)
    missing = [f for f in files if not (r / f).exists()]
    if len(missing) > 3:
        missing = missing[:2] + [f"and {len(missing) - 2} more files"]
    if missing:
        raise MissingData(f"task {task!r} needs {', '.join(missing)} under {r}/ "
                          f"(get it from {url}; set --data_dir or SPECTRUM_DATA to its folder)")
    return r


def dumps(value) -> str:
    """The one canonical JSON style for multi-field inputs and outputs."""
    return json.dumps(value, ensure_ascii=False)


def text(s: str) -> str:
    """A free-text cell with Windows/old-Mac line ends made "\n", stripped."""
    return s.replace("\r\n", "\n").replace("\r", "\n").strip()


def rng(seed: int, *keys) -> np.random.Generator:
    """An independent stream per (seed, task, purpose): never the global numpy state."""
    return np.random.default_rng([seed] + [zlib.crc32(str(k).encode()) for k in keys])


def lse(x, axis=None):
    """log(sum(exp(x))) that is -inf, not nan, when everything is -inf."""
    x = np.asarray(x, float)
    if x.size == 0:
        return -math.inf if axis is None else np.full(np.delete(x.shape, axis), -math.inf)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r.squeeze(axis) if axis is not None else float(r.squeeze())


def gp(r: np.random.Generator, mean: float) -> int:
    """Examples per sequence as the reference draws them: Geometric(2/mean) + Poisson(mean/2),
    support >= 1, mean `mean`, heavy right tail. data.py then keeps what fits in max_len."""
    return int(r.geometric(2 / mean) + r.poisson(mean / 2))


def partition(items: list, r: np.random.Generator, size) -> list[list]:
    """Shuffle `items` and cut them into consecutive chunks (each item in exactly one chunk);
    `size` is an int or a function of the rng giving each chunk's size."""
    items = [items[i] for i in r.permutation(len(items))]
    out, i = [], 0
    while i < len(items):
        n = size if isinstance(size, int) else size(r)
        out.append(items[i:i + n])
        i += n
    return out


def subsets(items: list, r: np.random.Generator, n_seq: int, mean: float) -> list[list]:
    """n_seq random subsets (without replacement within a subset) of gp(mean) items each."""
    return [[items[i] for i in r.permutation(len(items))[:gp(r, mean)]] for _ in range(n_seq)]


# --- exact predictive for sampling from known lists --------------------------------------------
# A process is ("without", Counter of items) -- draws without replacement from a multiset (a
# name can be in a list twice, e.g. as a girl's and a boy's name) -- or ("with", {item: prob})
# -- i.i.d. draws. A task made of such instances gets the exact posterior predictive: given the
# description, only instances showing that description remain (each description names one
# process); without it, a mixture over all the task's instances, equally likely a priori
# (exactly how sequences are drawn: pick an instance, then show its examples).

def without(items) -> tuple:
    c = Counter(items)
    return ("without", c, sum(c.values()))


def with_probs(probs: dict) -> tuple:
    return ("with", probs, 1.0)


def next_logp(proc, outs: tuple, y: str) -> float:
    """log P(next draw = y | previous draws outs) under one process."""
    kind, table, n = proc
    if kind == "with":
        p = table.get(y, 0.0)
    else:
        left = table.get(y, 0) - outs.count(y)
        p = left / (n - len(outs)) if left > 0 else 0.0
    return math.log(p) if p > 0 else -math.inf


def list_bayes(procs: list, descriptions: list):
    """bayes(description, prior_examples, example) for a task whose instance i samples from
    procs[i] and shows one of the variants descriptions[i] (a list). The posterior weights of each prefix are cached and
    extended one draw at a time, so scoring a sequence costs O(instances) per position."""
    cache = {}

    def weights(desc, outs: tuple) -> list[float]:
        j = len(outs)  # longest cached prefix, then extend it one draw at a time
        while j > 0 and (desc, outs[:j]) not in cache:
            j -= 1
        if (desc, ()) not in cache:
            cache[(desc, ())] = [0.0 if desc is None or desc in d else -math.inf
                                 for d in descriptions]
        w = cache[(desc, outs[:j])]
        for t in range(j, len(outs)):
            w = [wi + next_logp(procs[i], outs[:t], outs[t]) if wi > -math.inf else wi
                 for i, wi in enumerate(w)]
            cache[(desc, outs[:t + 1])] = w
        return w

    def bayes(description, prior, example) -> float:
        if len(cache) > 5000:
            cache.clear()
        outs = tuple(e.output for e in prior)
        w = weights(description, outs)
        live = [i for i, wi in enumerate(w) if wi > -math.inf]
        if not live:
            return -math.inf
        return (lse([w[i] + next_logp(procs[i], outs, example.output) for i in live])
                - lse([w[i] for i in live]))

    return bayes


def jsonl(path):
    """(line number, object) for each non-blank line of a JSON Lines file; a line that is not JSON
    is a ValueError naming the file and the line."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield i, json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path} line {i} is not JSON ({e.msg})") from None
