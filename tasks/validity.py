"""Validity lists for the diversity eval (split "val"): a model samples a list item 100 times
and we count valid / unique outputs. Descriptions, the 3 example outputs and max_new_tokens are
the reference's. Outputs are stripped before checking.

  color_normal_ex, color_interesting_ex  meodai color names (31,914), case-insensitive
  car_brand        a make in us-car-models-data 1992-2026 (66), case-insensitive
  car_make_model   some (make, model) row with both as substrings, case-insensitive (loose,
                   as in the reference; no finite size)
  claude_gerunds   column 5 (present participle) of en-verbs.txt, case-insensitive; the 18
                   ";;;" licence lines are skipped (the reference skipped 19, losing "convoluting")
  element_symbols  exact, case-sensitive symbol (118)
  element_names    case-insensitive name (118), also Aluminium, Sulphur and Caesium

Each Task.diversity is a factory (data_dir=None) -> DiversityTask, so the registry loads no file
until a list is used and a missing file raises MissingData.
"""
import csv
import functools
from pathlib import Path

from tasks import DiversityTask, Download, Task
from tasks import common

COLORS_URL = "https://github.com/meodai/color-names"
CARS_URL = "https://github.com/abhionlyone/us-car-models-data"
VERBS_URL = "https://github.com/gutfeeling/word_forms"
ELEMENTS_URL = "https://github.com/andrejewski/periodic-table"
COLORS = ("color-names/colornames.csv",)
CARS = tuple(f"us-car-models-data/{y}.csv" for y in range(1992, 2027))
VERBS = ("word_forms/en-verbs.txt",)
ELEMENTS = ("periodic-table/data.csv",)
SPELLINGS = {"aluminum": "aluminium", "sulfur": "sulphur", "cesium": "caesium"}


@functools.lru_cache(maxsize=4)
def colors(root: str) -> frozenset:
    with open(f"{root}/{COLORS[0]}", newline="", encoding="utf-8") as f:
        return frozenset(x["name"].strip().lower() for x in csv.DictReader(f))


@functools.lru_cache(maxsize=4)
def cars(root: str) -> dict[str, frozenset]:
    """{make: {models}}, lowercase, over every year file present."""
    out = {}
    for path in sorted(Path(root, "us-car-models-data").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for x in csv.DictReader(f):
                out.setdefault(x["make"].strip().lower(), set()).add(x["model"].strip().lower())
    return {m: frozenset(v) for m, v in out.items()}


@functools.lru_cache(maxsize=4)
def gerunds(root: str) -> frozenset:
    with open(f"{root}/{VERBS[0]}", encoding="utf-8") as f:
        rows = [line.split(",") for line in f.read().splitlines()
                if line.strip() and not line.startswith(";;;")]
    return frozenset(r[5].strip().lower() for r in rows if len(r) > 5 and r[5].strip())


@functools.lru_cache(maxsize=4)
def elements(root: str) -> list[tuple[str, str]]:
    with open(f"{root}/{ELEMENTS[0]}", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = [h.strip() for h in rows[0]]  # header and values carry leading spaces
    i, j = head.index("symbol"), head.index("name")
    return [(r[i].strip(), r[j].strip()) for r in rows[1:] if r]


def _color(name, examples):
    def make(data_dir=None):
        valid = colors(str(common.root(data_dir, name, COLORS, COLORS_URL)))
        return DiversityTask(name, "Generate a color name.", examples,
                             lambda s: s.strip().lower() in valid, 8, len(valid))
    return Task(name, "val", COLORS_URL, diversity=make, files=COLORS, checked="real",
                download=Download(urls={COLORS[0]: "https://raw.githubusercontent.com/meodai/"
                                                   "color-names/HEAD/src/colornames.csv"}))


def car_brand(data_dir=None):
    makes = cars(str(common.root(data_dir, "car_brand", CARS, CARS_URL)))
    return DiversityTask("car_brand", "Car brand.", ["Acura", "Ford", "Tesla"],
                         lambda s: s.strip().lower() in makes, 8, len(makes))


def car_make_model(data_dir=None):
    table = cars(str(common.root(data_dir, "car_make_model", CARS, CARS_URL)))

    def valid(s):
        s = s.strip().lower()
        return any(make in s and any(model in s for model in models)
                   for make, models in table.items())
    return DiversityTask("car_make_model", "Car make and model.",
                         ["Acura Integra", "Ford Mustang", "Tesla Model 3"], valid, 16, None)


def claude_gerunds(data_dir=None):
    valid = gerunds(str(common.root(data_dir, "claude_gerunds", VERBS, VERBS_URL)))
    return DiversityTask("claude_gerunds", "Generate an English gerund ending in -ing.",
                         ["Schlepping", "Hoisting", "Thinking"],
                         lambda s: s.strip().lower() in valid, 4, len(valid))


def element_symbols(data_dir=None):
    valid = frozenset(s for s, _ in elements(str(common.root(data_dir, "element_symbols",
                                                             ELEMENTS, ELEMENTS_URL))))
    return DiversityTask("element_symbols", "Chemical element symbol", ["Sb", "He", "W"],
                         lambda s: s.strip() in valid, 5, len(valid))


def element_names(data_dir=None):
    names = {n.lower() for _, n in elements(str(common.root(data_dir, "element_names",
                                                            ELEMENTS, ELEMENTS_URL)))}
    valid = frozenset(names | {SPELLINGS[n] for n in names if n in SPELLINGS})
    return DiversityTask("element_names", "Chemical element name",
                         ["Niobium", "Antimony", "Iodine"],
                         lambda s: s.strip().lower() in valid, 15, len(valid))


TASKS = [
    _color("color_normal_ex", ["Green", "Red", "White"]),
    _color("color_interesting_ex", ["Otterly Brown", "Petal Pink", "Cherry"]),
    Task("car_brand", "val", CARS_URL, diversity=car_brand, files=CARS, checked="real",
         download=Download(urls={f: "https://raw.githubusercontent.com/abhionlyone/us-car-models-"
                                    "data/HEAD/" + f.split("/")[1] for f in CARS})),
    Task("car_make_model", "val", CARS_URL, diversity=car_make_model, files=CARS, checked="real",
         download=Download(urls={f: "https://raw.githubusercontent.com/abhionlyone/us-car-models-"
                                    "data/HEAD/" + f.split("/")[1] for f in CARS})),
    Task("claude_gerunds", "val", VERBS_URL, diversity=claude_gerunds, files=VERBS, checked="real",
         download=Download(urls={VERBS[0]: "https://raw.githubusercontent.com/gutfeeling/"
                                           "word_forms/HEAD/word_forms/en-verbs.txt"})),
    Task("element_symbols", "val", ELEMENTS_URL, diversity=element_symbols, files=ELEMENTS,
         checked="real", download=Download(urls={ELEMENTS[0]: "https://raw.githubusercontent.com/"
                                                              "andrejewski/periodic-table/HEAD/"
                                                              "data.csv"})),
    Task("element_names", "val", ELEMENTS_URL, diversity=element_names, files=ELEMENTS,
         checked="real", download=Download(urls={ELEMENTS[0]: "https://raw.githubusercontent.com/"
                                                              "andrejewski/periodic-table/HEAD/"
                                                              "data.csv"})),
]
