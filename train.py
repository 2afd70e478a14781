"""Spectrum Tuning: supervised fine-tuning of a Gemma 3 checkpoint on the Spectrum Suite.

    python train.py                                  # the embedded default: 270M, offline tasks, CPU
    torchrun --nproc_per_node=8 train.py paper       # the paper's run: Gemma 3 12B pt, FSDP
    python train.py --init=google/gemma-3-1b-pt --tasks=train --lr=1e-5 ...

Each optimizer step takes `batch_rows` packed rows (several sequences per row, attention kept
within each sequence), split over ranks and `micro_rows`-row micro-steps. The loss is the mean
NLL over the loss tokens of the whole global batch (output content + its <end_of_turn>), however
it is split; logits are computed only at those positions. bf16 autocast over fp32 master weights
and AdamW state (with --fsdp: bf16 params, fp32 reduction). Checkpoints are Hugging Face
directories written atomically; `--resume` continues a run exactly.
"""
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist

import data
import model as M
import tasks


@dataclass
class TrainConfig:
    init: str = M.EMBEDDED            # any Gemma 3 checkpoint: directory, Hub id or gemma-3-270m
    chat_tokens_from: str = "eos"     # <start_of_turn>/<end_of_turn> rows: copy from this checkpoint | eos | ""
    out_dir: str = "out"
    tasks: str = "offline"            # offline (synthetic train tasks) | train (all) | name,name,...
    val_tasks: str = "auto"           # held-out loss on: auto (held-out tasks of the same kind) | a,b
    data_dir: str = ""                # data-backed tasks read from here (default $SPECTRUM_DATA or data/)
    # sequences
    max_len: int = 512
    p_drop: float = 0.2               # description dropout
    window: int = 256                 # sequences drawn and packed together
    seed: int = 1337
    # batch: batch_rows global rows per step = world * micro_rows * accumulation
    batch_rows: int = 8
    micro_rows: int = 4
    # optimization
    lr: float = 5e-5
    warmup_frac: float = 0.05
    weight_decay: float = 0.0
    beta2: float = 0.999
    grad_clip: float = 1.0
    epochs: float = 1.0
    max_steps: int = 20               # 0: run `epochs` epochs (the embedded default: ~10 min on 2 CPU cores)
    # system
    device: str = "auto"
    dtype: str = "bfloat16"           # compute dtype (autocast / FSDP param dtype); float32 for exact tests
    fsdp: bool = False
    activation_checkpointing: bool = False
    compile: bool = False
    save_dtype: str = "float32"       # the fp32 master weights, so --resume is exact
    # logging, eval, checkpoints
    log_every: int = 5
    eval_every: int = 0               # 0: only before and after training
    eval_rows: int = 16
    save_every: int = 0               # 0: only at the end
    peak_tflops: float = 0.0          # MFU denominator; 0: measured bf16 matmul peak (CPU) or a table (GPU)
    resume: bool = False


PRESETS = {
    # Sorensen et al. v1: Gemma 3 12B pt + chat-token rows of 12B it, lr 3e-6, max_len 1024, ~1024
    # sequences per step, 1 epoch. 8x80GB GPUs: FSDP2 + activation checkpointing; about 190 GB of
    # fp32 weights + AdamW state sharded 8 ways (~24 GB/GPU) plus activations.
    "paper": dict(init="google/gemma-3-12b-pt", chat_tokens_from="google/gemma-3-12b-it", tasks="train",
                  lr=3e-6, max_len=1024, batch_rows=1024, micro_rows=2, max_steps=0, epochs=1.0,
                  warmup_frac=0.03, fsdp=True, activation_checkpointing=True, eval_every=10,
                  eval_rows=256, save_every=10, log_every=1),
}


