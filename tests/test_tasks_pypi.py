"""Tasks whose data ships inside pip packages (tasks/pypi_*.py).

Every expected number is recomputed here from the package's raw data (Faker's class attributes,
pycountry's tables, wordfreq's frequency dict, the census and penguin files parsed with other
code), never copied from the loaders' output. A test whose package is absent is skipped.
"""
import csv
import importlib.util
import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import tasks
from tasks import Example, MissingData, common
from tasks import _pypi as P

ROOT = Path(__file__).resolve().parents[1]
faker = pytest.importorskip("faker", reason="pip install faker (tasks/pypi_categories.py, pypi_names.py)")
pycountry = pytest.importorskip("pycountry", reason="pip install pycountry (tasks/pypi_categories.py)")
from tasks import lists as L  # noqa: E402
from tasks import pypi_categories as C  # noqa: E402
from tasks import pypi_names as N  # noqa: E402

HAS = {m: importlib.util.find_spec(m) is not None for m in ("wordfreq", "names", "palmerpenguins", "countryinfo")}
needs = {m: pytest.mark.skipif(not HAS[m], reason=f"pip install {m}") for m in HAS}
MINE = [n for n, t in tasks.TASKS.items() if t.ours and n.startswith(("pypi_", "heldout_"))]
WITH_INSTANCES = [n for n in MINE if tasks.TASKS[n].instances is not None]
_built = {}


def built(name):
    if name not in _built:
        _built[name] = tasks.get(name).instances(seed=0)
    return _built[name]


def available(name):
    module = {"pypi_words": "wordfreq", "pypi_words_heldout": "wordfreq",
              "pypi_census_names": "names", "pypi_penguins": "palmerpenguins",
              "pypi_population": "countryinfo", "pypi_population_heldout": "countryinfo"}.get(name)
    return module is None or HAS[module]


def instance(name, description):
    [x] = [x for x in built(name) if description in x.descriptions]
    return x


def p(x, description, prior, y):
    return math.exp(x.bayes(description, [Example(o) for o in prior], Example(y)))


def prompt(name, description):
    [d] = [d for d in tasks.get(name).dist_prompts() if d.messages[0]["content"] == description]
    return d.target


def close(a: dict, b: dict, tol=1e-12):
    assert set(a) == set(b)
    assert all(abs(a[k] - b[k]) <= tol for k in a), max(abs(a[k] - b[k]) for k in a)


# --- registry, splits, descriptions, determinism --------------------------------------------

def test_registry_and_splits():
    split = {n: tasks.TASKS[n].split for n in MINE}
    for n in ("pypi_categories", "pypi_names", "pypi_census_names", "pypi_words", "pypi_penguins", "pypi_population"):
        assert split[n] == "train"
    for n in ("pypi_categories_heldout", "pypi_names_heldout", "pypi_words_heldout", "pypi_population_heldout",
              "heldout_board_games",
              "heldout_card_games", "heldout_fruits", "heldout_languages", "heldout_currencies"):
        assert split[n] == "val"
    for n in MINE:
        t = tasks.TASKS[n]
        assert t.ours and (t.source.startswith("pypi:") or t.source == "synthetic"), n


@pytest.mark.parametrize("name", WITH_INSTANCES)
def test_instances_well_formed(name):
    if not available(name):
        pytest.skip("package absent")
    xs = built(name)
    assert len(xs) >= 5
    groups = [x.group for x in xs]
    assert len(groups) == len(set(groups))
    seen = {}
    for x in xs:
        assert len(x.descriptions) >= 2 and all(d.strip() == d and d for d in x.descriptions)
        for d in x.descriptions:  # a description names exactly one process of its task
            assert seen.setdefault(d, x.group) == x.group, d
        assert 1 <= len(x.examples) <= P.N_DRAWS
        assert all(e.input is None and e.output and e.output.strip() == e.output for e in x.examples)
        assert all(len(e.output) <= 200 for e in x.examples)  # a few tokens (a JSON row: ~60)
        assert x.bayes is xs[0].bayes


@pytest.mark.parametrize("name", WITH_INSTANCES)
def test_deterministic_given_seed(name):
    if not available(name):
        pytest.skip("package absent")
    a, b = built(name), tasks.get(name).instances(seed=0)
    assert [(x.descriptions, x.examples, x.group) for x in a] == [(x.descriptions, x.examples, x.group) for x in b]
    c = tasks.get(name).instances(seed=1)
    assert [x.group for x in a] == [x.group for x in c]
    assert [x.examples for x in a] != [x.examples for x in c]


