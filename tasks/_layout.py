"""Helpers for loaders that read a source in one of several file layouts -- the published one
that `python -m tasks download` fetches, or another copy of the same rows (a re-serialised or
rebuilt file found in a data directory) -- and for multiple-choice prompts. Not a task module.
"""
import string
from pathlib import Path

from tasks import Example, Instance, MissingData, data_dir

LETTERS = string.ascii_uppercase


def layout(path, task: str, layouts: list[tuple[str, ...]], url: str) -> tuple[Path, int]:
    """(data directory, index of the first layout whose files are all there), else MissingData
    naming the first layout (the downloadable one), then the alternatives, and where to get it."""
    r = data_dir(path)
    for i, files in enumerate(layouts):
        if all((r / f).exists() for f in files):
            return r, i
    alternatives = "; or ".join(", ".join(files) for files in layouts[1:])
    raise MissingData(f"task {task!r} needs {', '.join(layouts[0])}"
                      + (f" (or {alternatives})" if alternatives else "")
                      + f" under {r}/ (run `python -m tasks download {task}`, or get it from "
                        f"{url}; set --data_dir or SPECTRUM_DATA to its folder)")


def read_parquet(path, task: str) -> list[dict]:
    """Rows of a parquet file as dicts (pyarrow is imported only here)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingData(f"task {task!r} reads the parquet file {path}: "
                          f"pip install pyarrow") from None
    return pq.read_table(path).to_pylist()


def lettered(head: str, choices) -> str:
    """head, then one "A. choice" line per choice."""
    return "\n".join([head] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)])


def chunk_instances(task: str, examples: list[Example], r, size: int, descriptions: list[str],
                    n_options: list[int] | None = None) -> list[Instance]:
    """The examples shuffled and cut into chunks of `size` (each question in exactly one
    instance), as the reference's capability tasks (n_per -1, fixed n_iter). Options are the
    letters up to the most choices any question of the chunk has (n_options[i] for example i)."""
    order = r.permutation(len(examples))
    out = []
    for k, start in enumerate(range(0, len(order), size)):
        idx = order[start:start + size]
        options = None
        if n_options is not None:
            options = list(LETTERS[:max(n_options[i] for i in idx)])
        out.append(Instance(task, descriptions, [examples[i] for i in idx], group=f"chunk{k}",
                            options=options))
    return out
