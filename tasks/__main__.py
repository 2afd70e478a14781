"""python -m tasks [--data_dir DIR] [--seed N] [--split train|val] [name ...]
python -m tasks download [NAME ... | all] [--data_dir DIR]

Without a subcommand: builds every registered task (or the named ones) and prints one row each:
split, kind, size (instances, dist prompts, or the valid-set size of a diversity list), mean
examples per instance, how the loader was checked, build time and where the data comes from.
The check column says "real" (tested on the real files), "fixture" (tested only on fixture files
in the upstream format), "offline" (needs no data) or "ours" (a task of this project, not of the
reference suite). A task whose files are missing prints its one-line MissingData message instead,
so this works with no data directory at all. `download` fetches the files (see tasks/download.py).
"""
import sys
import time

import cli
import tasks
from tasks import MissingData


def row(t: tasks.Task, seed: int, data_dir) -> tuple[str, str, str]:
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


def check(t: tasks.Task) -> str:
    if t.ours:
        return "ours"
    if not t.files:
        return "offline"
    return t.checked or "-"


def main():
    if sys.argv[1:2] == ["download"]:
        from tasks import download
        sys.exit(download.main(sys.argv[2:]))
    p = cli.Parser(prog="python -m tasks", description=__doc__.split("\n\n")[1],
                   epilog="`python -m tasks download --help` for the downloader")
    p.add_argument("names", nargs="*", help="task names (default: all)")
    p.add_argument("--data_dir", default=None,
                   help="data directory (default: $SPECTRUM_DATA, else data/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=["train", "val"], default=None)
    a = p.parse_args()
    names = a.names or [n for n, t in tasks.TASKS.items() if a.split in (None, t.split)]
    for n in names:
        try:
            tasks.get(n)
        except KeyError as e:
            raise cli.UserError(e.args[0]) from None
    print(f"data directory: {tasks.data_dir(a.data_dir)}")
    w = max([38] + [len(n) for n in names])
    head = (f"{'task':{w}} {'split':5} {'kind':18} {'size':>18} {'ex/inst':>8} {'check':7} "
            f"{'time':>6}  source")
    print(head + "\n" + "-" * len(head))
    built = {"train": 0, "val": 0}
    for name in names:
        t = tasks.get(name)
        t0 = time.time()
        try:
            kind, size, per = row(t, a.seed, a.data_dir)
        except MissingData as e:
            print(f"{name:{w}} {t.split:5} {check(t):7} MISSING: {e}")
            continue
        built[t.split] += 1
        print(f"{name:{w}} {t.split:5} {kind:18} {size:>18} {per:>8} {check(t):7} "
              f"{time.time() - t0:5.1f}s  {t.source}")
    shown = [tasks.get(n) for n in names]
    real = sum(check(t) == "real" for t in shown)
    fixture = sum(check(t) == "fixture" for t in shown)
    print(f"\n{len(shown)} registered / {built['train'] + built['val']} built here "
          f"({built['train']} train + {built['val']} val) / {real} checked on real files / "
          f"{fixture} fixture-only")


if __name__ == "__main__":
    cli.run(main)
