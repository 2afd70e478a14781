"""Chatbot Arena conversations (Hugging Face lmsys/chatbot_arena_conversations, train split: one
parquet file; gated: log in and accept the terms on the dataset page). Each row is one battle: a
judge's opening prompt, the first responses of two models (conversation_a/b: lists of
{content, role} turns), and the judge's vote (winner: model_a, model_b, tie, tie (bothbad)).
Only judges with >= 4 battles are kept, as the reference does. All three tasks are held out
(split "val").

chatbotarena_prompts: one instance per judge, a seeded random 1000 judges: a random 100 (or all,
    if fewer) of the judge's opening prompts.
chatbotarena_individual_prefs: {opening_prompt, model_a_response, model_b_response} (JSON) ->
    a / b / tie / bothbad; a seeded random 1000 judges, each judge's battles cut into chunks of
    Geometric+Poisson(16) (every battle in exactly one instance, one judge per instance).
chatbotarena_assistant: per model, opening prompt -> that model's first response, over every
    battle it took part in (as model a or b), cut into chunks of Geometric+Poisson(32).

Fixed from the reference implementation (tsor13/spectrum): the preference description listed the
options as a numpy array repr in data order; it lists them plainly here. The reference took the
first 1000 judges in file order for the preferences; a seeded random choice here.
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/lmsys/chatbot_arena_conversations"
PARQUET = "data/train-00000-of-00001-cced8514c7ed782a.parquet"
FILES = (f"chatbotarena/{PARQUET}",)
GATED = f"{URL} (gated: accept its terms there, then `huggingface-cli login`)"
DOWNLOAD = Download(hub="lmsys/chatbot_arena_conversations", hub_files=(PARQUET,),
                    hub_dir="chatbotarena",
                    manual=f"Gated: log in at {URL} and agree to the dataset's terms of use, run "
                           "`huggingface-cli login`, then `python -m tasks download` (or put "
                           f"{PARQUET} under <data_dir>/chatbotarena/).")
WINNER = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "bothbad"}


@functools.lru_cache(maxsize=2)
def load(path: str, min_battles: int = 4) -> list[dict]:
    """Battles of judges with >= min_battles battles, in file order, as flat dicts."""
    rows = hubfiles.columns(hubfiles.parquet(path), path, "judge", "winner", "model_a", "model_b",
                            "conversation_a", "conversation_b")
    out = []
    for r in rows:
        a, b = r["conversation_a"], r["conversation_b"]
        if len(a) < 2 or len(b) < 2 or r["winner"] not in WINNER:
            raise ValueError(f"{path}: battle {r.get('question_id')} has no opening exchange or "
                             f"an unknown winner {r['winner']!r}")
        out.append({"judge": r["judge"], "model_a": r["model_a"], "model_b": r["model_b"],
                    "winner": WINNER[r["winner"]], "prompt": common.text(str(a[0]["content"])),
                    "a": common.text(str(a[1]["content"])), "b": common.text(str(b[1]["content"]))})
    n = {}
    for r in out:
        n[r["judge"]] = n.get(r["judge"], 0) + 1
    return [r for r in out if n[r["judge"]] >= min_battles]


def battles(name, data_dir) -> list[dict]:
    return load(str(common.root(data_dir, name, FILES, GATED) / FILES[0]))


def by_judge(name, data_dir) -> dict[str, list[dict]]:
    judges = {}
    for b in battles(name, data_dir):
        judges.setdefault(b["judge"], []).append(b)
    return judges


def prompts(seed=0, data_dir=None, max_judges=1000, per_judge=100):
    name = "chatbotarena_prompts"
    judges = by_judge(name, data_dir)
    r = common.rng(seed, name)
    ids = list(judges)
    out = []
    for i in sorted(r.permutation(len(ids))[:max_judges]):
        mine = judges[ids[i]]
        pick = r.permutation(len(mine))[:per_judge]
        out.append(Instance(name, ["Language model prompt"],
                            [Example(mine[j]["prompt"]) for j in pick], group=ids[i]))
    return out


PREFS_DESCRIPTION = (
    "The following are preferences for a single individual. They will prompt a language model "
    "(opening_prompt), and then will compare the two responses (model_a_response and "
    "model_b_response). The user will then rate the winner, with one of the following options: "
    "a, b, tie, bothbad")


def preferences(seed=0, data_dir=None, max_judges=1000):
    name = "chatbotarena_individual_prefs"
    judges = by_judge(name, data_dir)
    r = common.rng(seed, name)
    ids = list(judges)
    out = []
    for i in sorted(r.permutation(len(ids))[:max_judges]):
        examples = [Example(b["winner"], dumps({"opening_prompt": b["prompt"],
                                                "model_a_response": b["a"],
                                                "model_b_response": b["b"]}))
                    for b in judges[ids[i]]]
        out += [Instance(name, [PREFS_DESCRIPTION], c, group=ids[i], options=list(WINNER.values()))
                for c in common.partition(examples, r, lambda r: common.gp(r, 16))]
    return out


ASSISTANT = ("You will be given opening_prompts to a language model (could be anywhere from pretty "
             "good to really good). Your job is to predict what the language model will say in "
             "response to the opening prompt. All responses are from the same model.")


def assistant(seed=0, data_dir=None):
    name = "chatbotarena_assistant"
    by_model = {}
    for b in battles(name, data_dir):
        by_model.setdefault(b["model_a"], []).append(Example(b["a"], b["prompt"]))
        by_model.setdefault(b["model_b"], []).append(Example(b["b"], b["prompt"]))
    out = []
    for model in sorted(by_model):
        r = common.rng(seed, name, model)
        out += [Instance(name, [ASSISTANT, f"{ASSISTANT}\nModel: {model}"], c, group=model)
                for c in common.partition(by_model[model], r, lambda r: common.gp(r, 32))]
    return out


TASKS = [
    Task(n, "val", URL, instances=f, files=FILES, download=DOWNLOAD, checked="fixture")
    for n, f in (("chatbotarena_prompts", prompts),
                 ("chatbotarena_individual_prefs", preferences),
                 ("chatbotarena_assistant", assistant))
]
