"""Where a training step's time goes: torch.profiler over train.py's step on the real 270M.

    python bench/profile_train.py [--rows R] [--accum A] [--max_len 512] [--steps 2] [--dtype auto]

A step is `accum` micro-steps of `rows` packed rows, then the optimizer (default: the embedded
default's shape, train.py's micro_rows and batch_rows). Prints the top operators by self CPU time
over `steps` steps (after one warm-up step), and the wall time of the forward, backward and
optimizer phases.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import model as M  # noqa: E402
import train  # noqa: E402
from bench.common import add_step_shape, header, offline_batches  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    add_step_shape(ap)
    ap.add_argument("--max_len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    args = ap.parse_args()
    m, tok = checkpoint.load("gemma-3-270m", "cpu", "float32")
    m.train()
    M.inplace_grads(m)  # as train.py runs it (one process)
    compute = checkpoint.pick_dtype(args.dtype, torch.device("cpu"))
    print(header("a training step, profiled", compute))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-6, fused=True)  # as train.py
    flat = offline_batches(tok, args.rows, args.max_len, args.accum * (args.steps + 1))
    batches = [flat[i:i + args.accum] for i in range(0, len(flat), args.accum)]
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(micro_batches, timed):
        t1 = t2 = 0.0
        bf16 = torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute == torch.bfloat16)
        with bf16, M.cast_once():  # as train.py
            for b in micro_batches:
                t0 = time.perf_counter()
                with record_function("forward"):
                    nll, n = train.loss_sums(m, b, "cpu")
                t1 += time.perf_counter() - t0
                t0 = time.perf_counter()
                with record_function("backward"):
                    (nll / n).backward()
                t2 += time.perf_counter() - t0
        t0 = time.perf_counter()
        with record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=False)
        t3 = time.perf_counter() - t0
        if timed:
            for k, dt in zip(phases, (t1, t2, t3)):
                phases[k] += dt / args.steps

    step(batches[0], False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches[1:]:
            step(b, True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40))
    total = sum(phases.values())
    print("per step: " + ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in phases.items()))
    flops = sum(train.train_flops(m.config, b) for mb in batches[1:] for b in mb) / args.steps
    peak = train.peak_flops(train.TrainConfig(), torch.device("cpu"), compute)
    print(f"{args.rows * args.accum * args.max_len / total:.0f} tok/s, {flops / total / 1e9:.0f} GFLOP/s of model FLOPs, "
          f"MFU {flops / total / peak:.0%} of the measured matmul peak in this dtype, {peak / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