def test_dist_prompt_targets_sum_to_one():
    for name in MINE:
        t = tasks.TASKS[name]
        if t.dist_prompts is None or not available(name):
            continue
        ps = t.dist_prompts()
        assert ps, name
        for d in ps:
            assert abs(sum(d.target.values()) - 1) < 1e-9 and min(d.target.values()) > 0, name
            assert d.messages[0]["role"] == "description"


def test_every_example_has_positive_probability():
    """Each stored draw is possible under its own process: bayes given the description and the
    draws before it is > 0 at every position (checked on the first 20 draws of each instance)."""
    for name in WITH_INSTANCES:
        if not available(name):
            continue
        for x in built(name)[::7]:
            outs = [e.output for e in x.examples[:20]]
            for k in range(len(outs)):
                assert p(x, x.descriptions[0], outs[:k], outs[k]) > 0, (name, x.group, k)


# --- bayes: hand computations ----------------------------------------------------------------

def test_bayes_hand_computation_small_specs():
    specs = [("a", ["A"], common.without(["x", "y", "y"])), ("b", ["B", "B2"], common.with_probs({"x": .25, "y": .75}))]
    xa, xb = P.build("t", specs, 0)
    assert sorted(e.output for e in xa.examples) == ["x", "y", "y"]
    assert len(xb.examples) == P.N_DRAWS and {e.output for e in xb.examples} <= {"x", "y"}
    assert p(xa, "A", ["y"], "y") == pytest.approx(1 / 2)
    assert p(xa, "A", ["y", "y"], "x") == pytest.approx(1)
    assert p(xa, "A", ["x"], "x") == 0
    assert p(xb, "B2", ["x", "x"], "x") == pytest.approx(.25)
    # no description: prior 1/2 each; after "x": weights 1/3 (a) and 1/4 (b)
    assert p(xa, None, ["x"], "y") == pytest.approx((1 / 3 * 1 + 1 / 4 * .75) / (1 / 3 + 1 / 4))
    assert p(xa, None, [], "x") == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert p(xa, None, ["x", "x"], "x") == pytest.approx(.25)  # only b can repeat "x"


def test_plural_and_article():
    assert [P.plural(w) for w in ("Province", "County", "Parish", "City with county rights", "Rayon",
                                  "Autonomous community", "Islands", "Emirate")] == [
        "Provinces", "Counties", "Parishes", "Cities with county rights", "Rayons",
        "Autonomous communities", "Islands", "Emirates"]
    assert (P.a("emirate"), P.a("state")) == ("an emirate", "a state")
    assert [P.country_name(c) for c in ("US", "KR", "CD", "DE", "VG")] == [
        "the United States", "South Korea", "the Democratic Republic of the Congo", "Germany",
        "the British Virgin Islands"]


# --- exact targets against the packages' raw data --------------------------------------------

def test_subdivisions_equal_pycountry():
    want = [s.name for s in pycountry.subdivisions.get(country_code="CA") if s.type == "Province"]
    x = instance("pypi_categories", "Provinces of Canada")
    assert Counter(e.output for e in x.examples) == Counter(want)
    n = len(want)
    assert p(x, "Provinces of Canada", [], want[0]) == pytest.approx(1 / n)
    assert p(x, "Name a province of Canada.", want[:3], want[5]) == pytest.approx(1 / (n - 3))
    assert p(x, "Provinces of Canada", want[:1], want[0]) == 0
    # bracketed alternate names are dropped: Spain's provinces are written "Girona [Gerona]"
    es = instance("pypi_categories", "Provinces of Spain")
    raw = [s.name for s in pycountry.subdivisions.get(country_code="ES") if s.type == "Province"]
    assert Counter(e.output for e in es.examples) == Counter(re.sub(r" \[.*\]$", "", s) for s in raw)