def parse_args(argv) -> TrainConfig:
    """[preset] --key=value ...; each value is parsed as the type of the field's default."""
    cfg = TrainConfig()
    types = {f.name: type(f.default) for f in fields(TrainConfig)}
    for arg in argv:
        if not arg.startswith("--"):
            if arg not in PRESETS:
                raise SystemExit(f"unknown preset {arg!r}: presets are {', '.join(PRESETS)}")
            for k, v in PRESETS[arg].items():
                setattr(cfg, k, v)
            continue
        key, eq, val = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in types:
            raise SystemExit(f"unknown option --{key}: options are {', '.join('--' + k for k in types)}")
        typ = types[key]
        if typ is bool:
            val = "true" if not eq else val
            if val.lower() not in ("true", "false", "1", "0"):
                raise SystemExit(f"--{key} takes true or false, not {val!r}")
            setattr(cfg, key, val.lower() in ("true", "1"))
        else:
            try:
                setattr(cfg, key, typ(val))
            except ValueError:
                raise SystemExit(f"--{key} takes a {typ.__name__}, not {val!r}") from None
    return cfg


# --- pieces ---------------------------------------------------------------------------------

def task_names(spec):
    """offline: the synthetic train tasks; train: every train task; else a comma list of names."""
    if spec in ("offline", "train"):
        return [n for n in tasks.names("train") if spec == "train" or tasks.TASKS[n].source == "synthetic"]
    return [n.strip() for n in spec.split(",") if n.strip()]


def load_instances(names, data_dir):
    out = []
    for n in names:
        t = tasks.get(n)
        if t.instances is None:
            raise SystemExit(f"task {n} has no sequences to train on (it is a {t.split} eval-only task)")
        try:
            out += t.instances(seed=0, data_dir=tasks.data_dir(data_dir or None))
        except tasks.MissingData as e:
            raise SystemExit(str(e)) from None
    return out


def copy_chat_tokens(model, source):
    """Give the <start_of_turn>/<end_of_turn> embedding rows (tied: input and output) trained values.

    In a pretrained Gemma 3 they are untrained: in the 270M, <end_of_turn> has cosine 0.99 with the
    mean of the 6,242 <unused> rows, so learning to predict it lifts all of them together (samples
    fill with <unusedN> tokens). The authors copied both rows from the instruction-tuned sibling
    (source = its checkpoint). source = "eos", when there is none at hand (the embedded model):
    <end_of_turn> starts as this model's own <eos> row, the trained "the text ends here" token.
    """
    w = model.embed_tokens.weight
    with torch.no_grad():
        if source == "eos":
            w[data.EOT] = w[data.EOS]
        else:
            w[[data.SOT, data.EOT]] = M.read_embedding_rows(source, [data.SOT, data.EOT]).to(w.dtype)


def loss_sums(model, batch, device):
    """Summed NLL and count of the loss tokens of a packed batch. A loss token at t is predicted
    from position t-1, which always lies in the same sequence (position 0 is <bos>, never loss)."""
    ids, mask = batch["ids"].to(device), batch["mask"].to(device)
    select = torch.zeros_like(mask)
    select[:, :-1] = mask[:, 1:]
    nll = model(ids, pos=batch["pos"].to(device), seq=batch["seq"].to(device), select=select,
                targets=ids[:, 1:][mask[:, 1:]])
    return nll, int(mask.sum())


def train_flops(c: M.Config, batch):
    """Model FLOPs of a forward+backward (6 per multiply-add pair per parameter use): matmuls on
    every real token, logits only at loss tokens, attention over the keys each query may see."""
    non_embed = c.num_layers * (c.hidden_size * c.head_dim * (2 * c.num_heads + 2 * c.num_kv_heads)
                                + 3 * c.hidden_size * c.intermediate_size)
    real = int((batch["seq"] >= 0).sum())
    n_loss = int(batch["mask"].sum())
    keys = 0
    for row_seq in batch["seq"]:
        for n in torch.unique_consecutive(row_seq[row_seq >= 0], return_counts=True)[1].tolist():
            for t in c.layer_types:  # sum over queries of visible keys: n(n+1)/2, capped by the window
                w = c.sliding_window if t == "sliding_attention" else n
                keys += n * (n + 1) // 2 if w >= n else w * (w + 1) // 2 + (n - w) * w
    return 6 * non_embed * real + 6 * c.vocab_size * c.hidden_size * n_loss \
        + 6 * 2 * c.num_heads * c.head_dim * keys


