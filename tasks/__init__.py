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
import importlib
import os
import pkgutil
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Download:
    """How `python -m tasks download` gets a source's files into the data directory. The task's
    loader then reads them in place, at the same relative paths."""
    urls: dict[str, str] = field(default_factory=dict)  # path under the data dir -> direct URL
    hub: str = ""                       # a Hugging Face dataset id (fetched with huggingface_hub) ...
    hub_files: tuple[str, ...] = ()     # ... these files of it (paths in the dataset repo) ...
    hub_dir: str = ""                   # ... saved under this folder of the data dir, same paths
    manual: str = ""                    # gated / manual sources: what a person must do, step by step
    hub_revision: str = ""              # hub files at this branch/tag/commit (default: main)
    sha256: dict[str, str] = field(default_factory=dict)  # path under the data dir -> sha256
    unzip: tuple[str, ...] = ()         # zips to extract where they are (loaders that read the
                                        # extracted files; other zips are read in place)


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
    download: Download | None = None    # where those files come from
    checked: str = ""                   # data-backed loaders: "real" (tested on the real files)
                                        # or "fixture" (only on fixtures in the upstream format)
    ours: bool = False                  # not in the reference suite: a task of this project
    capability: bool = False            # a single-answer benchmark (reported in its own table)


class MissingData(Exception):
    """A data-backed task whose files are not in the data directory."""


def data_dir(path=None) -> Path:
    return Path(path or os.environ.get("SPECTRUM_DATA", "data"))


# --- registry ------------------------------------------------------------------------------
# Every module of this package that defines a module-level TASKS list is part of the suite:
# adding a source is adding a module. Order: module name, then the module's own order.

def _discover() -> dict[str, Task]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        for t in getattr(importlib.import_module(f"{__name__}.{info.name}"), "TASKS", ()):
            if t.name in found:
                raise ValueError(f"task {t.name!r} is defined twice (tasks/{info.name}.py)")
            found[t.name] = t
    return found


TASKS: dict[str, Task] = _discover()


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
