"""Training speed on the real Gemma 3 270M: ours vs transformers, same weights, same batches, one process.

    python bench/train_speed.py [--rows R] [--accum A] [--max_len 512] [--steps 4] [--dtype auto]

Three measurements, interleaved (ours, theirs, ours, ...) so machine noise hits both alike, in the
compute dtype train.py would use here (--dtype auto: bf16 autocast where bf16 is fast, else fp32):
  model   forward+backward of the bare model, full logits: the architecture itself
  step    one optimizer step of train.py: `accum` micro-steps of `rows` packed rows (logits only at
          loss tokens), then clip and AdamW; the defaults are the embedded default's shape (train.py's
          micro_rows and batch_rows). Against a plain transformers step on the same rows: the same
          micro-steps (full logits, labels -100 off the loss tokens), then clip and AdamW
  mfu     our step's model FLOPs / time / the measured matmul peak of this machine in that dtype
Prints medians and the ratios. Timings drift on a shared machine; compare ratios, not seconds.
"""
import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import model as M  # noqa: E402
import train  # noqa: E402
from bench.common import add_step_shape, header, offline_batches, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    add_step_shape(ap)
    ap.add_argument("--max_len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    ckpt = checkpoint.resolve("gemma-3-270m")
    ours, tok = checkpoint.load(ckpt, "cpu", "float32")
    ours.train()
    M.inplace_grads(ours)  # as train.py runs it (one process)
    theirs = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="sdpa").train()
    flat = offline_batches(tok, args.rows, args.max_len, args.accum * (args.steps + 1))
    steps = [flat[i:i + args.accum] for i in range(0, len(flat), args.accum)]  # a step: its micro-batches
    n_tok = args.accum * args.rows * args.max_len
    real = [int((b["seq"] >= 0).sum()) for b in flat]
    compute = checkpoint.pick_dtype(args.dtype, torch.device("cpu"))
    print(header("training speed, Gemma 3 270M", compute))
    fill = sum(real) / len(real) / (args.rows * args.max_len)
    loss_share = sum(int(b["mask"].sum()) for b in flat) / sum(real)
    print(f"steps of {args.accum} x {args.rows} x {args.max_len} packed Spectrum rows ({fill:.0%} real tokens, "
          f"{loss_share:.0%} of them loss tokens); fp32 master weights"
          f"{', bf16 autocast' if compute == torch.bfloat16 else ''}")
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute == torch.bfloat16)

    # model: forward + backward, full logits, the same unpacked micro-batches for both
    def model_ours(step):
        ours.inplace_grads = False  # the bare model: autograd only, as transformers
        for b in step:
            with bf16:
                ours.logits(ours(b["ids"])).float().logsumexp(-1).mean().backward()
        ours.zero_grad(set_to_none=True)
        ours.inplace_grads = True

    def model_theirs(step):
        for b in step:
            with bf16:
                theirs(b["ids"]).logits.float().logsumexp(-1).mean().backward()
        theirs.zero_grad(set_to_none=True)

    # step: train.py's step vs a plain transformers step
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-6, fused=True)  # as train.py
    opt_theirs = torch.optim.AdamW(theirs.parameters(), lr=1e-6)

    def step_ours(step):
        n_loss = sum(int(b["mask"].sum()) for b in step)
        with bf16, M.cast_once():  # one autocast context and one head cast for the step, as train.accumulate
            for b in step:
                nll, _ = train.loss_sums(ours, b, "cpu")
                (nll / n_loss).backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=False)  # as train.py

    def step_theirs(step):
        for b in step:  # the usual gradient accumulation: each micro-batch's mean loss / accum
            labels = torch.where(b["mask"], b["ids"], -100)
            with bf16:
                (theirs(input_ids=b["ids"], labels=labels).loss / len(step)).backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        opt_theirs.step()
        opt_theirs.zero_grad(set_to_none=True)

    peak = train.peak_flops(train.TrainConfig(), torch.device("cpu"), compute)
    for name, a, b in (("model fwd+bwd", model_ours, model_theirs), ("train step", step_ours, step_theirs)):
        a(steps[0]), b(steps[0])  # warm-up
        ta, tb = [], []
        for step in steps[1:]:
            ta.append(timed(lambda: a(step)))
            tb.append(timed(lambda: b(step)))
        ma, mb = statistics.median(ta), statistics.median(tb)
        print(f"{name:14s} ours {n_tok / ma:7.0f} tok/s | transformers {n_tok / mb:7.0f} tok/s | "
              f"ratio {mb / ma:.2f}x")
        if name == "train step":
            flops = statistics.median(sum(train.train_flops(ours.config, b) for b in step) for step in steps[1:])
            print(f"{'':14s} our step: {flops / ma / 1e9:.0f} GFLOP/s of model FLOPs = {flops / ma / peak:.0%} "
                  f"MFU against the measured matmul peak in this dtype, {peak / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
