"""Helpers of the tasks whose data ships inside a pip package (tasks/pypi_*.py): importing the
package with a one-line install hint, naming countries and languages, and turning exact
list processes into instances and distribution prompts.

A spec is (group, descriptions, process): `group` names the list (unique within a task), the
descriptions are its variants (none shared with another spec of the same task, so a
description names exactly one process), and the process is common.without(items) (a uniformly
random order of a multiset: draws without replacement) or common.with_probs({item: p}) (i.i.d.
draws; p sums to 1). Every instance of a task shares one exact bayes: common.list_bayes over
the task's specs.
"""
import importlib
import importlib.util
from functools import lru_cache
from pathlib import Path

from tasks import DistPrompt, Example, Instance, MissingData, common

N_DRAWS = 256  # draws an instance stores: far more short outputs than fit in 1024 tokens


def need(module: str, pip: str, task: str):
    """The imported module, else MissingData with the install line."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingData(f"task {task!r} needs the Python package {pip}: "
                          f"pip install {pip}") from None


def package_dir(module: str, pip: str, task: str) -> Path:
    """Where a package is installed, found WITHOUT importing it (palmerpenguins' __init__
    imports pandas; its CSV does not need it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingData(f"task {task!r} needs the Python package {pip}: pip install {pip}")
    return Path(list(spec.submodule_search_locations)[0])


# --- names of places and languages (pycountry) ---------------------------------------------

THE = ("United ", "Republic", "Democratic ", "Federated ", "Holy See", "State of ")
THE_END = ("Islands", "Republic", "Emirates", "Netherlands", "Philippines", "Bahamas",
           "Gambia", "Maldives", "Comoros", "Seychelles", "Territory", "Federation")


def country_name(alpha_2: str, the: bool = True) -> str | None:
    """A readable English name of an ISO 3166 country, or None for an unknown code. pycountry's
    `name` is the ISO list form ("Korea, Republic of"); its common_name ("South Korea") or, for
    an inverted name, its official_name ("Plurinational State of Bolivia") reads better.
    the=True prefixes "the" where English does ("the United Kingdom", "the Philippines")."""
    pycountry = importlib.import_module("pycountry")
    c = pycountry.countries.get(alpha_2=alpha_2)
    if c is None:
        return None
    name = getattr(c, "common_name", None) or c.name
    official = getattr(c, "official_name", None)
    if ", " in name and official and ", " not in official:
        name = official[4:] if official.startswith("the ") else official
    elif ", " in name and name.endswith((" of", " of the")):  # "Congo, The Democratic Republic of the"
        place, _, kind = name.partition(", ")
        name = f"{kind[0].upper()}{kind[1:]} {place}".removeprefix("The ")
    if the and (name.startswith(THE) or name.endswith(THE_END)):
        name = "the " + name
    return name


def language_name(code: str) -> str | None:
    """English name of an ISO 639-1/-3 language code ("de" -> "German"), qualifiers dropped
    ("Modern Greek (1453-)" -> "Greek"); None if unknown."""
    pycountry = importlib.import_module("pycountry")
    lang = pycountry.languages.get(alpha_2=code) if len(code) == 2 else pycountry.languages.get(alpha_3=code)
    if lang is None:
        return None
    name = getattr(lang, "common_name", None) or lang.name
    return name.split(" (")[0].removeprefix("Modern ")


def plural(noun: str) -> str:
    """English plural of a category noun, inflecting its head word: "Province" -> "Provinces",
    "County" -> "Counties", "Parish" -> "Parishes", "City with county rights" -> "Cities with
    county rights". A noun that is already plural ("Islands, groups of islands") is kept."""
    words = noun.split(" ")
    head = len(words) - 1
    for i, w in enumerate(words):
        if w in ("with", "of", "in") and i > 0:
            head = i - 1
            break
    w = words[head]
    if w.endswith(",") or (w.endswith("s") and not w.endswith(("ss", "us"))):
        return noun
    if w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        w = w[:-1] + "ies"
    elif w.endswith(("s", "sh", "ch", "x", "z")):
        w += "es"
    else:
        w += "s"
    return " ".join(words[:head] + [w] + words[head + 1:])


# --- specs -> instances and distribution prompts ------------------------------------------

def stripped(items) -> list[str]:
    """Items without surrounding whitespace (Faker has "Valentina "), empty ones dropped."""
    return [s.strip() for s in items if s.strip()]


def stripped_weights(weights: dict) -> dict:
    """{item.strip(): weight}, summing the weights of items equal once stripped; drops items
    that are empty or weigh 0."""
    out = {}
    for k, w in weights.items():
        if k.strip() and w > 0:
            out[k.strip()] = out.get(k.strip(), 0) + w
    return out


def normalized(weights: dict) -> dict:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def top(weights: dict, k: int) -> dict:
    """The k heaviest items (ties broken by the item), renormalized."""
    keep = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return normalized(dict(keep))


def draws(proc, r, n: int = N_DRAWS) -> list[str]:
    """n draws of a process (fewer when a list without replacement is shorter)."""
    kind, table, _ = proc
    if kind == "without":
        items = list(table.elements())
        return [items[j] for j in r.permutation(len(items))[:n]]
    keys = list(table)
    p = [table[k] for k in keys]
    total = sum(p)
    return [keys[j] for j in r.choice(len(keys), size=n, p=[x / total for x in p])]


def first_draw(proc) -> dict[str, float]:
    """The exact distribution of a process's first draw."""
    kind, table, total = proc
    if kind == "with":
        return dict(table)
    return {k: c / total for k, c in table.items()}


def build(task: str, specs: list, seed: int) -> list[Instance]:
    bayes = common.list_bayes([p for _, _, p in specs], [d for _, d, _ in specs])
    return [Instance(task, list(descs), [Example(x) for x in draws(proc, common.rng(seed, task, group))],
                     group=group, bayes=bayes)
            for group, descs, proc in specs]


def loaders(task: str, check, specs, keep=lambda spec: True, limit: int | None = None):
    """A task's instances and dist_prompts functions, as Task keyword arguments: check(task)
    first (MissingData when its package is absent), then build from specs() (the prompts: from
    the specs `keep` accepts)."""
    def instances(seed=0, data_dir=None):
        check(task)
        return build(task, specs(), seed)

    def dist_prompts(seed=0, data_dir=None):
        check(task)
        return prompts(task, [s for s in specs() if keep(s)], limit)
    return {"instances": instances, "dist_prompts": dist_prompts}


def prompts(task: str, specs: list, limit: int | None = None) -> list[DistPrompt]:
    """One prompt per spec: its first description, target = its first draw's distribution.
    With a limit, only that many specs, evenly spaced (the eval scores every candidate)."""
    if limit is not None and len(specs) > limit:
        specs = [specs[i * len(specs) // limit] for i in range(limit)]
    return [DistPrompt(task, [{"role": "description", "content": descs[0]}], first_draw(proc))
            for _, descs, proc in specs]


def a(noun: str) -> str:
    """The noun with its indefinite article ("an administrative region")."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def uniform_descriptions(title: str, one: str) -> list[str]:
    """Variants of a list drawn uniformly without replacement, in the style of tasks/lists.py."""
    return [title, f"Name {one}.", f"{title}, sampled uniformly at random without replacement."]



# --- Faker's per-locale lists ----------------------------------------------------------------

@lru_cache(maxsize=None)
def faker_lists(provider: str, attr: str) -> dict:
    """{locale: value} of a Faker provider attribute, for each locale whose own module defines
    it ("" = the provider's default module). Inherited values are skipped: a locale inheriting
    another's list would repeat that list under another country's name. Call need("faker", ...)
    first."""
    import pkgutil
    base = importlib.import_module(f"faker.providers.{provider}")
    out = {}
    for loc in [""] + sorted(m.name for m in pkgutil.iter_modules(base.__path__)):
        mod = base if not loc else importlib.import_module(f"faker.providers.{provider}.{loc}")
        value = getattr(getattr(mod, "Provider", None), "__dict__", {}).get(attr)
        if isinstance(value, (list, tuple, dict)) and value:
            out[loc] = value
    return out


def weighted(value) -> bool:
    """Faker stores a weighted list as {item: weight} with numeric weights."""
    return isinstance(value, dict) and all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                           for w in value.values())


def locale_place(locale: str) -> tuple[str | None, str | None]:
    """(country, language) of a Faker locale "ll_CC" ("de_AT" -> ("Austria", "German")); either
    is None when pycountry does not know it ("ar_AA": AA is no country; "en": no country)."""
    lang, _, region = locale.partition("_")
    return (country_name(region) if region else None), language_name(lang)
