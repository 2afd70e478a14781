"""Polis conversations (compdemocracy/openData): 20 digital town halls.

polis_vote: one instance per voter, all of that voter's votes: comment text -> Agree/Disagree/
    Pass. Votes come from votes.csv (long: comment-id, voter-id, vote with 1 = agree, -1 =
    disagree, 0 = pass; a voter who changed a vote keeps the latest one, by timestamp) or, where
    only that is present, from participants-votes.csv (wide: one row per participant, one
    column per comment id, empty = no vote), melted to the same rows. Here 17 conversations have
    votes (14 long, 3 wide). Voters with < 4 votes are dropped; at most 500 voters per
    conversation, a seeded random choice (the reference took the first 500 in file order).
polis_comment: the comments of each conversation (20), shuffled and cut into chunks of
    Geometric+Poisson(64) comments; every comment is in exactly one instance.
Comment filter (reference): drop empty comments, comments containing "test" with < 3 words,
and comments with < 4 words except in vtaiwan.uberx (Chinese text has no spaces).
Descriptions combine the conversation's topic and description (summary.csv: key,value rows,
no header) with a sentence about the votes or comments.
"""
import csv
import functools

from tasks import Download, Example, Instance, MissingData, Task
from tasks import common

URL = "https://github.com/compdemocracy/openData"
CONVERSATIONS = [
    "15-per-hour-seattle", "american-assembly.bowling-green",
    "austria-climate.2vkxcncppn.2022-07-07", "austria-climate.5twd2jsnkf.2022-08-08",
    "austria-climate.5tzfrp5eaa.2022-07-07", "austria-climate.7z7ejpbmv5.2022-08-08",
    "austria-climate.9xnndurbfm.2022-07-07", "bg2050-volunteers", "brexit-consensus",
    "canadian-electoral-reform", "football-concussions", "london.youth.policing",
    "march-on.operation-marchin-orders", "scoop-hivemind.affordable-housing",
    "scoop-hivemind.biodiversity", "scoop-hivemind.freshwater", "scoop-hivemind.taxes",
    "scoop-hivemind.ubi", "ssis.land-bank-farmland.2rumnecbeh.2021-08-01", "vtaiwan.uberx",
]
FILES = tuple(f"polis/{c}/{f}" for c in CONVERSATIONS for f in ("comments.csv", "summary.csv"))
VOTE = {1: "Agree", -1: "Disagree", 0: "Pass"}


def keep_comment(text: str, conversation: str) -> bool:
    n = len(text.split())
    if n == 0 or ("test" in text.lower() and n < 3):
        return False
    return n >= 4 or conversation == "vtaiwan.uberx"


@functools.lru_cache(maxsize=64)
def load(folder: str):
    """(summary dict, {comment-id: text}) of one conversation folder, comments filtered."""
    conv = folder.rsplit("/", 1)[-1]
    with open(f"{folder}/summary.csv", newline="", encoding="utf-8") as f:
        summary = {row[0].strip(): common.text(row[1]) for row in csv.reader(f) if len(row) >= 2}
    with open(f"{folder}/comments.csv", newline="", encoding="utf-8") as f:
        comments = {x["comment-id"]: common.text(x["comment-body"]) for x in csv.DictReader(f)
                    if keep_comment(x["comment-body"] or "", conv)}
    return summary, comments


@functools.lru_cache(maxsize=64)
def load_votes(folder: str):
    """{voter: {comment-id: vote}} for the kept comments, in order of first appearance, or None
    when the folder has no vote file."""
    comments = load(folder)[1]
    try:
        with open(f"{folder}/votes.csv", newline="", encoding="utf-8") as f:
            latest = {}  # (voter, comment) -> (timestamp, vote)
            for x in csv.DictReader(f):
                if x["vote"] != "" and x["comment-id"] in comments:
                    key, t = (x["voter-id"], x["comment-id"]), int(x["timestamp"])
                    if key not in latest or t >= latest[key][0]:
                        latest[key] = (t, int(float(x["vote"])))
    except FileNotFoundError:
        return melt(folder, comments)
    votes = {}
    for (voter, cid), (_, v) in latest.items():
        votes.setdefault(voter, {})[cid] = v
    return votes


