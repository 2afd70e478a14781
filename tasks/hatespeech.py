"""Toxicity ratings with rater perspectives (Kumar et al. 2021, "Designing Toxic Content
Classification for a Diversity of Perspectives"), the version with worker hashes that the authors
share on request (the public download has no rater ids).

File: hatespeech/classified_data_final_w_worker_hash.json, JSON Lines, one comment per line:
{"comment_id", "comment", "ratings": [{"toxic_score": 0..4, "is_profane", "is_threat",
"is_identity_attack", "is_insult", "is_sexual_harassment", "fine_to_see_online",
"remove_from_online", <the worker hash and the rater's demographic answers>}, ...]}.

hatespeech_individual (train): one instance per rater, comment -> toxic score "0".."4"; at most
1000 raters (a seeded random choice; the reference took the first 1000 in file order), each with
Geometric+Poisson(128) of their ratings. A rater is everything in a rating that is not one of the
eight rating fields (worker hash plus demographics: some worker hashes come with more than one set
of demographics, so the reference keyed raters by the whole set, and so do we).
Fixed: the reference's rater ids were Python hash() values of those fields, which change from
process to process; ours are a SHA-1 of the fields as canonical JSON, the same everywhere.
"""
import functools
import hashlib

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://data.esrg.stanford.edu/study/toxicity-perspectives"
FILE = "hatespeech/classified_data_final_w_worker_hash.json"
DOWNLOAD = Download(manual=(
    "Request the toxicity-perspectives data *with worker hashes* from its authors (Deepak Kumar et "
    "al.; see https://data.esrg.stanford.edu/study/toxicity-perspectives and describe your use "
    "case; the file downloadable there has no rater ids). Place the file you receive at "
    f"<data_dir>/{FILE}."))
RATING_FIELDS = {"toxic_score", "is_profane", "is_threat", "is_identity_attack", "is_insult",
                 "is_sexual_harassment", "fine_to_see_online", "remove_from_online"}
DESCRIPTIONS = ["Given a comment, predict the toxicity score from 0 to 4 (0 is not toxic, 4 is very "
                "toxic)."]
OPTIONS = ["0", "1", "2", "3", "4"]


def rater_id(rating: dict) -> str:
    """A stable id of the rater: SHA-1 of the non-rating fields, sorted, as JSON."""
    fields = sorted((k, v) for k, v in rating.items() if k not in RATING_FIELDS)
    return hashlib.sha1(dumps(fields).encode()).hexdigest()[:16]


def score(v) -> str | None:
    """"0".."4" from a whole-number score (a number, or its text), else None."""
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return str(int(f)) if f.is_integer() else None


@functools.lru_cache(maxsize=2)
def load(path: str) -> dict[str, list[Example]]:
    """{rater id: [Example(score, comment)]}, raters in order of first appearance."""
    raters = {}
    for i, x in common.jsonl(path):
        try:
            comment, ratings = common.text(x["comment"]), x["ratings"]
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{path} line {i}: not a comment record with 'comment' and "
                             f"'ratings' ({type(e).__name__}: {e})") from None
        for rating in ratings:
            s = score(rating.get("toxic_score"))
            if s is not None and comment:
                raters.setdefault(rater_id(rating), []).append(Example(s, comment))
    return raters


def individual(seed=0, data_dir=None, max_raters=1000):
    raters = load(str(common.root(data_dir, "hatespeech_individual", (FILE,), URL) / FILE))
    ids = list(raters)
    r = common.rng(seed, "hatespeech_individual")
    out = []
    for rid in [ids[i] for i in r.permutation(len(ids))[:max_raters]]:
        own = raters[rid]
        examples = [own[i] for i in r.permutation(len(own))[:common.gp(r, 128)]]
        out.append(Instance("hatespeech_individual", DESCRIPTIONS, examples, group=rid,
                            options=OPTIONS))
    return out


TASKS = [Task("hatespeech_individual", "train", URL, instances=individual, files=(FILE,),
              download=DOWNLOAD, checked="fixture")]
