"""Members of a named category, from lists that ship inside pip packages (pycountry, Faker):
no download, no data directory. Tasks of this project, not of the reference suite.

One instance = one category list in a uniformly random order (draws without replacement; the
first N_DRAWS kept), shown with the list's description variants in the style of tasks/lists.py:
the bare title ("Provinces of Canada"), "Name a province of Canada." and the title with the
sampling rule. The exact predictive is common.list_bayes over the task's lists: with a
description, uniform over the members not shown yet; without, the mixture over the lists.

pypi_categories (train):
  subdivisions   pycountry: the ISO 3166-2 subdivisions of one type in one country ("Provinces
                 of Canada", "Prefectures of Japan"), every (country, type) with >= 5 names.
                 A name's bracketed alternate forms are dropped ("Girona [Gerona]" -> "Girona").
  continents     Faker's country table: the countries of a continent, and their capitals.
  cities         Faker's per-locale city lists ("Cities in Italy"; the language is named when
                 several locales list one country's cities: "Cities in India (Hindi)").
  countries      Faker's per-language country names ("Country names in German").
  colours        Faker's per-language colour names ("Colour names in Danish").
  banks          Faker's per-country bank lists ("Banks in Brazil").
pypi_categories_heldout (val): whole categories never trained on:
  jobs           Faker's per-language job titles ("Job titles in French").
  currencies     pycountry's ISO 4217 currency names ("Currencies") and Faker's per-language
                 currency names ("Currency names in German").
  languages      pycountry's ISO 639-1 languages ("Languages").
Distribution prompts: up to N_PROMPTS lists of at most MAX_PROMPT members, evenly spaced; the
prompt is the bare title, the target the list's first draw (each member's share of the list).
Diversity (val): "a bare description of a category yields members of it", for the held-out
categories: the project's demo prompts "Board games", "Card games" and "Fruits" (valid sets:
tasks/lists/*.txt, the project's own lists), "Languages" and "Currencies" (valid: any ISO name
in pycountry, or a currency name in Faker's English list). A generation is valid when its
stripped, case-folded text is a case-folded member.

Faker lists are taken per locale only where the locale's own module defines them (an inherited
list is the parent's, not the locale's), each item stripped of surrounding whitespace. Where
several locales of one language define a list, the language-only locale ("de") or the
language's home locale ("de_DE") is kept, else the first alphabetically. A list shorter than MIN_ITEMS is left out. The content follows the installed
package versions (the tests recompute everything from the packages' raw data).
"""
import collections
from functools import lru_cache

from tasks import DiversityTask, Task
from tasks import _pypi as P
from tasks import common
from tasks.lists import load as project_list

PYCOUNTRY = "pypi:pycountry https://pypi.org/project/pycountry/"
FAKER = "pypi:faker https://pypi.org/project/Faker/"
MIN_ITEMS = 5
MAX_PROMPT = 60  # distribution prompts only for lists this short (the eval scores every member) ...
N_PROMPTS = 40   # ... and at most this many, evenly spaced over the task's lists


def clean(name: str) -> str:
    return name.split(" [")[0].strip()


def spec(group, title, one, items):
    return (group, P.uniform_descriptions(title, one), common.without(P.stripped(items)))


@lru_cache(maxsize=None)
def subdivisions(task) -> list:
    pycountry = P.need("pycountry", "pycountry", task)
    by = collections.defaultdict(list)
    for s in pycountry.subdivisions:
        by[(s.country_code, s.type)].append(clean(s.name))
    out = []
    for (cc, kind), names in sorted(by.items()):
        country = P.country_name(cc)
        if len(P.stripped(names)) < MIN_ITEMS or "," in kind or country is None:
            continue
        out.append(spec(f"subdivisions/{cc}/{kind}", f"{P.plural(kind)} of {country}",
                        f"{P.a(kind.lower())} of {country}", names))
    return out


def one_per_language(lists: dict) -> dict:
    """{language: (locale, list)}: one Faker list per language (see the module docstring)."""
    by = collections.defaultdict(list)
    for loc, value in lists.items():
        lang = P.locale_place(loc)[1] if loc else "English"  # Faker's default module is English
        if lang is not None:
            by[lang].append(loc)
    out = {}
    for lang, locs in sorted(by.items()):
        home = [l for l in locs if "_" not in l] + [l for l in locs if l.split("_") == [l[:2], l[:2].upper()]]
        loc = (home or sorted(locs))[0]
        out[lang] = (loc, lists[loc])
    return out


def per_language(task, provider, attr, title, one) -> list:
    P.need("faker", "faker", task)
    out = []
    for lang, (loc, value) in one_per_language(P.faker_lists(provider, attr)).items():
        items = [v[1] if isinstance(v, tuple) else v for v in value]  # currencies: (code, name)
        if len(P.stripped(items)) >= MIN_ITEMS:
            out.append(spec(f"{attr}/{loc or 'default'}", title.format(lang=lang), one.format(lang=lang), items))
    return out


