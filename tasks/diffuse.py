"""diffuse_distribution: uniform sampling without replacement from 27 fixed lists (numbers,
days, dates, countries by continent, fruits, occupations, baby names, fictitious people) from
the "diffuse distributions" prompts.

Each list is one process, shown as 10 instances (the reference's 10 permutations of it; data.py
reshuffles every draw): 270 instances. Description = the request's first sentence +
", without replacement.". Targets lose their {braces} and zero-width spaces; multi-field targets
(fictitious people: name, gender, birth date, birth place) keep one field per line, where the
reference glued them together ("Unnur GunnarssonFemaleFebruary 11, 1909..."). Lists are keyed by
their path under prompts/ (e.g. "numbers/rng-0"), not by file name. The exact predictive is
uniform over the not-yet-shown targets (a mixture over the 27 lists without a description).
"""
import functools
import json
from pathlib import Path

from tasks import Download, Example, Instance, Task
from tasks import common

URL = "https://github.com/y0mingzhang/diffuse-distributions"
FILES = ("diffuse-distributions/prompts",)


def clean(target: str) -> str:
    lines = [ln.replace("{", "").replace("}", "").replace("\u200b", "").strip()
             for ln in target.split("\n")]
    return "\n".join(ln for ln in lines if ln)


@functools.lru_cache(maxsize=2)
def load(root: str) -> list[tuple[str, str, list[str]]]:
    """(key, description, targets) for every prompt file with a non-empty target list."""
    base = Path(root) / FILES[0]
    out = []
    for path in sorted(base.rglob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        targets = [t for t in (clean(x) for x in d.get("targets") or []) if t]
        if targets:
            key = path.relative_to(base).with_suffix("").as_posix()
            out.append((key, d["request"].split(".")[0] + ", without replacement.", targets))
    return out


def instances(seed=0, data_dir=None):
    lists = load(str(common.root(data_dir, "diffuse_distribution", FILES, URL)))
    r = common.rng(seed, "diffuse_distribution")
    procs = [common.without(t) for _, _, t in lists for _ in range(10)]
    descs = [[d] for _, d, _ in lists for _ in range(10)]
    bayes = common.list_bayes(procs, descs)
    return [Instance("diffuse_distribution", [d], [Example(t[i]) for i in r.permutation(len(t))],
                     group=key, options=list(t), bayes=bayes)
            for key, d, t in lists for _ in range(10)]


TASKS = [Task("diffuse_distribution", "train", URL, instances=instances, files=FILES,
              checked="real", download=Download(urls={
                  f"diffuse-distributions/prompts/{p}.json": "https://raw.githubusercontent.com/"
                  f"y0mingzhang/diffuse-distributions/HEAD/prompts/{p}.json"
                  for p in ("baby-names/train continent-countries/africa continent-countries/asia "
                            "continent-countries/europe continent-countries/north-america "
                            "continent-countries/oceania continent-countries/south-america "
                            "day-date/day-0 day-date/day-1 day-date/december-0 day-date/december-1 "
                            "day-date/june-0 day-date/june-1 ficticious-people/ficticious-people "
                            "ficticious-people/ficticious-people-train fruits/fruit-0 "
                            "fruits/fruit-1 "
                            "numbers/even-0 numbers/even-1 numbers/odd-0 numbers/odd-1 "
                            "numbers/prime-0 numbers/prime-1 numbers/rng-0 numbers/rng-1 "
                            "occupations/occupations-0 occupations/occupations-1 "
                            "occupations/occupations-2").split()}))]
