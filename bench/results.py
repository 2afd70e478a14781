"""The README's results: the base Gemma 3 270M against the same model after `python train.py`.

    python bench/results.py [--ckpt out] [--plot docs/figures]

1. evaluate.py with its defaults on the held-out tasks: the base model in the colon format (how
   the paper evaluates a pretrained model) and the Spectrum-tuned checkpoint in the spectrum
   format, on the same seeded sequences; then `evaluate.py --compare` between the two (improved /
   unchanged / degraded per task and metric), and its figures when --plot is given (with the
   run's training curves from its log.jsonl).
2. sample.py on the model card's prompts and on bare category descriptions, for both models,
   seeded; P(sum) of two dice.
Everything goes to stdout; the two result files go where evaluate.py puts them (the base model's
under out/, the run's inside the run).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cli  # noqa: E402

PROMPTS = [  # (title, messages): the model card's, then bare descriptions of held-out categories
    ("Board games, with two examples",
     [{"role": "description", "content": "Board games"},
      {"role": "output", "content": "Settlers of Catan"}, {"role": "output", "content": "Twilight Imperium"}]),
    ("Card games, two lower-case examples",
     [{"role": "description", "content": "Card games"},
      {"role": "output", "content": "gin rummy"}, {"role": "output", "content": "monopoly deal"}]),
    ("Board games", [{"role": "description", "content": "Board games"}]),
    ("Card games", [{"role": "description", "content": "Card games"}]),
    ("Fruits", [{"role": "description", "content": "Fruits"}]),
]
DICE = [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]
SUMS = [str(i) for i in range(2, 13)]


def main(argv):
    p = cli.Parser(prog="bench/results.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="out", help="the tuned run (default: out)")
    p.add_argument("--plot", default="", help="write the comparison's figures into this folder")
    args = p.parse_args(argv)
    import checkpoint
    import evaluate as E
    import sample as S

    runs = [("gemma-3-270m", "colon"), (args.ckpt, "spectrum")]
    files = []
    for name, fmt in runs:
        print(f"\n## python evaluate.py --ckpt {name} --format {fmt}\n", flush=True)
        cfg = E.EvalConfig(ckpt=name, format=fmt)
        E.main(cfg, None)
        files.append(str(E.results_path(cfg)))
    print(f"\n## python evaluate.py --compare {' '.join(files)}\n", flush=True)
    E.main(E.EvalConfig(plot=args.plot), files)
    log = Path(args.ckpt) / "log.jsonl"
    if args.plot and log.exists():  # the run's own curves
        import plots
        print(f"figure: {plots.training(log, Path(args.plot) / 'training.png')}")

    for name, fmt in runs:
        model, tok = checkpoint.load(name, "auto", "auto")
        S.fast_cpu(model)
        print(f"\n## python sample.py --ckpt {name} --format {fmt} (seed 0, temperature 1, n 8)")
        for title, messages in PROMPTS:
            texts, _ = S.generate(model, tok, messages, n=8, seed=0, fmt=fmt)
            print(f"\n{title}:\n" + "\n".join("    " + t.replace("\n", "\\n") for t in texts))
        probs, coverage = S.option_probs(model, tok, DICE, SUMS, fmt)
        print(f"\nTwo dice, P(sum) (coverage {100 * coverage:.2f} %):\n    "
              + "  ".join(f"{o}: {q:.3f}" for o, q in zip(SUMS, probs)), flush=True)


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
