"""PRISM (Hugging Face HannahRoseKirk/prism-alignment: conversations.jsonl and survey.jsonl).
1,500 surveyed participants; each conversation starts from one of three conversation types, an
opening prompt, and four models' first responses that the participant scored (1-100) and chose
from (conversation_history: turns with role, content, turn, within_turn_id, score, if_chosen).
All train.

prism_prompts: conversation-type instruction -> opening prompt, over all conversations,
    shuffled and cut into chunks of Geometric+Poisson(128).
prism_prompts_individual: the same, per participant (those in the survey), each participant's
    conversations cut into chunks of Geometric+Poisson(96); one description names the
    participant's demographics (age, gender, education, employment, country of residence,
    religion, from the survey).
prism_individual_preferences: {opening_prompt, response_a..d} (JSON, the first four scored
    first-turn responses in within_turn_id order) -> {chosen_response (a-d), score_a..d} (JSON);
    conversations without four scored responses or without a chosen one among them are skipped,
    and so are participants left with < 2 conversations. Chunks of Geometric+Poisson(20) per
    participant.

Fixed from the reference implementation (tsor13/spectrum): the preference description ended
with a literal "User demographics: {demographics}" (a missing f-string) and read "a user game
to"; it names the participant's demographics and reads "gave" here.
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/HannahRoseKirk/prism-alignment"
CONVERSATIONS, SURVEY = "prism/conversations.jsonl", "prism/survey.jsonl"
DOWNLOAD = Download(hub="HannahRoseKirk/prism-alignment",
                    hub_files=("conversations.jsonl", "survey.jsonl"), hub_dir="prism")
TYPES = {  # the instructions participants saw for each conversation type
    "unguided": "Ask, request or talk to the model about anything. It is up to you!",
    "values guided": "Ask, request or talk to the model about something important to you or that "
                     "represents your values. This could be related to work, religion, family and "
                     "relationship, politics or culture",
    "controversy guided": "Ask, request or talk to the model about something controversial or "
                          "where people would disagree in your community, culture or country.",
}
LETTERS = "abcd"


@functools.lru_cache(maxsize=2)
def load_conversations(path: str) -> list[dict]:
    rows = hubfiles.columns(hubfiles.jsonl(path), path, "user_id", "conversation_type",
                            "opening_prompt", "conversation_history")
    return [r for r in rows
            if r["conversation_type"] in TYPES and (r["opening_prompt"] or "").strip()]


@functools.lru_cache(maxsize=2)
def load_demographics(path: str) -> dict[str, str]:
    """user_id -> "Age: ...; Gender: ...; ..." (fields the participant left empty are skipped)."""
    out = {}
    for r in hubfiles.columns(hubfiles.jsonl(path), path, "user_id", "age", "gender"):
        location, religion = r.get("location") or {}, r.get("religion") or {}
        parts = [("Age", r.get("age")), ("Gender", r.get("gender")),
                 ("Education", r.get("education")), ("Employment", r.get("employment_status")),
                 ("Country", location.get("reside_country")),
                 ("Religion", religion.get("simplified"))]
        out[r["user_id"]] = "; ".join(f"{k}: {v}" for k, v in parts if v not in (None, ""))
    return out


def conversations(name, data_dir) -> list[dict]:
    root = common.root(data_dir, name, (CONVERSATIONS,), URL)
    return load_conversations(str(root / CONVERSATIONS))


def surveyed(name, data_dir) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """{user_id: conversations} of the participants in the survey (an inner join, as the
    reference), and their demographics."""
    root = common.root(data_dir, name, (CONVERSATIONS, SURVEY), URL)
    demographics = load_demographics(str(root / SURVEY))
    users = {}
    for r in load_conversations(str(root / CONVERSATIONS)):
        if r["user_id"] in demographics:
            users.setdefault(r["user_id"], []).append(r)
    return users, demographics


def opening(r) -> Example:
    return Example(common.text(r["opening_prompt"]), TYPES[r["conversation_type"]])


def prompts(seed=0, data_dir=None):
    name = "prism_prompts"
    examples = [opening(r) for r in conversations(name, data_dir)]
    chunks = common.partition(examples, common.rng(seed, name), lambda r: common.gp(r, 128))
    return [Instance(name, ["Generate a request to ask a language model, according to the "
                            "conversation type description."], c) for c in chunks]


def prompts_individual(seed=0, data_dir=None):
    name = "prism_prompts_individual"
    users, demographics = surveyed(name, data_dir)
    out = []
    for user, convs in users.items():
        descs = ["Generate opening prompts for conversations (all same individual)"]
        if demographics[user]:
            descs.append(f"Generate opening prompts for conversations given user demographics:\n\n"
                         f"{demographics[user]} (all same individual)")
        chunks = common.partition([opening(x) for x in convs], common.rng(seed, name, user),
                                  lambda r: common.gp(r, 96))
        out += [Instance(name, descs, c, group=user) for c in chunks]
    return out


def first_turn(r) -> Example | None:
    """The conversation's four scored first-turn responses and the choice among them, or None."""
    responses = sorted((t for t in r["conversation_history"] or []
                        if t.get("role") == "model" and t.get("turn") == 0
                        and "score" in t and "if_chosen" in t),
                       key=lambda t: t.get("within_turn_id") or 0)[:4]
    if len(responses) < 4 or any(t["score"] is None for t in responses):
        return None
    chosen = [LETTERS[i] for i, t in enumerate(responses) if t["if_chosen"]]
    if not chosen:
        return None
    inp = {"opening_prompt": common.text(r["opening_prompt"])}
    inp |= {f"response_{a}": common.text(t["content"]) for a, t in zip(LETTERS, responses)}
    out = {"chosen_response": chosen[-1]}
    out |= {f"score_{a}": int(t["score"]) for a, t in zip(LETTERS, responses)}
    return Example(dumps(out), dumps(inp))


PREFERENCES = ("The following is a prompt a user gave to a chatbot, along with 4 responses. They "
               "were asked to choose their preferred response and rate the responses on a scale of "
               "0 to 100, where 100 is the most preferred. The responses were labeled A, B, C, D.")


def preferences(seed=0, data_dir=None, min_conversations=2):
    name = "prism_individual_preferences"
    users, demographics = surveyed(name, data_dir)
    out = []
    for user, convs in sorted(users.items()):
        examples = [e for e in map(first_turn, convs) if e is not None]
        if len(examples) < min_conversations:
            continue
        desc = PREFERENCES
        if demographics[user]:
            desc += f"\nUser demographics: {demographics[user]}"
        r = common.rng(seed, name, user)
        out += [Instance(name, [desc], c, group=user)
                for c in common.partition(examples, r, lambda r: common.gp(r, 20))]
    return out


TASKS = [
    Task("prism_prompts", "train", URL, instances=prompts, files=(CONVERSATIONS,),
         download=DOWNLOAD, checked="fixture"),
    Task("prism_prompts_individual", "train", URL, instances=prompts_individual,
         files=(CONVERSATIONS, SURVEY), download=DOWNLOAD, checked="fixture"),
    Task("prism_individual_preferences", "train", URL, instances=preferences,
         files=(CONVERSATIONS, SURVEY), download=DOWNLOAD, checked="fixture"),
]
