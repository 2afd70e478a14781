"""Palmer penguins as joint tabular rows (like the reference's titanic_all_variables), from the CSV
inside the palmerpenguins package (code MIT; data CC0, Gorman et al. 2014, Palmer Station LTER:
344 penguins, 3 species, 3 islands, 2007-2009). The CSV is read in place without importing the
package (whose __init__ imports pandas): `pip install --no-deps palmerpenguins` is enough.
A task of this project, not of the reference suite.

A row is a JSON object with the CSV's columns in order: species, island, bill_length_mm and
bill_depth_mm (numbers as written, e.g. 39.1 or 18), flipper_length_mm, body_mass_g, sex
("male"/"female"), year; "NA" becomes null. Two kinds of instance, each drawing penguins
uniformly at random WITHOUT replacement from a population (so the exact predictive is
common.list_bayes over a multiset; two penguins may share a row):
  rows      every penguin of a population -> its JSON row. Populations: all; each species;
            each island; each (species, island) pair present; each year; each sex; each
            (species, sex) pair.
  columns   a penguin of a population -> one field (species, island or sex), as the word the
            CSV writes. Populations: all, and each value of another of those fields or year.
            A column with a missing value in the population leaves those penguins out (sex
            has 11 NAs); a column that is constant in the population is skipped.
Distribution prompts: every `columns` process (target = the value counts in the population).
"""
import csv
from functools import lru_cache

from tasks import Task
from tasks import _pypi as P
from tasks import common

SOURCE = "pypi:palmerpenguins https://pypi.org/project/palmerpenguins/"
PIP = "--no-deps palmerpenguins"
COLUMNS = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
           "body_mass_g", "sex", "year"]


def value(s: str):
    if s == "NA":
        return None
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s


@lru_cache(maxsize=None)
def load(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header != COLUMNS:
            raise ValueError(f"{path}: expected the columns {','.join(COLUMNS)}, got {header}")
        return [dict(zip(COLUMNS, map(value, row))) for row in r]


def rows(task="pypi_penguins") -> list[dict]:
    return load(str(P.package_dir("palmerpenguins", PIP, task) / "data" / "penguins.csv"))


def where(cond: dict) -> str:
    """" (Adelie penguins on Dream island, 2008)"-style qualifier of a population."""
    if not cond:
        return ""
    who = f"{cond.get('sex', '')} {cond.get('species', '')}".split()
    s = " ".join(who) + " penguins" if who else "penguins"
    s += f" on {cond['island']} island" if "island" in cond else ""
    s += f" observed in {cond['year']}" if "year" in cond else ""
    return f" ({s})"


def populations(data) -> list[dict]:
    """The conditions of the row instances (see the docstring), in a fixed order."""
    vals = {c: sorted({r[c] for r in data if r[c] is not None}) for c in ("species", "island", "year", "sex")}
    out = [{}]
    out += [{c: v} for c in ("species", "island", "year", "sex") for v in vals[c]]
    for a, b in (("species", "island"), ("species", "sex")):
        out += [{a: x, b: y} for x in vals[a] for y in vals[b]
                if any(r[a] == x and r[b] == y for r in data)]
    return out


def matching(data, cond):
    return [r for r in data if all(r[k] == v for k, v in cond.items())]


@lru_cache(maxsize=None)
def all_specs() -> tuple[list, list]:
    """(row specs, column specs)."""
    data = rows()
    row_specs = []
    for cond in populations(data):
        q = where(cond)
        key = "/".join(f"{k}={v}" for k, v in cond.items()) or "all"
        row_specs.append((f"rows/{key}", [
            f"Palmer penguins{q}: one penguin per line as a JSON row, drawn at random without replacement.",
            f"A penguin measured near Palmer Station, Antarctica{q}, as a JSON object with its species, "
            f"island, bill length and depth (mm), flipper length (mm), body mass (g), sex and year.",
        ], common.without([common.dumps(r) for r in matching(data, cond)])))
    col_specs = []
    for col in ("species", "island", "sex"):
        others = [c for c in ("species", "island", "year", "sex") if c != col]
        conds = [{}] + [{c: v} for c in others for v in sorted({r[c] for r in data if r[c] is not None})]
        for cond in conds:
            vals = [r[col] for r in matching(data, cond) if r[col] is not None]
            if len(set(vals)) < 2:
                continue
            q = where(cond)
            key = "/".join(f"{k}={v}" for k, v in cond.items()) or "all"
            col_specs.append((f"{col}/{key}", [
                f"The {col} of a penguin from the Palmer penguins data{q}, each penguin drawn at most once.",
                f"Palmer penguins{q}: the {col} of penguins drawn at random without replacement.",
            ], common.without(vals)))
    return row_specs, col_specs


def instances(seed=0, data_dir=None):
    rows()  # MissingData when the package is absent (all_specs is cached)
    row_specs, col_specs = all_specs()
    return P.build("pypi_penguins", row_specs + col_specs, seed)


def dist_prompts(seed=0, data_dir=None):
    rows()
    return P.prompts("pypi_penguins", all_specs()[1])


TASKS = [Task("pypi_penguins", "train", SOURCE, instances=instances, dist_prompts=dist_prompts, ours=True)]