def peak_flops(cfg, device):
    if cfg.peak_tflops:
        return cfg.peak_tflops * 1e12
    if device.type == "cuda":  # dense bf16 peaks
        name = torch.cuda.get_device_name(device)
        for key, tf in (("H100", 989), ("H200", 989), ("A100", 312), ("L40", 181), ("A10", 125)):
            if key in name:
                return tf * 1e12
        return 0.0
    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    for _ in range(3):  # warm-up
        a @ a
    times = []
    for _ in range(10):  # the best of 10: the machine's bf16 matmul peak
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return 2 * 2048 ** 3 / min(times)


# --- checkpoints ------------------------------------------------------------------------------

def save_checkpoint(cfg, model, optimizer, stream, step, rank, world, tokenizer_from):
    """HF checkpoint + training state into a temp dir, then swapped in by renames, so out/ is
    always a complete checkpoint (the previous one, or the new one)."""
    out = Path(cfg.out_dir)
    tmp = Path(f"{out}.tmp")
    if cfg.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        full = unwrap(model).state_dict()
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        c = unwrap(model).config
        with torch.device("meta"):
            copy = M.Gemma(c)
        copy.load_state_dict({k: v.detach().to("cpu", M.DTYPES[cfg.save_dtype]) for k, v in full.items()},
                             assign=True)
        M.save_pretrained(copy, tmp, tokenizer_from=tokenizer_from, chat_template=data.CHAT_TEMPLATE)
        if (out / "log.jsonl").exists():
            shutil.copy(out / "log.jsonl", tmp / "log.jsonl")
    if world > 1:
        dist.barrier()
    # optimizer state: one file for DDP (replicated), one per rank for FSDP (sharded)
    if cfg.fsdp or rank == 0:
        state = {"optimizer": optimizer.state_dict(), "step": step, "stream": stream.state_dict(),
                 "rng": torch.get_rng_state(), "config": asdict(cfg), "world": world}
        torch.save(state, tmp / (f"train_state.rank{rank}.pt" if cfg.fsdp else "train_state.pt"))
    if world > 1:
        dist.barrier()
    if rank == 0:
        prev = Path(f"{out}.prev")
        shutil.rmtree(prev, ignore_errors=True)
        if out.exists():
            os.rename(out, prev)
        os.rename(tmp, out)
        shutil.rmtree(prev, ignore_errors=True)
    if world > 1:
        dist.barrier()


def unwrap(model):
    return getattr(model, "module", model)


# --- the loop ---------------------------------------------------------------------------------

