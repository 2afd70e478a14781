"""The README's results: the base Gemma 3 270M vs the same model after `python train.py`.

    python bench/results.py [--ckpt out] [--max_sequences 20] [--n_samples 100]

1. evaluate.py on the offline held-out tasks (urn, dice, flight, lists_heldout, and the distribution
   prompts of every offline task): the base model in the colon format (how the paper evaluates a
   pretrained model) and the Spectrum-tuned checkpoint in the spectrum format, on the same seeded
   sequences; then `evaluate.py --compare` between the two (improved / unchanged / degraded).
2. sample.py on the model card's prompts (board games, card games with and without lower-case
   examples, two dice) for both models, seeded.
Everything goes to stdout; the two result files are written beside the checkpoint.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import evaluate as E  # noqa: E402
import model as M  # noqa: E402
import sample as S  # noqa: E402

CARD = [  # (title, messages) from the model card (seeds/001)
    ("Board games, with two examples",
     [{"role": "description", "content": "Board games"},
      {"role": "output", "content": "Settlers of Catan"}, {"role": "output", "content": "Twilight Imperium"}]),
    ("Board games, description only", [{"role": "description", "content": "Board games"}]),
    ("Card games, description only", [{"role": "description", "content": "Card games"}]),
    ("Card games, two lower-case examples",
     [{"role": "description", "content": "Card games"},
      {"role": "output", "content": "gin rummy"}, {"role": "output", "content": "monopoly deal"}]),
]
DICE = [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]
SUMS = [str(i) for i in range(2, 13)]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="out")
    p.add_argument("--max_sequences", type=int, default=20)
    p.add_argument("--n_samples", type=int, default=100)
    args = p.parse_args(argv)
    ckpt = Path(args.ckpt)
    runs = [(M.EMBEDDED, "colon", ckpt / "eval_base_colon.json"), (str(ckpt), "spectrum", ckpt / "eval_spectrum.json")]
    for name, fmt, out in runs:
        print(f"\n## evaluate.py --ckpt {name} --format {fmt} --tasks offline\n")
        E.main(["--ckpt", name, "--format", fmt, "--tasks", "offline", "--max_sequences", str(args.max_sequences),
                "--n_samples", str(args.n_samples), "--json", str(out)])
    print(f"\n## evaluate.py --compare {runs[0][2]} {runs[1][2]}\n")
    E.main(["--compare", str(runs[0][2]), str(runs[1][2])])

    for name, fmt, _ in runs:
        model, tok = S.load(name, "bfloat16")  # as sample.py's CLI: bf16 to sample, stored dtype to score
        print(f"\n## sample.py --ckpt {name} --format {fmt} (seed 0, temperature 1)")
        for title, messages in CARD:
            texts = S.generate(model, tok, messages, n=8, seed=0, fmt=fmt)
            print(f"\n{title}:\n" + "\n".join("    " + t.replace("\n", "\\n") for t in texts))
        model, tok = S.load(name, "checkpoint")
        probs, coverage = S.option_probs(model, tok, DICE, SUMS, fmt)
        print(f"\nTwo dice, P(sum): coverage {100 * coverage:.2f} %\n    "
              + "  ".join(f"{o}: {q:.3f}" for o, q in zip(SUMS, probs)))


if __name__ == "__main__":
    main(sys.argv[1:])
