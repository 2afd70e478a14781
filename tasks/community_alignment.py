"""Community Alignment (Hugging Face facebook/community-alignment-dataset, split "filtered":
data/filtered_community_alignment.csv). Multilingual conversations: an annotator's first-turn
prompt, four model responses (first_turn_response_a..d), the preferred one
(first_turn_preferred_response: "response_a".."response_d"), an optional justification
(first_turn_feedback), the annotator's next prompt (second_turn_prompt), demographics
(annotator_*) and the assigned language (assigned_lang). All train.

As the reference, only the first 10,000 rows of the split are read, keeping rows with a first
prompt and a preferred response, and "<|end_of_text|>" is removed from the responses.

community_alignment_initial_prompt: per language, the distinct first prompts, shuffled and cut
    into chunks of Geometric+Poisson(32).
community_alignment_individual_reply: per annotator (>= 4 rows), {prompt, model_response} (JSON,
    the preferred response) -> the annotator's next prompt; chunks of Geometric+Poisson(25).
community_alignment_individual_preferences: per annotator (>= 4 rows), {prompt, response_a..d}
    (JSON) -> {preferred_response, justification} (JSON, justification null when none was
    given); chunks of Geometric+Poisson(25).
community_alignment_response: per language, distinct prompt -> JSON list of its four responses in
    a random order; chunks of 5.

Fixed from the reference implementation (tsor13/spectrum): rows without a second-turn prompt gave
the reply "None" (and a missing justification "NaN"); they are dropped here (a justification is
null), before the >= 4 rows rule.
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/facebook/community-alignment-dataset"
CSV = "data/filtered_community_alignment.csv"
FILES = (f"community_alignment/{CSV}",)
DOWNLOAD = Download(hub="facebook/community-alignment-dataset", hub_files=(CSV,),
                    hub_dir="community_alignment")
RESPONSES = [f"first_turn_response_{a}" for a in "abcd"]
DEMOGRAPHICS = {"age": "annotator_age", "gender": "annotator_gender",
                "education_level": "annotator_education_level",
                "annotator_political": "annotator_political", "ethnicity": "annotator_ethnicity",
                "country": "annotator_country"}


@functools.lru_cache(maxsize=2)
def load(path: str, first: int = 10_000) -> list[dict]:
    rows = hubfiles.columns(hubfiles.csv_rows(path), path, "annotator_id", "assigned_lang",
                            "first_turn_prompt", "first_turn_preferred_response",
                            "first_turn_feedback", "second_turn_prompt", *RESPONSES,
                            *DEMOGRAPHICS.values())
    out = []
    for i, r in enumerate(rows[:first], 2):
        if r["first_turn_prompt"].strip() and r["first_turn_preferred_response"].strip():
            if "first_turn_" + r["first_turn_preferred_response"] not in RESPONSES:
                raise ValueError(f"{path} line {i}: first_turn_preferred_response is "
                                 f"{r['first_turn_preferred_response']!r}, not response_a..d")
            r = {k: common.text(v or "") for k, v in r.items() if k is not None}
            for k in RESPONSES:
                r[k] = common.text(r[k].replace("<|end_of_text|>", ""))
            out.append(r)
    return out


def rows(name, data_dir):
    return load(str(common.root(data_dir, name, FILES, URL) / FILES[0]))


def _task(name, instances):
    return Task(name, "train", URL, instances=instances, files=FILES, download=DOWNLOAD,
                checked="fixture")


def by_language(xs, make) -> dict[str, list]:
    """Per language, make(row) for the first row of each distinct first prompt."""
    seen, out = set(), {}
    for x in xs:
        if x["first_turn_prompt"] not in seen:
            seen.add(x["first_turn_prompt"])
            out.setdefault(x["assigned_lang"], []).append(make(x))
    return out


def initial_prompt(seed=0, data_dir=None):
    name = "community_alignment_initial_prompt"
    out = []
    for lang, ex in by_language(rows(name, data_dir),
                                lambda x: Example(x["first_turn_prompt"])).items():
        r = common.rng(seed, name, lang)
        out += [Instance(name, [f"Generate a prompt for a language model in the following "
                                f"language: {lang}."], c, group=lang)
                for c in common.partition(ex, r, lambda r: common.gp(r, 32))]
    return out


def response(seed=0, data_dir=None):
    name = "community_alignment_response"
    r = common.rng(seed, name)

    def shuffled(x):
        responses = [x[k] for k in RESPONSES]
        return Example(dumps([responses[i] for i in r.permutation(4)]), x["first_turn_prompt"])

    out = []
    for lang, ex in by_language(rows(name, data_dir), shuffled).items():
        out += [Instance(name, ["You are a helpful assistant designed to help generate a list of 4 "
                                "diverse responses for a user to consider."], c, group=lang)
                for c in common.partition(ex, common.rng(seed, name, lang), 5)]
    return out


def by_annotator(xs, min_rows=4) -> dict[str, list[dict]]:
    people = {}
    for x in xs:
        people.setdefault(x["annotator_id"], []).append(x)
    return {a: xs for a, xs in people.items() if len(xs) >= min_rows}


def demographics(x) -> str:
    return dumps({k: x[c] for k, c in DEMOGRAPHICS.items() if x[c]})


def individual_reply(seed=0, data_dir=None):
    name = "community_alignment_individual_reply"
    xs = [x for x in rows(name, data_dir) if x["second_turn_prompt"]]
    out = []
    for a, mine in by_annotator(xs).items():
        ex = [Example(x["second_turn_prompt"], dumps({
                  "prompt": x["first_turn_prompt"],
                  "model_response": x["first_turn_" + x["first_turn_preferred_response"]]}))
              for x in mine]
        desc = "The following are user replies to a language model.\nUser demographics: " + \
            demographics(mine[0])
        r = common.rng(seed, name, a)
        out += [Instance(name, [desc], c, group=a)
                for c in common.partition(ex, r, lambda r: common.gp(r, 25))]
    return out


PREFERENCES = ("Given a prompt and a set of model responses, the user was tasked with selecting "
               "their most preferred response and an optional justification.")


def individual_preferences(seed=0, data_dir=None):
    name = "community_alignment_individual_preferences"
    out = []
    for a, mine in by_annotator(rows(name, data_dir)).items():
        ex = [Example(dumps({"preferred_response": x["first_turn_preferred_response"],
                             "justification": x["first_turn_feedback"] or None}),
                      dumps({"prompt": x["first_turn_prompt"]} |
                            {k.removeprefix("first_turn_"): x[k] for k in RESPONSES}))
              for x in mine]
        descs = [f"{PREFERENCES}\nUser demographics: {demographics(mine[0])}", PREFERENCES]
        r = common.rng(seed, name, a)
        out += [Instance(name, descs, c, group=a)
                for c in common.partition(ex, r, lambda r: common.gp(r, 25))]
    return out


TASKS = [
    _task("community_alignment_initial_prompt", initial_prompt),
    _task("community_alignment_individual_reply", individual_reply),
    _task("community_alignment_individual_preferences", individual_preferences),
    _task("community_alignment_response", response),
]
