"""List sampling without replacement over shipped fact lists (tasks/lists/*.txt, one item a line).

One instance = one list in a uniformly random order. Bayes:
  with a description (it names the list): uniform over the list's items not shown yet;
  without: a mixture over which of the task's lists generated the prefix, prior uniform over the
  lists, likelihood of an ordered prefix of k distinct items = 1[prefix in L] (|L|-k)!/|L|!.
Split: `lists` trains on most lists; `lists_heldout` (val) holds out board games, card games, dog
breeds and musical instruments, so the model card's "Board games"/"Card games" demos test
generalization. `states` is the U.S.-state alignment prompt (reference_eval §2.2, model card).
"""
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from tasks import DistPrompt, Example, Instance, Task
from tasks.synthetic import NEG_INF, lse, task_rng

LIST_DIR = Path(__file__).parent / "lists"
LISTS = {  # file stem: (title, "a <singular>")
    "us_states": ("U.S. states", "a U.S. state"),
    "us_state_abbreviations": ("Two-letter U.S. state abbreviations", "a two-letter U.S. state abbreviation"),
    "countries": ("Countries", "a country"),
    "chemical_elements": ("Chemical elements", "a chemical element"),
    "css_colors": ("CSS color names", "a CSS color name"),
    "weekdays": ("Days of the week", "a day of the week"),
    "months": ("Months of the year", "a month of the year"),
    "planets": ("Planets of the solar system", "a planet of the solar system"),
    "zodiac_signs": ("Zodiac signs", "a zodiac sign"),
    "greek_letters": ("Greek letters", "a Greek letter"),
    "us_presidents": ("U.S. presidents", "a U.S. president"),
    "programming_languages": ("Programming languages", "a programming language"),
    "sports": ("Sports", "a sport"),
    "fruits": ("Fruits", "a fruit"),
    "vegetables": ("Vegetables", "a vegetable"),
    "board_games": ("Board games", "a board game"),
    "card_games": ("Card games", "a card game"),
    "dog_breeds": ("Dog breeds", "a dog breed"),
    "musical_instruments": ("Musical instruments", "a musical instrument"),
}
HELDOUT = ["board_games", "card_games", "dog_breeds", "musical_instruments"]
TRAIN = [name for name in LISTS if name not in HELDOUT]


@lru_cache(maxsize=None)
def load(name):
    items = [line.strip() for line in (LIST_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()]
    return tuple(item for item in items if item)


def descriptions(name):
    title, one = LISTS[name]
    return [title, f"Name {one}.", f"{title}, sampled uniformly at random without replacement."]


def mixture_bayes(names):
    """The bayes function shared by the instances of a task over these lists."""
    sets = {n: frozenset(load(n)) for n in names}
    by_desc = {d: n for n in names for d in descriptions(n)}

    def bayes(desc, prior, ex):
        if desc is not None and desc not in by_desc:
            raise ValueError(f"description not among this task's variants: {desc!r}")
        seen = {e.output for e in prior}
        if len(seen) < len(prior):
            return NEG_INF
        k, y = len(seen), ex.output
        logw, logp = [], []
        for n in ([by_desc[desc]] if desc is not None else names):
            L = sets[n]
            if seen <= L:
                logw.append(math.lgamma(len(L) - k + 1) - math.lgamma(len(L) + 1))  # P(ordered prefix)
                logp.append(-math.log(len(L) - k) if y in L and y not in seen else NEG_INF)
        if not logw:
            return NEG_INF
        logw = np.array(logw)
        return lse(logw + np.array(logp)) - lse(logw)
    return bayes


def list_instances(task, names, shuffles):
    def instances(seed=0, data_dir=None):
        rng, bayes, out = task_rng(task, seed), mixture_bayes(names), []
        for n in names:
            items = [Example(v) for v in load(n)]
            for _ in range(shuffles):
                out.append(Instance(task, descriptions(n), [items[j] for j in rng.permutation(len(items))],
                                    group=n, bayes=bayes))
        return out
    return instances


def states_dist_prompts(seed=0, data_dir=None):
    target = {s: 1 / 50 for s in load("us_states")}
    return [DistPrompt("states", [{"role": "input", "content": "Name a U.S. state uniformly at random."}], target),
            DistPrompt("states", [{"role": "description", "content": "Pick a U.S. state uniformly at random."}], target)]


TASKS = [
    Task("lists", "train", "synthetic", instances=list_instances("lists", TRAIN, 20)),
    Task("lists_heldout", "val", "synthetic", instances=list_instances("lists_heldout", HELDOUT, 20)),
    Task("states", "val", "synthetic", dist_prompts=states_dist_prompts),
]
