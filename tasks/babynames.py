"""US baby names (SSA national data, yob1880.txt ... yob2023.txt: name,sex,count, NO header --
the reference read them with a header row and lost each year's top girl name).

babynames (train): 500 random configurations, one instance each, as the reference draws them:
    sex in {balanced, F, M}, sampling in {uniform, population}, top_k in {10, 100, 1000, 5000}
    (uniform choices), and a timespan in ["all", 2023, 2022, ..., 1880] with linearly decreasing
    weight. "balanced" means the top k/2 girl names and the top k/2 boy names (a name can be in
    both). The draws, stated in the description, are:
      uniform:    without replacement, uniformly: a random permutation of the k names;
      population: WITH replacement, each draw proportional to the name's count (balanced: a girl
                  or a boy name with probability 1/2 each, then proportional to count).
    (The reference drew "population" without replacement, so the shares its description promised
    held only for the first draw.) Both give an exact predictive: 1/(names not yet shown) and the
    count share. Each instance stores its first 256 draws (about 150 fit in 1024 tokens).
    Without a description, the predictive is the exact mixture over the 500 instances.
dist_prompts: one draw from the top 10 / top 100 girl or boy names of a year (every 10th year
    from 1880, and 2023), target = counts normalized over those names: 64 prompts.
Ties in counts are broken alphabetically. Only the years a configuration needs are read, each
once per process.
"""
import bisect
import functools

from tasks import Download, DistPrompt, Example, Instance, Task
from tasks import common

URL = "https://www.ssa.gov/oact/babynames/names.zip"
YEARS = list(range(1880, 2024))
FILES = tuple(f"babynames/yob{y}.txt" for y in YEARS)
TOP = 5000  # largest top_k: per year and sex only the top 5000 names are kept in memory
N_DRAWS = 256


def by_rank(rows):
    return sorted(rows, key=lambda x: (-x[1], x[0]))


@functools.lru_cache(maxsize=None)
def load_year(root: str, year: int) -> dict[str, list[tuple[str, int]]]:
    """{"F": [(name, count), ...], "M": [...]} of one year, most frequent first, top 5000.
    SSA files list girls then boys, each by count (ties by name), so only the first 5000 lines
    of each block are parsed (checked; a file in another order is parsed and sorted in full)."""
    with open(f"{root}/babynames/yob{year}.txt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    b = bisect.bisect_left(lines, "M", key=lambda line: line.split(",")[1])
    out = {}
    for sex, block in (("F", lines[:b]), ("M", lines[b:])):
        rows = [line.split(",") for line in block[:TOP]]
        counts = [int(c) for _, _, c in rows]
        if all(s == sex for _, s, _ in rows) and counts == sorted(counts, reverse=True):
            out[sex] = [(r[0], c) for r, c in zip(rows, counts)]
        else:
            rows = [line.split(",") for line in lines]
            out[sex] = by_rank([(n, int(c)) for n, s, c in rows if s == sex])[:TOP]
    return out


@functools.lru_cache(maxsize=None)
def load_all_years(root: str) -> dict[str, list[tuple[str, int]]]:
    """Counts summed over 1880-2023 (reads every full file once, keeps only the top names)."""
    total = {"F": {}, "M": {}}
    for y in YEARS:
        with open(f"{root}/babynames/yob{y}.txt", encoding="utf-8") as f:
            for name, sex, count in (line.split(",") for line in f.read().splitlines()):
                d = total[sex]
                d[name] = d.get(name, 0) + int(count)
    return {s: by_rank(d.items())[:TOP] for s, d in total.items()}


def top(root: str, timespan, sex: str, k: int) -> list[tuple[str, int]]:
    table = load_all_years(root) if timespan == "all" else load_year(root, timespan)
    return table[sex][:k]


def describe(sampling: str, sizes: dict, timespan) -> str:
    """sizes = {sex: number of names}: {"F": 100}, {"M": 10} or both (balanced). A size is
    below top_k when fewer names exist (e.g. top 5000 boy names of 1880: 1,058 exist)."""
    when = "from 1880 to 2023" if timespan == "all" else f"in {timespan}"
    word = {"F": "girl", "M": "boy"}
    pool = " and ".join(f"the top {n} baby {word[s]} names" for s, n in sizes.items())
    pool += f" in the US {when}"
    if sampling == "uniform":
        return f"The following are drawn uniformly at random, without replacement, from {pool}."
    if len(sizes) == 2:
        return (f"The following are drawn at random, with replacement, from {pool}: each draw is "
                f"a girl name or a boy name with equal probability, proportional to the number "
                f"of babies given that name.")
    return (f"The following are drawn at random, with replacement, from {pool}, proportional to "
            f"the number of babies given each name.")


def configurations(seed: int, n: int = 500) -> list[tuple]:
    spans = ["all"] + YEARS[::-1]
    w = [len(spans) - i for i in range(len(spans))]  # linearly decreasing weight, "all" first
    p = [x / sum(w) for x in w]
    out = []
    for i in range(n):
        r = common.rng(seed, "babynames", i)
        out.append((["balanced", "M", "F"][r.integers(3)], ["uniform", "population"][r.integers(2)],
                    [10, 100, 1000, 5000][r.integers(4)], spans[r.choice(len(spans), p=p)]))
    return out


def process(root: str, sex: str, k: int, timespan):
    """(names, repeats allowed; {name: probability of a population draw}; {sex: n names})."""
    sexes = {"balanced": ("F", "M"), "F": ("F",), "M": ("M",)}[sex]
    names, probs, sizes = [], {}, {}
    for s in sexes:
        rows = top(root, timespan, s, k // len(sexes))
        total = sum(c for _, c in rows)
        sizes[s] = len(rows)
        for name, c in rows:
            names.append(name)
            probs[name] = probs.get(name, 0.0) + c / total / len(sexes)
    return names, probs, sizes


def instances(seed=0, data_dir=None):
    root = str(common.root(data_dir, "babynames", FILES, URL))
    out, procs, descs = [], [], []
    for i, (sex, sampling, k, span) in enumerate(configurations(seed)):
        names, probs, sizes = process(root, sex, k, span)
        r = common.rng(seed, "babynames draws", i)
        if sampling == "uniform":
            draws = [names[j] for j in r.permutation(len(names))[:N_DRAWS]]
            procs.append(common.without(names))
        else:
            keys = list(probs)
            p = [probs[x] for x in keys]
            total = sum(p)
            draws = [keys[j] for j in r.choice(len(keys), size=N_DRAWS, p=[x / total for x in p])]
            procs.append(common.with_probs(probs))
        descs.append(describe(sampling, sizes, span))
        out.append(Instance("babynames", [descs[-1]], [Example(x) for x in draws],
                            group=f"{sex}/{sampling}/top{k}/{span}"))
    bayes = common.list_bayes(procs, [[d] for d in descs])
    for x in out:
        x.bayes = bayes
    return out


def dist_prompts(seed=0, data_dir=None):
    root = str(common.root(data_dir, "babynames", FILES, URL))
    out = []
    for year in list(range(1880, 2021, 10)) + [2023]:
        for sex in ("F", "M"):
            for k in (10, 100):
                names, probs, sizes = process(root, sex, k, year)
                out.append(DistPrompt("babynames", [
                    {"role": "description", "content": describe("population", sizes, year)}],
                    probs))
    return out


TASKS = [Task("babynames", "train", URL, instances=instances, dist_prompts=dist_prompts,
              files=FILES, checked="real",
              download=Download(urls={"babynames/names.zip": URL}, unzip=("babynames/names.zip",)))]
