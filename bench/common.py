"""What every benchmark prints beside its figures, and the pieces they share.

Speed depends on the CPU class more than on anything here: with native bf16 (AVX512-BF16, AMX) a
bf16 matmul is ~4x fp32; without it (AVX2-only CPUs) bf16 is emulated ~50x slower than fp32. So
every figure is printed with the CPU's capability and the dtype it was measured in.
"""
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import checkpoint  # noqa: E402
import data  # noqa: E402
import tasks  # noqa: E402
import train  # noqa: E402


def header(what, dtype):
    """One line: what is measured, the CPU class, the dtype, threads and versions."""
    try:
        import transformers
        tv = transformers.__version__
    except ImportError:
        tv = "-"
    return (f"{what} | cpu {checkpoint.cpu_description()}, dtype {str(dtype).removeprefix('torch.')}, "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}, transformers {tv}, "
            f"load {os.getloadavg()[0]:.1f}")


def add_step_shape(ap):
    """--rows and --accum, defaulting to the main job's step (train.py's micro_rows and batch_rows)."""
    default = train.TrainConfig()
    ap.add_argument("--rows", type=int, default=default.micro_rows, help="rows per micro-step")
    ap.add_argument("--accum", type=int, default=default.batch_rows // default.micro_rows,
                    help="micro-steps per optimizer step")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_ratio(ours, theirs):
    """Medians of two lists of timings (seconds) and theirs / ours."""
    a, b = statistics.median(ours), statistics.median(theirs)
    return a, b, b / a


def offline_batches(tok, rows, max_len, n, seed=0):
    """n batches of `rows` packed rows drawn from the offline training tasks (the main job's data)."""
    instances = [i for name in train.task_names("offline")
                 for i in tasks.get(name).instances(seed=0, data_dir=tasks.data_dir())]
    instances, _ = data.drop_long_examples(instances, tok, max_len)
    stream = data.Stream(instances, tok, data.StreamConfig(max_len=max_len, window=64, seed=seed))
    return [stream.next_batch(rows)[0] for _ in range(n)]