def per_country(task, provider, attrs, title, one) -> list:
    """Faker lists per locale with a country; the language is named when a country has several."""
    P.need("faker", "faker", task)
    lists = {loc: v for attr in attrs for loc, v in P.faker_lists(provider, attr).items()}
    places = {loc: P.locale_place(loc) for loc in lists}
    places = {loc: p for loc, p in places.items() if p[0] is not None}
    n = collections.Counter(c for c, _ in places.values())
    out = []
    for loc, (country, lang) in sorted(places.items()):
        where = country if n[country] == 1 else f"{country} ({lang})"
        if len(P.stripped(lists[loc])) >= MIN_ITEMS:
            out.append(spec(f"{attrs[0]}/{loc}", title.format(where=where), one.format(where=where), lists[loc]))
    return out


@lru_cache(maxsize=None)
def continents(task) -> list:
    P.need("faker", "faker", task)
    from faker.providers.date_time import Provider
    by = collections.defaultdict(list)
    for c in Provider.countries:
        by[c.continent].append(c)
    out = []
    for cont, cs in sorted(by.items()):
        out.append(spec(f"continent/{cont}/countries", f"Countries in {cont}", f"a country in {cont}",
                        [c.name for c in cs]))
        out.append(spec(f"continent/{cont}/capitals", f"Capital cities in {cont}",
                        f"the capital city of a country in {cont}", [c.capital for c in cs]))
    return out


@lru_cache(maxsize=None)
def train_specs() -> list:
    t = "pypi_categories"
    return (subdivisions(t) + continents(t)
            + per_country(t, "address", ("cities", "city_names"), "Cities in {where}", "a city in {where}")
            + per_language(t, "address", "countries", "Country names in {lang}", "a country, in {lang}")
            + per_language(t, "color", "all_colors", "Colour names in {lang}", "a colour, in {lang}")
            + per_country(t, "bank", ("banks",), "Banks in {where}", "a bank in {where}"))


def currency_names():
    pycountry = P.need("pycountry", "pycountry", "pypi_categories_heldout")
    return [c.name for c in pycountry.currencies]


def language_names():
    """ISO 639-1 languages (those with a two-letter code), as pycountry names them, without
    parenthetical qualifiers ("Modern Greek (1453-)" -> "Modern Greek")."""
    pycountry = P.need("pycountry", "pycountry", "pypi_categories_heldout")
    return [lang.name.split(" (")[0] for lang in pycountry.languages if hasattr(lang, "alpha_2")]


@lru_cache(maxsize=None)
def heldout_specs() -> list:
    t = "pypi_categories_heldout"
    return (per_language(t, "job", "jobs", "Job titles in {lang}", "a job title, in {lang}")
            + [spec("currencies/iso", "Currencies", "a currency", currency_names())]
            + per_language(t, "currency", "currencies", "Currency names in {lang}", "a currency, in {lang}")
            + [spec("languages/iso", "Languages", "a language", language_names())])


def need(task):
    P.need("faker", "faker", task)
    P.need("pycountry", "pycountry", task)


def loaders(task, specs):
    return P.loaders(task, need, specs, keep=lambda s: s[2][2] <= MAX_PROMPT, limit=N_PROMPTS)


# --- diversity: does a bare category description yield members? ---------------------------

def member(items):
    folded = frozenset(s.casefold() for s in items)
    return lambda s: s.strip().casefold() in folded


def from_project_list(name, description, examples):
    items = project_list(name)
    return DiversityTask(f"heldout_{name}", description, examples, member(items), 16,
                         len({s.casefold() for s in items}))


def all_language_names():
    """Every name pycountry gives an ISO 639-3 language, with and without its parenthetical
    ("Modern Greek (1453-)" and "Modern Greek"), plus common names."""
    pycountry = P.need("pycountry", "pycountry", "heldout_languages")
    out = set()
    for lang in pycountry.languages:
        for n in (lang.name, getattr(lang, "common_name", None)):
            if n:
                out |= {n, n.split(" (")[0]}
    return out


def languages_diversity(data_dir=None):
    names = all_language_names()
    return DiversityTask("heldout_languages", "Languages", ["Swahili", "Portuguese", "Korean"],
                         member(names), 12, len({n.casefold() for n in names}))


def currencies_diversity(data_dir=None):
    P.need("faker", "faker", "heldout_currencies")
    from faker.providers.currency import Provider
    names = set(currency_names()) | {name for _, name in Provider.currencies}
    return DiversityTask("heldout_currencies", "Currencies", ["Swiss Franc", "Yen", "Mexican Peso"],
                         member(names), 12, len({n.casefold() for n in names}))


DIVERSITY = [
    from_project_list("board_games", "Board games", ["Scrabble", "Ticket to Ride", "Backgammon"]),
    from_project_list("card_games", "Card games", ["Gin Rummy", "Solitaire", "Blackjack"]),
    from_project_list("fruits", "Fruits", ["Mango", "Pear", "Blueberry"]),
]

TASKS = [
    Task("pypi_categories", "train", f"{PYCOUNTRY} + {FAKER}", ours=True,
         **loaders("pypi_categories", train_specs)),
    Task("pypi_categories_heldout", "val", f"{PYCOUNTRY} + {FAKER}", ours=True,
         **loaders("pypi_categories_heldout", heldout_specs)),
] + [Task(d.name, "val", "synthetic", diversity=d, ours=True) for d in DIVERSITY] + [
    Task("heldout_languages", "val", PYCOUNTRY, diversity=languages_diversity, ours=True),
    Task("heldout_currencies", "val", f"{PYCOUNTRY} + {FAKER}", diversity=currencies_diversity, ours=True),
]