def train(cfg: TrainConfig):
    t_start = time.time()
    ddp = "RANK" in os.environ
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", 0))
    else:
        rank, world, local = 0, 1, 0
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    master = rank == 0
    say = print if master else (lambda *a, **k: None)
    accum, rem = divmod(cfg.batch_rows, world * cfg.micro_rows)
    if rem or not accum:
        raise SystemExit(f"--batch_rows={cfg.batch_rows} must be a multiple of world size {world} x "
                         f"--micro_rows={cfg.micro_rows}")

    # resume: continue from out/ (weights there, optimizer/data/step beside them)
    init = cfg.init
    state = None
    if cfg.resume:
        ckpt = M.last_checkpoint(cfg.out_dir)
        if ckpt is None:
            raise SystemExit(f"--resume: no checkpoint in {cfg.out_dir}/ (train without --resume first, "
                             "or point --out_dir at the run to continue)")
        init = str(ckpt)
        name = f"train_state.rank{rank}.pt" if cfg.fsdp else "train_state.pt"
        if not (ckpt / name).exists():
            raise SystemExit(f"--resume: {ckpt} has weights but no {name} (was it saved with the same "
                             "--fsdp setting and world size?)")
        state = torch.load(ckpt / name, map_location="cpu", weights_only=False)
        if state["world"] != world and cfg.fsdp:
            raise SystemExit(f"--resume: the FSDP run was saved with {state['world']} ranks, not {world}")

    tok_dir = M.resolve(init)
    tok = M.load_tokenizer(tok_dir)
    model = M.from_pretrained(tok_dir, device=device, dtype=torch.float32)
    if cfg.chat_tokens_from and state is None:
        copy_chat_tokens(model, cfg.chat_tokens_from)
        say("<end_of_turn> row initialized from <eos>" if cfg.chat_tokens_from == "eos" else
            f"copied <start_of_turn>/<end_of_turn> rows from {cfg.chat_tokens_from}")
    model.train()
    model.activation_checkpointing = cfg.activation_checkpointing
    c = model.config
    n_params = sum(p.numel() for p in model.parameters())

    compute = M.DTYPES[cfg.dtype]
    if cfg.fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        mp = MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32)
        for block in model.layers:
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)  # the root unit holds the tied embedding/lm_head and the final norm
        autocast = nullcontext()
    else:
        if ddp:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[local] if device.type == "cuda" else None)
        autocast = torch.autocast(device.type, dtype=compute) if compute != torch.float32 else nullcontext()
    if cfg.compile:
        for block in unwrap(model).layers:
            block.compile()

    # fused: one kernel per step over all parameters (on CPU 5x faster than foreach at 270M)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2),
                                  weight_decay=cfg.weight_decay, fused=device.type in ("cuda", "cpu"))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])

    train_inst = load_instances(task_names(cfg.tasks), cfg.data_dir)
    if cfg.val_tasks == "auto":
        val_names = [n for n in tasks.names("val") if cfg.tasks == "train" or tasks.TASKS[n].source == "synthetic"]
    else:
        val_names = task_names(cfg.val_tasks)
    val_inst = load_instances(val_names, cfg.data_dir)
    scfg = data.StreamConfig(seed=cfg.seed, p_drop=cfg.p_drop, max_len=cfg.max_len, window=cfg.window)
    stream = data.Stream(train_inst, tok, scfg, rank, world)
    if state is not None:
        stream.load_state_dict(state["stream"])
    steps = cfg.max_steps or math.ceil(cfg.epochs * stream.rows_per_epoch() / cfg.batch_rows)
    warmup = max(1, round(cfg.warmup_frac * steps))
    lr_at = lambda s: cfg.lr * min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))  # noqa
    # held-out validation rows: fixed once, split over ranks
    val_batch = None
    if val_inst and cfg.eval_rows:
        vstream = data.Stream(val_inst, tok, data.StreamConfig(seed=cfg.seed + 1, p_drop=cfg.p_drop,
                                                               max_len=cfg.max_len, window=cfg.eval_rows),
                              rank, world)
        val_batch = vstream.next_batch(max(1, cfg.eval_rows // world))[0]

    def val_loss():
        if val_batch is None:
            return float("nan")
        model.eval()
        tot = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad(), autocast:
            for r in range(0, len(val_batch["ids"]), cfg.micro_rows):
                nll, n = loss_sums(model, {k: v[r:r + cfg.micro_rows] for k, v in val_batch.items()}, device)
                tot += torch.tensor([nll.item(), n], dtype=torch.float64, device=device)
        if world > 1:
            dist.all_reduce(tot)
        model.train()
        return (tot[0] / tot[1]).item()

    out = Path(cfg.out_dir)
    if master:
        out.mkdir(parents=True, exist_ok=True)
    log_file = out / "log.jsonl"

    def log(rec):
        if master:
            with open(log_file, "a") as f:
                f.write(json.dumps(rec) + "\n")

    stop = {"signal": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("signal", True))
    peak = peak_flops(cfg, device)
    step = state["step"] if state is not None else 0
    say(f"model {init}: {n_params / 1e6:.0f}M params | tasks {cfg.tasks}: {len(train_inst)} train / "
        f"{len(val_inst)} held-out instances | {steps} steps x {cfg.batch_rows} rows x {cfg.max_len} tokens"
        f" | {world} rank(s), {device.type}, {cfg.dtype}{', fsdp' if cfg.fsdp else ''}")
    v0 = val_loss()
    say(f"held-out loss at step {step}: {v0:.4f}")
    log({"step": step, "val_loss": v0})
    from tqdm import tqdm
    bar = tqdm(total=steps, initial=step, disable=not master, dynamic_ncols=True)
    last_saved, t_log, tokens, flops, loss_acc = step, time.time(), 0, 0.0, []
    while step < steps:
        lr = lr_at(step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        batch, n_loss = stream.next_batch(cfg.micro_rows * accum)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for micro in range(accum):
            mb = {k: v[micro * cfg.micro_rows:(micro + 1) * cfg.micro_rows] for k, v in batch.items()}
            last = micro == accum - 1
            if cfg.fsdp:
                model.set_requires_gradient_sync(last)
                sync = nullcontext()
            else:
                sync = model.no_sync() if ddp and not last else nullcontext()
            with sync, autocast:
                nll, _ = loss_sums(model, mb, device)
                # ranks' gradients are averaged, so scale by world to get the global-batch mean
                (nll * world / n_loss).backward()
            total += nll.detach()
            flops += train_flops(c, mb)
            tokens += int((mb["seq"] >= 0).sum())
        if world > 1:
            dist.all_reduce(total)
        loss = (total / n_loss).item()
        if not math.isfinite(loss):
            say(f"\nstep {step}: loss is {loss}; stopping. The last good checkpoint stays in "
                f"{M.last_checkpoint(cfg.out_dir) or '(none yet)'}; lower --lr or check the data.")
            sys.exit(1)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_acc.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % cfg.log_every == 0 or step == steps:
            dt = time.time() - t_log
            rec = {"step": step, "loss": sum(loss_acc) / len(loss_acc), "lr": lr,
                   "grad_norm": float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm),
                   "tokens_per_s": tokens * world / dt, "mfu": flops / dt / peak if peak else None,
                   "fill": stream.real_tokens / max(1, stream.row_tokens)}
            log(rec)
            mfu = f" | mfu {rec['mfu']:.0%}" if rec["mfu"] is not None else ""
            bar.write(f"step {step}: loss {rec['loss']:.4f} | lr {lr:.2e} | {rec['tokens_per_s']:.0f} tok/s{mfu}")
            t_log, tokens, flops, loss_acc = time.time(), 0, 0.0, []
        if cfg.eval_every and step % cfg.eval_every == 0 and step < steps:
            v = val_loss()
            bar.write(f"held-out loss at step {step}: {v:.4f}")
            log({"step": step, "val_loss": v})
        flag = torch.tensor(float(stop["signal"]), device=device)
        if world > 1:  # every rank must stop at the same step
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if (cfg.save_every and step % cfg.save_every == 0 and step < steps) or flag.item():
            save_checkpoint(cfg, model, optimizer, stream, step, rank, world, tok_dir)
            last_saved = step
            if flag.item():
                say(f"\nSIGTERM: saved step {step} to {cfg.out_dir}/; continue with --resume")
                break
    bar.close()
    if step == steps:
        v1 = val_loss()
        log({"step": step, "val_loss": v1})
        if last_saved != step:
            save_checkpoint(cfg, model, optimizer, stream, step, rank, world, tok_dir)
        say(f"held-out loss: {v0:.4f} at the start, {v1:.4f} after {step} steps "
            f"({time.time() - t_start:.0f} s in all)")
        say(f"Spectrum-tuned {init} on {cfg.tasks} tasks -> {cfg.out_dir}/ (HF checkpoint). Next:\n"
            f"  python evaluate.py --ckpt {cfg.out_dir}\n"
            f"  python sample.py --ckpt {cfg.out_dir} --desc \"Board games\"")
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        train(parse_args(sys.argv[1:]))
    except (FileNotFoundError, ValueError, KeyError, tasks.MissingData) as e:
        # what a user can get wrong (checkpoint, tokenizer, task name, data, lengths): one line
        raise SystemExit(f"train.py: {e.args[0] if e.args else e}") from None
