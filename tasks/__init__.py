"""The Spectrum Suite: every task as plain data.

A task instance is one data-generating process (one person, one urn, one list). It holds the
description variants that can be shown for it, its exchangeable examples, and, where the process
is known exactly, the Bayes-optimal predictive. data.py turns instances into token sequences;
evaluate.py scores models against them.

Three kinds of thing a task can provide:
  instances(...)     -> list[Instance]      sequences for training and the steerability eval
  dist_prompts(...)  -> list[DistPrompt]    prompts with an exact target distribution (alignment eval)
  diversity          -> DiversityTask       a list task with a known valid set (diversity eval)

Everything is deterministic given the seed. Data-backed tasks read files from a data directory
(`--data_dir`, or the SPECTRUM_DATA environment variable, default `data/`) and raise
MissingData, a one-line message naming the files and where to get them, when they are absent.
"""
import difflib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Example:
    output: str
    input: str | None = None


# bayes(description, prior_examples, example) -> exact log P(example.output | description,
# prior examples, example.input). description is None when the sequence shows none.
Bayes = Callable[[str | None, list[Example], Example], float]


@dataclass
class Instance:
    task: str                           # registry key of the task it belongs to
    descriptions: list[str]             # variants; a drawn sequence shows one of them, or none
    examples: list[Example]             # exchangeable draws; data.py shuffles them per sequence
    group: str = ""                     # who or what generated them (person id, list name, ...)
    options: list[str] | None = None    # the answer set, for categorical tasks (option accuracy)
    bayes: Bayes | None = None          # exact posterior predictive, where the process is known


@dataclass
class DistPrompt:
    task: str
    messages: list[dict]                # description/input/output messages; the model answers next
    target: dict[str, float]            # exact distribution over candidate outputs (sums to 1)


@dataclass
class DiversityTask:
    name: str
    description: str
    examples: list[str]                 # exactly 3 example outputs, as in the reference
    valid: Callable[[str], bool]        # is this generated string a valid member?
    max_new_tokens: int = 24
    size: int | None = None             # number of distinct valid strings, when finite


@dataclass
class Task:
    name: str
    split: str                          # "train" or "val" (held out, as in the paper)
    source: str                         # "synthetic", or the public URL of the data
    instances: Callable[..., list[Instance]] | None = None     # (seed, data_dir) -> instances
    dist_prompts: Callable[..., list[DistPrompt]] | None = None
    diversity: DiversityTask | Callable[..., DiversityTask] | None = None  # or a factory
                                        # (data_dir) -> DiversityTask for data-backed lists
    files: tuple[str, ...] = ()         # files it needs, relative to the data directory


class MissingData(Exception):
    """A data-backed task whose files are not in the data directory."""


def data_dir(path=None) -> Path:
    return Path(path or os.environ.get("SPECTRUM_DATA", "data"))


def require(root: Path, files, url: str, task: str) -> None:
    missing = [f for f in files if not (root / f).exists()]
    if missing:
        raise MissingData(f"task {task!r} needs {', '.join(missing)} under {root}/ "
                          f"(get it from {url}; set --data_dir or SPECTRUM_DATA to its folder)")


def dumps(value) -> str:
    """The one canonical JSON style for multi-field inputs and outputs."""
    return json.dumps(value, ensure_ascii=False)


def logsumexp(xs) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs)) if m > -math.inf else -math.inf


# --- registry ------------------------------------------------------------------------------
# Each module lists its tasks in a module-level TASKS list; the registry is their union, in order.
from tasks import synthetic, flight, lists, diversity_offline  # noqa: E402
from tasks import (ambient, babynames, chemistry, diffuse,  # noqa: E402
                   generativesocialchoice, gsm8k, haikus, nytimes, polis, popquorn, validity)

TASKS: dict[str, Task] = {t.name: t for m in (synthetic, flight, lists, diversity_offline,
                                               polis, diffuse, haikus,
                                               generativesocialchoice, popquorn, ambient,
                                               chemistry, babynames, gsm8k, nytimes, validity)
                          for t in m.TASKS}


def get(name: str) -> Task:
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `python -m tasks` lists them"
        raise KeyError(f"unknown task {name!r}{hint}")
    return TASKS[name]


def names(split: str | None = None, kind: str = "instances") -> list[str]:
    """Task names of a split ("train"/"val"/None for all) that provide `kind`."""
    return [n for n, t in TASKS.items()
            if (split is None or t.split == split) and getattr(t, kind) is not None]