def test_continents_and_cities_equal_faker():
    from faker.providers.address.de_DE import Provider as DE
    from faker.providers.date_time import Provider as DT
    africa = [c.name for c in DT.countries if c.continent == "Africa"]
    x = instance("pypi_categories", "Countries in Africa")
    assert Counter(e.output for e in x.examples) == Counter(africa)
    cities = instance("pypi_categories", "Cities in Germany")
    n = len(DE.cities)
    assert len(cities.examples) == min(n, P.N_DRAWS)
    assert not Counter(e.output for e in cities.examples) - Counter(DE.cities)  # a sub-multiset
    assert p(cities, "Cities in Germany", [DE.cities[0]], DE.cities[1]) == pytest.approx(1 / (n - 1))
    capitals = Counter(c.capital for c in DT.countries if c.continent == "Europe")
    x = instance("pypi_categories", "Capital cities in Europe")
    close({k: p(x, "Capital cities in Europe", [], k) for k in capitals},
          {k: v / sum(capitals.values()) for k, v in capitals.items()})


def test_category_prompts_are_first_draws_of_their_lists():
    ps = tasks.get("pypi_categories").dist_prompts()
    assert 10 <= len(ps) <= C.N_PROMPTS
    for d in ps[::5]:
        desc = d.messages[0]["content"]
        x = instance("pypi_categories", desc)
        assert len(d.target) <= C.MAX_PROMPT
        close(d.target, {k: p(x, desc, [], k) for k in d.target}, 1e-9)
        assert set(d.target) == {e.output for e in x.examples}  # short lists: every member drawn


def test_weighted_names_equal_faker_weights():
    from faker.providers.person.en_US import Provider as US
    w = dict(US.first_names_female)
    total = sum(w.values())
    x = instance("pypi_names", "Female first names in the United States")
    for name in ("Mary", "Jennifer", list(w)[-1]):
        assert p(x, "Female first names in the United States", ["Mary"], name) == pytest.approx(w[name] / total, rel=1e-12)
    top = sorted(w.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    want = {k: v / sum(v for _, v in top) for k, v in top}
    close(prompt("pypi_names", "The 10 most common female first names in the United States, drawn with "
                               "replacement in proportion to how common each is."), want)
    u = instance("pypi_names", "Female first names in the United States, sampled uniformly at random "
                               "without replacement.")
    assert p(u, u.descriptions[0], ["Mary"], "Linda") == pytest.approx(1 / (len(w) - 1))


def test_unweighted_names_are_a_multiset():
    from faker.providers.person.de_DE import Provider as DE
    names = Counter(DE.first_names_female)
    x = instance("pypi_names", "Female first names in Germany")
    assert not isinstance(DE.first_names_female, dict)
    top = names.most_common(1)[0]
    assert p(x, "Female first names in Germany", [], top[0]) == pytest.approx(top[1] / sum(names.values()))


@needs["wordfreq"]
def test_words_equal_wordfreq_frequencies():
    import wordfreq
    freq = {w: f for w, f in wordfreq.get_frequency_dict("en", "small").items()
            if re.search(r"[^\W\d_]", w) and not re.search(r"\d", w)}
    top = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:100]
    want = {w: f / sum(f for _, f in top) for w, f in top}
    close(prompt("pypi_words", "One of the 100 most frequent English words, drawn in proportion to how often it "
                               "is used."), want, 1e-9)
    assert "the" in want and "00" not in want
    x = instance("pypi_words", "English words")
    assert len({e.output for e in x.examples}) < P.N_DRAWS  # with replacement: "the" repeats


@needs["names"]
def test_census_names_equal_the_census_file():
    path = N.census_root() / "dist.male.first"
    rows = [re.match(r"(\S+)\s+([\d.]+)\s", line).groups() for line in path.read_text().splitlines()]
    assert len(rows) == 1219
    top = {n.title(): float(v) for n, v in rows[:10]}
    close(prompt("pypi_census_names", "One of the 10 most common male first names in the 1990 U.S. Census, drawn "
                                      "in proportion to how common it is."),
          {k: v / sum(top.values()) for k, v in top.items()})
    assert top["James"] == 3.318


