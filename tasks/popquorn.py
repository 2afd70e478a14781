"""POPQUORN (Potato-Prolific dataset): per-annotator rewrites and ratings.

Only two of the four sub-tasks are available here (politeness_rating and question_answering are
too large for the snapshot): email_rewriting (2,346 rows; 80 rows with no user_id are dropped,
227 users) and offensiveness (13,036 rows, 262 users).

popquorn_individual: one instance per user, all of that user's rows; at most 100 users per
    sub-task (a seeded random choice among users with > 5 rows, as the reference), so 200
    instances. The demographics description is JSON (the reference printed a Python dict);
    empty fields (email_rewriting has no age) are left out.
popquorn_og_categorical: population level, the distinct source texts of each sub-task
    (emails to rewrite, comments to rate): 20 sequences of Geometric+Poisson(128) texts each.
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/Jiaxin-Pei/Potato-Prolific-Dataset"
EMAIL, OFFENSE = "popquorn/email_rewriting/raw_data.csv", "popquorn/offensiveness/raw_data.csv"
FILES = (EMAIL, OFFENSE)
DEMOGRAPHICS = ("gender", "race", "age", "occupation", "education")


@functools.lru_cache(maxsize=4)
def load(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _email(x):
    return Example(common.text(x["revised email"]), common.text(x["original email"]))


def _offense(x):
    return Example(str(int(float(x["offensiveness"]))), common.text(x["text"]))


# (sub-task, file, row -> example, options, descriptions; {d} = the user's demographics JSON)
SUBTASKS = [
    ("email_rewriting", EMAIL, _email, None, [
        "Your colleague is trying to draft an email and is asking for your help. Please help to "
        "rewrite the message to make it more polite and professional.",
        "The following are rewrites to make the email more polite and professional, all from "
        "the same individual.",
        "The following are rewrites to make the email more polite and professional, all from "
        "the same individual.\nIndividual demographics: {d}"]),
    ("offensiveness", OFFENSE, _offense, ["1", "2", "3", "4", "5"], [
        "Consider you read this comment on Reddit, how offensive do you think it is? (1-5)",
        "The following is a message that a user read. Please rate the message on a scale of 1 to "
        "5, where 1 is not offensive and 5 is very offensive.\nIndividual demographics: {d}"]),
]


def individual(seed=0, data_dir=None, max_users=100):
    root = common.root(data_dir, "popquorn_individual", FILES, URL)
    out = []
    for sub, file, make, options, descriptions in SUBTASKS:
        users = {}
        for x in load(str(root / file)):
            if not x["user_id"].strip():  # 80 email rows have no annotator: no person to group by
                continue
            users.setdefault(x["user_id"].strip(), []).append(x)
        ids = [u for u, rows in users.items() if len(rows) > 5]
        r = common.rng(seed, "popquorn_individual", sub)
        for u in [ids[i] for i in r.permutation(len(ids))[:max_users]]:
            rows = users[u]
            demo = dumps({k: rows[0][k].strip() for k in DEMOGRAPHICS if rows[0][k].strip()})
            descs = [d.replace("{d}", demo) for d in descriptions]
            out.append(Instance("popquorn_individual", descs, [make(x) for x in rows],
                                group=f"{sub}:{u}", options=options))
    return out


OG_DESCRIPTIONS = {
    "email_rewriting": ["Short informal emails and messages that people were asked to rewrite "
                        "to be more polite and professional.",
                        "Data to use as samples for this task: email_rewriting"],
    "offensiveness": ["Comments from Reddit that people were asked to rate for offensiveness.",
                      "Data to use as samples for this task: offensiveness"],
}


def og_categorical(seed=0, data_dir=None):
    root = common.root(data_dir, "popquorn_og_categorical", FILES, URL)
    out = []
    for sub, file, _, _, _ in SUBTASKS:
        key = "original email" if sub == "email_rewriting" else "text"
        texts = list(dict.fromkeys(common.text(x[key]) for x in load(str(root / file))))
        r = common.rng(seed, "popquorn_og_categorical", sub)
        out += [Instance("popquorn_og_categorical", OG_DESCRIPTIONS[sub], [Example(t) for t in s],
                         group=sub) for s in common.subsets(texts, r, 20, 128)]
    return out


DOWNLOAD = Download(urls={f: "https://raw.githubusercontent.com/Jiaxin-Pei/Potato-Prolific-"
                             "Dataset/HEAD/dataset/" + f.split("/", 1)[1] for f in FILES})
TASKS = [
    Task("popquorn_individual", "train", URL, instances=individual, files=FILES, download=DOWNLOAD,
         checked="real"),
    Task("popquorn_og_categorical", "train", URL, instances=og_categorical, files=FILES,
         download=DOWNLOAD, checked="real"),
]
