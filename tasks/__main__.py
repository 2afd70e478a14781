"""python -m tasks [--data_dir DIR] [--seed N] [--split train|val] [name ...]

Builds every registered task (or the named ones) and prints one row each: split, kind, size
(instances, dist prompts, or the valid-set size of a diversity list), mean examples per
instance, build time and where the data comes from. A task whose files are missing prints its
one-line MissingData message instead, so this works with no data directory at all.
"""
import argparse
import time

import tasks
from tasks import MissingData


def row(t: tasks.Task, seed: int, data_dir) -> tuple[str, str, str, str]:
    kinds, sizes, per = [], [], ""
    if t.instances is not None:
        xs = t.instances(seed=seed, data_dir=data_dir)
        kinds.append("instances")
        sizes.append(str(len(xs)))
        per = f"{sum(len(x.examples) for x in xs) / max(len(xs), 1):.1f}"
    if t.dist_prompts is not None:
        kinds.append("dist")
        sizes.append(f"{len(t.dist_prompts(seed=seed, data_dir=data_dir))} prompts")
    if t.diversity is not None:
        d = t.diversity(data_dir) if callable(t.diversity) else t.diversity
        kinds.append("diversity")
        sizes.append(f"{d.size} valid" if d.size is not None else "rule")
    return "+".join(kinds), " + ".join(sizes), per


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="task names (default: all)")
    p.add_argument("--data_dir", default=None,
                   help="data directory (default: $SPECTRUM_DATA, else data/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=["train", "val"], default=None)
    a = p.parse_args()
    names = a.names or [n for n, t in tasks.TASKS.items() if a.split in (None, t.split)]
    print(f"data directory: {tasks.data_dir(a.data_dir)}")
    head = f"{'task':38} {'split':5} {'kind':18} {'size':>18} {'ex/inst':>8} {'time':>6}  source"
    print(head + "\n" + "-" * len(head))
    ok = {"train": 0, "val": 0}
    for name in names:
        t = tasks.get(name)
        t0 = time.time()
        try:
            kind, size, per = row(t, a.seed, a.data_dir)
        except MissingData as e:
            print(f"{name:38} {t.split:5} MISSING: {e}")
            continue
        ok[t.split] += 1
        print(f"{name:38} {t.split:5} {kind:18} {size:>18} {per:>8} {time.time() - t0:5.1f}s  "
              f"{t.source}")
    print(f"\nbuilt {ok['train']} train + {ok['val']} val of {len(names)} tasks")


if __name__ == "__main__":
    main()
