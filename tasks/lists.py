"""List sampling without replacement over shipped fact lists (tasks/lists/*.txt, one item a line).

One instance = one list in a uniformly random order. Bayes:
  with a description (it names the list): uniform over the list's items not shown yet;
  without: a mixture over which of the task's lists generated the prefix, prior uniform over the
  lists, likelihood of an ordered prefix of k distinct items = 1[prefix in L] (|L|-k)!/|L|!.
Split: `lists` trains on most lists; `lists_heldout` (val) holds out board games, card games, fruits,
dog breeds and musical instruments, so the "Board games"/"Card games"/"Fruits" demos test
generalization. `states` is the U.S.-state alignment prompt (reference_eval §2.2, model card).
"""
from functools import lru_cache
from pathlib import Path

from tasks import DistPrompt, Example, Instance, Task, common

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
HELDOUT = ["board_games", "card_games", "fruits", "dog_breeds", "musical_instruments"]
TRAIN = [name for name in LISTS if name not in HELDOUT]


@lru_cache(maxsize=None)
def load(name):
    items = [line.strip() for line in (LIST_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()]
    return tuple(item for item in items if item)


def descriptions(name):
    title, one = LISTS[name]
    return [title, f"Name {one}.", f"{title}, sampled uniformly at random without replacement."]


def list_instances(task, names, shuffles):
    def instances(seed=0, data_dir=None):
        # one process per list: every list has `shuffles` instances, so the mixture prior is the same
        bayes = common.list_bayes([common.without(load(n)) for n in names], [descriptions(n) for n in names])
        rng, out = common.rng(seed, task), []
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
    Task("lists", "train", "synthetic", instances=list_instances("lists", TRAIN, 20), ours=True),
    Task("lists_heldout", "val", "synthetic", instances=list_instances("lists_heldout", HELDOUT, 20), ours=True),
    Task("states", "val", "synthetic", dist_prompts=states_dist_prompts),
]