@needs["palmerpenguins"]
def test_penguins_equal_the_csv():
    path = P.package_dir("palmerpenguins", "palmerpenguins", "t") / "data" / "penguins.csv"
    with open(path, newline="") as f:
        raw = list(csv.DictReader(f))
    assert len(raw) == 344
    species = Counter(r["species"] for r in raw)
    close(prompt("pypi_penguins", "The species of a penguin from the Palmer penguins data, each penguin drawn "
                                  "at most once."), {k: v / 344 for k, v in species.items()})
    gentoo_sex = Counter(r["sex"] for r in raw if r["species"] == "Gentoo" and r["sex"] != "NA")
    close(prompt("pypi_penguins", "The sex of a penguin from the Palmer penguins data (Gentoo penguins), each "
                                  "penguin drawn at most once."),
          {k: v / sum(gentoo_sex.values()) for k, v in gentoo_sex.items()})
    x = instance("pypi_penguins", "Palmer penguins (Chinstrap penguins on Dream island): one penguin per line "
                                  "as a JSON row, drawn at random without replacement.")
    chin = [r for r in raw if r["species"] == "Chinstrap"]
    assert len(x.examples) == len(chin) == 68
    as_text = lambda v: "NA" if v is None else str(v)  # noqa: E731
    got = Counter(tuple((k, as_text(v)) for k, v in json.loads(e.output).items()) for e in x.examples)
    assert got == Counter(tuple(r.items()) for r in chin)  # same keys, order and written values
    assert p(x, x.descriptions[0], [], x.examples[0].output) == pytest.approx(
        Counter(e.output for e in x.examples)[x.examples[0].output] / 68)


@needs["countryinfo"]
def test_population_equals_countryinfo():
    import countryinfo
    west = {c.name(): c.population() for c in countryinfo.filter_countries(subregion="Western Europe")
            if (c.population() or 0) > 0}
    assert west["Germany"] == 80783000
    close(prompt("pypi_population_heldout", "The country of a person chosen at random from everyone living in "
                                            "Western Europe."), {k: v / sum(west.values()) for k, v in west.items()})
    world = sorted(((c.population(), c.name()) for c in countryinfo.all_countries()
                    if (c.population() or 0) > 0 and c.region()), reverse=True)[:10]
    close(prompt("pypi_population", "The country of a person chosen at random from the 10 most populous "
                                    "countries of the world."), {n: v / sum(v for v, _ in world) for v, n in world})
    x = instance("pypi_population", "Countries of the Americas, drawn with replacement in proportion to population.")
    americas = {c.name(): c.population() for c in countryinfo.filter_countries(region="Americas") if (c.population() or 0) > 0}
    assert p(x, x.descriptions[1], ["Brazil"], "Canada") == pytest.approx(americas["Canada"] / sum(americas.values()))


@needs["countryinfo"]
def test_heldout_subregions_never_in_training():
    from tasks import pypi_population as Q
    for x in built("pypi_population"):
        assert not any(re.search(rf"\b{s}\b", d) for s in Q.HELDOUT for d in x.descriptions), x.descriptions
    assert {x.group.split("/")[1] for x in built("pypi_population_heldout")} == set(Q.HELDOUT)


@needs["palmerpenguins"]
def test_penguins_malformed_csv(tmp_path):
    from tasks import pypi_penguins as G
    f = tmp_path / "penguins.csv"
    f.write_text("species,island,bill\nAdelie,Dream,1\n")
    with pytest.raises(ValueError, match="penguins.csv: expected the columns"):
        G.load(str(f))


# --- held-out categories ---------------------------------------------------------------------

HELD_WORDS = re.compile(r"\b(jobs?|job titles?|currenc(y|ies)|languages?|board games?|card games?|fruits?)\b", re.I)


def test_heldout_categories_never_in_training():
    train = built("pypi_categories")
    for x in train:
        assert not any(HELD_WORDS.search(d) for d in x.descriptions), x.descriptions
    held = built("pypi_categories_heldout")
    assert {x.group.split("/")[0] for x in held} == {"jobs", "currencies", "languages"}
    assert {x.group.split("/")[0] for x in train}.isdisjoint({"jobs", "currencies", "languages"})
    # whole lists, not just names: no held-out list is (mostly) a training list
    train_items = {e.output for x in train for e in x.examples}
    for x in held:
        outs = {e.output for e in x.examples}
        assert len(outs & train_items) <= len(outs) // 4, x.group


def test_demo_categories_are_diversity_tasks_and_untrained():
    demo = {"Board games": "heldout_board_games", "Card games": "heldout_card_games", "Fruits": "heldout_fruits"}
    for desc, name in demo.items():
        d = tasks.get(name).diversity
        assert d.description == desc and len(d.examples) == 3 and all(d.valid(e) for e in d.examples)
    for name in WITH_INSTANCES:
        if tasks.TASKS[name].split == "train" and available(name):
            for x in built(name):
                assert not any(HELD_WORDS.search(d) for d in x.descriptions), (name, x.descriptions)


