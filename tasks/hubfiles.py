"""Reading Hugging Face Hub dataset files in place, as published: parquet shards (needs pyarrow, an
optional dependency imported only here), JSON Lines (plain or .gz) and CSV. Each reader returns the
file's rows as plain dicts (parquet structs and lists become dicts and lists) and fails with one
line: MissingData when pyarrow is absent, ValueError naming the file when it is not what upstream
publishes.
"""
import csv
import glob
import gzip
import json
from pathlib import Path

from tasks import MissingData
from tasks import common  # noqa: F401  (raises csv's field size cap: long cells in these files)


def parquet(path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingData(f"reading {path} needs pyarrow: pip install pyarrow") from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow's ArrowInvalid/OSError: not a parquet file, or truncated
        raise ValueError(f"{path} is not a readable parquet file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None


def shards(folder, split: str) -> list[str]:
    """The parquet shards of a split as the datasets library writes them (data/<split>-*.parquet,
    with or without a hash in the name), in name order."""
    return sorted(glob.glob(str(Path(folder) / f"{split}-*.parquet")))


def jsonl(path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path} line {i} is not JSON ({e.msg})") from None
    return rows


def csv_rows(path) -> list[dict]:
    # utf-8-sig: a leading byte-order mark would otherwise become part of the first column name
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def columns(rows: list[dict], path, *names):
    """Check the rows carry these columns (ValueError naming the file and what is missing)."""
    if not rows:
        raise ValueError(f"{path} has no rows")
    missing = [n for n in names if n not in rows[0]]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(map(repr, missing))} (it has "
                         f"{', '.join(list(rows[0])[:12])}); is it the upstream file?")
    return rows
