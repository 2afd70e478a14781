"""Data pipeline speed: task instances -> drawn, tokenized, fitted sequences -> packed rows.

    python bench/data_speed.py [--tasks offline] [--max_len 1024] [--rows 256]

Prints instance-building time per task, then sequences/s and tokens/s of data.Stream on the real
Gemma tokenizer, and the packing fill. Compare with the trainer's tokens/s (bench/train_speed.py):
the pipeline must never be the bottleneck.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import data  # noqa: E402
import tasks  # noqa: E402
import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="offline")
    ap.add_argument("--max_len", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=256)
    args = ap.parse_args()
    tok = checkpoint.load_tokenizer(checkpoint.resolve("gemma-3-270m"))
    t0 = time.perf_counter()
    instances = []
    for name in train.task_names(args.tasks):
        t = time.perf_counter()
        got = tasks.get(name).instances(seed=0, data_dir=tasks.data_dir())
        instances += got
        print(f"  {name:36s} {len(got):6d} instances  {time.perf_counter() - t:5.2f} s")
    print(f"built {len(instances)} instances in {time.perf_counter() - t0:.1f} s")
    t = time.perf_counter()
    instances, dropped = data.drop_long_examples(instances, tok, args.max_len)
    print(f"checked every example against max_len in {time.perf_counter() - t:.1f} s (left out: {dropped or 'none'})")
    stream = data.Stream(instances, tok, data.StreamConfig(max_len=args.max_len, window=256))
    t = time.perf_counter()
    seqs = tokens = 0
    for _ in range(args.rows // 16):
        batch, _ = stream.next_batch(16)
        tokens += int((batch["seq"] >= 0).sum())
        seqs += sum(len(set(r.tolist()) - {-1}) for r in batch["seq"])
    dt = time.perf_counter() - t
    print(f"stream: {seqs / dt:.0f} sequences/s, {tokens / dt:.0f} tokens/s "
          f"({args.rows} rows of {args.max_len}), packing fill {stream.real_tokens / stream.row_tokens:.1%}")


if __name__ == "__main__":
    main()
