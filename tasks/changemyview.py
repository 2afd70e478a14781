"""Reddit r/ChangeMyView threads (Zenodo record 3778298): posts, titles and scores (train).

File: changemyview/threads.jsonl.bz2 as published (or threads.jsonl, decompressed, as the
reference keeps it), one thread per line with title, selftext, score, num_comments and comments
(a list of {body, score, ...}).

As the reference: a random sample of 10,000 threads (reservoir sampling in one pass; only the
sampled lines are parsed), the footnote line CMV's bot appends ("> *...This is a footnote...")
removed from the post body, then threads kept whose title and body are not empty, "[deleted]" or
"[removed]", with more than 4 comments and at least one comment with a body and a score.
A post is title + "\n\n" + body.

changemyview_categories: two sub-tasks over the kept threads, each the distinct values shuffled
    and cut into chunks of Geometric+Poisson(16) (every value in exactly one instance): posts,
    and titles.
changemyview_posts: three conditional sub-tasks, each the threads shuffled and cut into chunks of
    Geometric+Poisson(16), at most 500 chunks: title -> body, body -> title, and
    json{title, selftext} -> score.
"""
import bz2
import functools
import json
import re

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://zenodo.org/records/3778298"
FILE = "changemyview/threads.jsonl.bz2"
PLAIN = "changemyview/threads.jsonl"
DOWNLOAD = Download(urls={FILE: f"{URL}/files/threads.jsonl.bz2?download=1"})
SAMPLE = 10_000
FOOTNOTE = re.compile(r"^(?:>|&gt;)\s*\*.*?This is a footnote.*?$\n?", re.M | re.I)
GONE = {"", "[deleted]", "[removed]"}


def path_of(data_dir, task: str) -> str:
    """The decompressed file if there, else the published .bz2 (MissingData names the .bz2)."""
    r = common.data_dir(data_dir)
    if (r / PLAIN).exists():
        return str(r / PLAIN)
    return str(common.root(data_dir, task, (FILE,), URL) / FILE)


def reservoir(lines, k: int, r) -> list:
    """k items chosen uniformly at random from an iterable of unknown length, in one pass."""
    out = []
    for i, line in enumerate(lines):
        if i < k:
            out.append(line)
        else:
            j = int(r.integers(0, i + 1))
            if j < k:
                out[j] = line
    return out


def keep(x: dict) -> dict | None:
    """The thread's title, body and score if it passes the filters, else None."""
    title = x.get("title") if isinstance(x.get("title"), str) else ""
    body = x.get("selftext") if isinstance(x.get("selftext"), str) else ""
    body = FOOTNOTE.sub("", body)
    if title.strip() in GONE or body.strip() in GONE or not (x.get("num_comments") or 0) > 4:
        return None
    if not any(isinstance(c, dict) and isinstance(c.get("body"), str) and c["body"] not in GONE
               and c.get("score") is not None for c in x.get("comments") or []):
        return None
    return {"title": common.text(title), "selftext": common.text(body), "score": x.get("score")}


@functools.lru_cache(maxsize=2)
def threads(path: str, seed: int) -> list[dict]:
    opener = bz2.open if path.endswith(".bz2") else open
    with opener(path, "rt", encoding="utf-8") as f:
        sample = reservoir((line for line in f if line.strip()), SAMPLE,
                           common.rng(seed, "changemyview"))
    out = []
    for line in sample:
        try:
            x = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: a line is not JSON ({e.msg})") from None
        if isinstance(x, dict) and (t := keep(x)) is not None:
            out.append(t)
    return out


def _chunks(name, seed, examples, descriptions, group, max_chunks=None):
    r = common.rng(seed, name, group)
    chunks = common.partition(examples, r, lambda r: common.gp(r, 16))[:max_chunks]
    return [Instance(name, descriptions, c, group=group) for c in chunks]


def categories(seed=0, data_dir=None):
    name = "changemyview_categories"
    ts = threads(path_of(data_dir, name), seed)
    posts = list(dict.fromkeys(f"{t['title']}\n\n{t['selftext']}" for t in ts))
    titles = list(dict.fromkeys(t["title"] for t in ts))
    return (_chunks(name, seed, [Example(p) for p in posts],
                    ["Posts about which one might want to change their view"], "posts")
            + _chunks(name, seed, [Example(t) for t in titles],
                      ["Post titles about which one might want to change their view"], "titles"))


def posts(seed=0, data_dir=None, max_chunks=500):
    name = "changemyview_posts"
    ts = threads(path_of(data_dir, name), seed)
    scored = [t for t in ts if isinstance(t["score"], int) and not isinstance(t["score"], bool)]
    return (_chunks(name, seed, [Example(t["selftext"], t["title"]) for t in ts],
                    ["The post that matches the title"], "post_from_title", max_chunks)
            + _chunks(name, seed, [Example(t["title"], t["selftext"]) for t in ts],
                      ["The title that matches the post"], "title_from_post", max_chunks)
            + _chunks(name, seed, [Example(str(t["score"]), dumps({"title": t["title"],
                                                                   "selftext": t["selftext"]}))
                                   for t in scored],
                      ["The score (upvotes - downvotes) on the post"], "score_from_post",
                      max_chunks))


TASKS = [
    Task("changemyview_categories", "train", URL, instances=categories, files=(FILE,),
         download=DOWNLOAD, checked="fixture"),
    Task("changemyview_posts", "train", URL, instances=posts, files=(FILE,), download=DOWNLOAD,
         checked="fixture"),
]
