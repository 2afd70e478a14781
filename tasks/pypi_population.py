"""The country of a random person: countries drawn in proportion to population, from the
per-country JSON files inside the countryinfo package (MIT; population estimates of the
mid-2010s, e.g. China 1,367,110,000). Read in place as JSON. A task of this project.

A country is one file of countryinfo/data/ with a positive population, a region and an ISO
alpha-2 code (one per code); its name is the file's "name". Lists: the world, each region
(Africa, Americas, Asia, Europe, Oceania) and each subregion with >= MIN_COUNTRIES countries.
Per list, two processes, both i.i.d. in proportion to population:
  all        every country of the list
  top10      the 10 most populous (ties by name), renormalized (lists of more than 10)
The exact predictive is common.list_bayes over the task's processes. Distribution prompts: every
top10 process, and the `all` process of lists of at most MAX_PROMPT countries.

Split: pypi_population (train) and pypi_population_heldout (val: the HELDOUT subregions, whose
lists never appear in training; their countries do, inside their regions and the world).
"""
import json
from functools import lru_cache
from pathlib import Path

from tasks import Task
from tasks import _pypi as P
from tasks import common

SOURCE = "pypi:countryinfo https://pypi.org/project/countryinfo/"
MIN_COUNTRIES = 5
MAX_PROMPT = 60
HELDOUT = ("Central Asia", "Eastern Asia", "Melanesia", "Northern Africa", "Western Europe")


def root():
    return P.package_dir("countryinfo", "countryinfo", "pypi_population") / "data"


@lru_cache(maxsize=None)
def countries(path: str) -> list[dict]:
    """[{name, population, region, subregion}] of the countries (see the docstring), by code."""
    by_code = {}
    for f in sorted(Path(path).glob("*.json")):
        try:
            c = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e})") from None
        code = (c.get("ISO") or {}).get("alpha2")
        if code and (c.get("population") or 0) > 0 and c.get("region") and code not in by_code:
            by_code[code] = {k: c.get(k) for k in ("name", "population", "region", "subregion")}
    return [by_code[k] for k in sorted(by_code)]


def list_specs(key: str, where: str, members: list[dict]) -> list:
    w = P.normalized({c["name"]: c["population"] for c in members})
    out = [
        (f"{key}/all", [f"The country of a person chosen at random from everyone living in {where}.",
                        f"Countries of {where}, drawn with replacement in proportion to population."],
         common.with_probs(w))]
    if len(w) <= 10:  # the top 10 would be the whole list
        return out
    return out + [
        (f"{key}/top10", [f"The country of a person chosen at random from the 10 most populous countries "
                          f"of {where}.",
                          f"One of the 10 most populous countries of {where}, drawn in proportion to "
                          f"population."],
         common.with_probs(P.top(w, 10))),
    ]


@lru_cache(maxsize=None)
def all_specs() -> tuple[list, list]:
    cs = countries(str(root()))
    train = list_specs("world", "the world", cs)
    for region in sorted({c["region"] for c in cs}):
        where = "the Americas" if region == "Americas" else region
        train += list_specs(f"region/{region}", where, [c for c in cs if c["region"] == region])
    heldout = []
    for sub in sorted({c["subregion"] for c in cs if c["subregion"]}):
        members = [c for c in cs if c["subregion"] == sub]
        if len(members) >= MIN_COUNTRIES:
            (heldout if sub in HELDOUT else train).extend(list_specs(f"subregion/{sub}", sub, members))
    return train, heldout




def task(name, split, which):
    def keep(spec):  # every top-10 list, and the short full lists
        return spec[0].endswith("/top10") or len(spec[2][1]) <= MAX_PROMPT
    return Task(name, split, SOURCE, ours=True,
                **P.loaders(name, lambda task: root(), lambda: all_specs()[which], keep))


TASKS = [task("pypi_population", "train", 0), task("pypi_population_heldout", "val", 1)]
