"""HelpSteer2 (Hugging Face nvidia/HelpSteer2, train split: train.jsonl.gz) turned into
semi-synthetic preference raters. Each row is a prompt, one response and its 0-4 scores for
helpfulness, correctness, coherence, complexity, verbosity. Train.

helpsteer: 500 simulated users. User i has weights w ~ U(0,1)^5 - (.05, .05, .05, .5, .5) (so
    complexity and verbosity may be disliked) and judges 40 random prompts (without
    replacement), each with its first two responses in file order (prompts with fewer than two
    are skipped): {prompt, response1, response2} (JSON) -> "1" if w . scores1 > w . scores2,
    else "2". Three descriptions; the third reveals w (2 decimals, JSON).

Fixed from the reference implementation (tsor13/spectrum): the third description read "User
descriptionities:" followed by a Python dict; it reads "User preferences:" and JSON here.
"""
import functools

import numpy as np

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/nvidia/HelpSteer2"
FILES = ("helpsteer2/train.jsonl.gz",)
DOWNLOAD = Download(hub="nvidia/HelpSteer2", hub_files=("train.jsonl.gz",), hub_dir="helpsteer2")
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
SHIFT = np.array([0.05, 0.05, 0.05, 0.5, 0.5])


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[tuple[str, str, str, np.ndarray, np.ndarray]]:
    """(prompt, response1, response2, scores1, scores2): each prompt's first two responses."""
    by_prompt = {}
    for r in hubfiles.columns(hubfiles.jsonl(path), path, "prompt", "response", *ATTRIBUTES):
        by_prompt.setdefault(r["prompt"], []).append(r)
    out = []
    for p, rs in by_prompt.items():
        if len(rs) >= 2:
            a, b = rs[0], rs[1]
            out.append((common.text(p), common.text(a["response"]), common.text(b["response"]),
                        np.array([a[k] for k in ATTRIBUTES], float),
                        np.array([b[k] for k in ATTRIBUTES], float)))
    return out


def instances(seed=0, data_dir=None, n_users=500, per_user=40):
    name = "helpsteer"
    pairs = load(str(common.root(data_dir, name, FILES, URL) / FILES[0]))
    r = common.rng(seed, name)
    out = []
    for i in range(n_users):
        w = r.random(5) - SHIFT
        shown = {k: round(float(v), 2) + 0.0 for k, v in zip(ATTRIBUTES, w)}  # + 0.0: no "-0.0"
        examples = [Example("1" if w @ s1 > w @ s2 else "2",
                            dumps({"prompt": p, "response1": a, "response2": b}))
                    for p, a, b, s1, s2 in (pairs[j] for j in r.permutation(len(pairs))[:per_user])]
        out.append(Instance(name, [
            "The following are given: prompt, response1, response2. You must generate the winner.",
            JUDGE,
            f"{JUDGE}\nUser preferences: {dumps(shown)}"], examples, group=f"user{i}",
            options=["1", "2"]))
    return out


JUDGE = ("The following are ratings from the same individual, who was asked to judge two language "
         "model outputs written by someone else. Generate the winner.")

TASKS = [Task("helpsteer", "train", URL, instances=instances, files=FILES, download=DOWNLOAD,
              checked="fixture")]