@pytest.mark.xfail("fruits" in L.TRAIN, strict=True,
                   reason="tasks/lists.py trains the 'fruits' list; the demo category Fruits must be held out")
def test_project_lists_do_not_train_heldout_categories():
    held = {"board_games", "card_games", "fruits"}
    assert held.isdisjoint(L.TRAIN)


def test_heldout_name_countries_never_in_training():
    held = [P.country_name(c) for c in N.HELDOUT]
    for x in built("pypi_names"):
        assert x.group.split("/")[1].partition("_")[2] not in N.HELDOUT
        assert not any(c in d for c in held for d in x.descriptions), x.descriptions
    assert {x.group.split("/")[1].partition("_")[2] for x in built("pypi_names_heldout")} == set(N.HELDOUT)


@needs["wordfreq"]
def test_heldout_languages_never_in_training():
    from tasks import pypi_words as W
    held = [P.language_name(c) for c in W.HELDOUT]
    for x in built("pypi_words"):
        assert x.group.split("/")[0] not in W.HELDOUT
        assert not any(re.search(rf"\b{lang}\b", d) for lang in held for d in x.descriptions)
    assert {x.group.split("/")[0] for x in built("pypi_words_heldout")} == set(W.HELDOUT)


# --- diversity validity -----------------------------------------------------------------------

def test_diversity_validity():
    board, card, fruit = (tasks.get(n).diversity for n in ("heldout_board_games", "heldout_card_games", "heldout_fruits"))
    assert board.valid("Chess") and board.valid("  monopoly ") and not board.valid("Poker") and not board.valid("")
    assert card.valid("Poker") and card.valid("blackjack") and not card.valid("Chess")
    assert fruit.valid("Banana") and fruit.valid("apple\n") and not fruit.valid("Carrot") and not fruit.valid("Apple pie")
    raw = (ROOT / "tasks" / "lists" / "board_games.txt").read_text(encoding="utf-8").split("\n")
    assert board.size == len({s.strip().casefold() for s in raw if s.strip()})
    lang = tasks.get("heldout_languages").diversity()
    assert lang.valid("English") and lang.valid("swahili") and lang.valid("Modern Greek") and not lang.valid("Klingonese")
    assert not lang.valid("Python")
    cur = tasks.get("heldout_currencies").diversity()
    assert cur.valid("Euro") and cur.valid("Pound Sterling") and cur.valid("japanese yen") and not cur.valid("Doubloon")
    assert all(lang.valid(e) for e in lang.examples) and all(cur.valid(e) for e in cur.examples)


# --- missing packages, build time --------------------------------------------------------------

def test_missing_package_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "wordfreq", None)  # import wordfreq -> ImportError
    with pytest.raises(MissingData, match=r"pip install wordfreq$"):
        tasks.get("pypi_words").instances()
    monkeypatch.setitem(sys.modules, "faker", None)
    with pytest.raises(MissingData, match=r"pip install faker$"):
        tasks.get("pypi_names").instances()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingData, match=r"pip install --no-deps palmerpenguins$"):
        tasks.get("pypi_penguins").instances()
    with pytest.raises(MissingData, match=r"pip install names$"):
        tasks.get("pypi_census_names").instances()
    with pytest.raises(MissingData, match=r"pip install countryinfo$"):
        tasks.get("pypi_population").instances()


def test_build_cold():
    """Every task of these modules builds in a fresh process (no import-order dependence on other
    tests). Its time is printed, never asserted: a shared CPU makes timings meaningless as checks."""
    code = ("import time, tasks\n"
            f"names = {MINE!r}\n"
            "t = time.perf_counter()\n"
            "for n in names:\n"
            "    x = tasks.get(n)\n"
            "    try:\n"
            "        x.instances and x.instances(seed=0); x.dist_prompts and x.dist_prompts(seed=0)\n"
            "        callable(x.diversity) and x.diversity()\n"
            "    except tasks.MissingData:\n"
            "        pass\n"
            "print(time.perf_counter() - t)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    print(f"built in {float(out.stdout.strip()):.2f} s")