def melt(folder: str, comments: dict):
    """participants-votes.csv (one row per participant, one column per comment id) -> votes."""
    try:
        with open(f"{folder}/participants-votes.csv", newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            cols = [(j, c) for j, c in enumerate(next(rows)) if c in comments]
            votes = {}
            for row in rows:
                v = {c: int(float(row[j])) for j, c in cols if j < len(row) and row[j] != ""}
                if v:
                    votes[row[0]] = v
            return votes
    except FileNotFoundError:
        return None


def descriptions(summary: dict, sentences: list[str]) -> list[str]:
    topic, about = summary.get("topic", ""), summary.get("conversation-description", "")
    prefixes = [""]
    prefixes += [f"Topic: {topic}"] if topic else []
    prefixes += [f"Description: {about}"] if about else []
    if topic and about:
        prefixes += [f"Topic: {topic}\nDescription: {about}",
                     f"Description: {about}\nTopic: {topic}"]
    out = [f"{p}\n{s}".strip() for s in sentences for p in prefixes]
    out += [f"{s}\n{p}" for s in sentences for p in prefixes if p]
    return out


VOTE_SENTENCES = [
    "The following are votes, all from the same individual. Options: Agree, Disagree, Pass",
    "The following are votes from a digital town hall.\nOptions: Agree, Disagree, Pass",
    "Here are someone's votes on a digital town hall.\nOptions: Agree, Disagree, Pass",
    "Here are the votes from someone on a digital town hall.\nPossible responses: Agree, "
    "Disagree, Pass",
]
COMMENT_SENTENCES = [
    "The following are proposed comments.",
    "The following are comments from a digital town hall.",
    "The following are proposed statements.",
    "There will be statements for people to vote on.",
    "Comments ranging from a phrase up to a full paragraph.",
    "Opinion statements ranging from a phrase up to a full paragraph.",
    "Inputs from users in a digital town hall.",
]


def votes(seed=0, data_dir=None, max_voters=500, min_votes=4):
    root = common.root(data_dir, "polis_vote", FILES, URL)
    out, found = [], 0
    for conv in CONVERSATIONS:
        summary, comments = load(str(root / "polis" / conv))
        by_voter = load_votes(str(root / "polis" / conv))
        if by_voter is None:  # no vote file for this conversation (3 of 20 in the snapshot)
            continue
        found += 1
        descs = descriptions(summary, VOTE_SENTENCES)
        voters = [v for v, vs in by_voter.items() if len(vs) >= min_votes]
        r = common.rng(seed, "polis_vote", conv)
        for i in sorted(r.permutation(len(voters))[:max_voters]):
            vs = by_voter[voters[i]]
            out.append(Instance("polis_vote", descs,
                                [Example(VOTE[v], comments[c]) for c, v in vs.items()],
                                group=f"{conv}:{voters[i]}", options=list(VOTE.values())))
    if not found:
        raise MissingData(f"task 'polis_vote' needs polis/<conversation>/votes.csv (or "
                          f"participants-votes.csv) under {root}/ (get it from {URL}; set "
                          f"--data_dir or SPECTRUM_DATA to its folder)")
    return out


def comments(seed=0, data_dir=None):
    root = common.root(data_dir, "polis_comment", FILES, URL)
    out = []
    for conv in CONVERSATIONS:
        summary, texts = load(str(root / "polis" / conv))
        descs = descriptions(summary, COMMENT_SENTENCES)
        r = common.rng(seed, "polis_comment", conv)
        for chunk in common.partition(list(texts.values()), r, lambda r: common.gp(r, 64)):
            out.append(Instance("polis_comment", descs, [Example(t) for t in chunk], group=conv))
    return out


DOWNLOAD = Download(urls={
    f"polis/{c}/{f}": f"https://raw.githubusercontent.com/compdemocracy/openData/HEAD/{c}/{f}"
    for c in CONVERSATIONS for f in ("comments.csv", "summary.csv", "votes.csv")})
TASKS = [
    Task("polis_vote", "train", URL, instances=votes, files=FILES, download=DOWNLOAD,
         checked="real"),
    Task("polis_comment", "train", URL, instances=comments, files=FILES, download=DOWNLOAD,
         checked="real"),
]
