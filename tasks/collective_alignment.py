"""Collective Alignment 1 (Hugging Face openai/collective-alignment-1: configs "comparisons" =
comparisons.jsonl and "merged_comparison_annotators" = merged_comparisons_annotators.jsonl).
Each comparison is a prompt (prompt.messages) with four candidate responses (responses: items
with response_index "A".."D" and messages); each merged row is one annotator's assessment of one
prompt: personal and world rankings with rationales, responses flagged unacceptable, importance,
representativeness, subjectivity, and the annotator's demographics. Train.

collective_alignment_individual: one instance per annotator with >= 3 assessments (all of them):
    {conversation (the prompt's user messages, one per line), response_a..d} (JSON) ->
    {personal_ranking, world_ranking, personal_rationale, world_rationale,
    unacceptable_responses ("|"-joined), unacceptable_rationale, importance, representativeness,
    subjectivity} (JSON); the description names the annotator's demographics (JSON).
"""
import functools

from tasks import Download, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/openai/collective-alignment-1"
COMPARISONS = "collective_alignment/comparisons.jsonl"
MERGED = "collective_alignment/merged_comparisons_annotators.jsonl"
FILES = (COMPARISONS, MERGED)
DOWNLOAD = Download(hub="openai/collective-alignment-1",
                    hub_files=("comparisons.jsonl", "merged_comparisons_annotators.jsonl"),
                    hub_dir="collective_alignment")
DESCRIPTION = (
    "The following are AI response evaluations from a single individual with specific demographics "
    "and values. They were asked to provide their own personal ranking of the model responses, a "
    "ranking for what is best for the world, a rationale for each of them, which (if any) "
    "unacceptable responses are unacceptable, and a rationale for why they are unacceptable. "
    "Finally, they were asked to provide the importance of getting the correct answer, how "
    "representative the response is of something they would write, and whether they feel the "
    "evaluation is subjective.\nAnnotator demographics: ")


@functools.lru_cache(maxsize=2)
def load_prompts(path: str) -> dict[str, dict]:
    """prompt_id -> {conversation, response_a..d}."""
    out = {}
    for r in hubfiles.columns(hubfiles.jsonl(path), path, "prompt_id", "prompt", "responses"):
        x = {"conversation": "\n".join(common.text(m["content"]) for m in r["prompt"]["messages"]
                                       if m["role"] == "user")}
        for resp in r["responses"]:
            key = f"response_{resp['response_index'].lower()}"
            x[key] = common.text(resp["messages"][0]["content"])
        out[r["prompt_id"]] = {k: x.get(k, "") for k in ("conversation", "response_a", "response_b",
                                                          "response_c", "response_d")}
    return out


@functools.lru_cache(maxsize=2)
def load_assessments(path: str) -> list[dict]:
    return hubfiles.columns(hubfiles.jsonl(path), path, "annotator_id", "prompt_id",
                            "ranking_blocks", "importance", "representativeness", "subjectivity",
                            "demographics")


def first(blocks: dict, kind: str) -> dict:
    return ((blocks or {}).get(kind) or [{}])[0]


def assessment(a: dict) -> str:
    personal, world = first(a["ranking_blocks"], "personal"), first(a["ranking_blocks"], "world")
    unacceptable = first(a["ranking_blocks"], "unacceptable")
    return dumps({"personal_ranking": personal.get("ranking", ""),
                  "world_ranking": world.get("ranking", ""),
                  "personal_rationale": personal.get("rationale", ""),
                  "world_rationale": world.get("rationale", ""),
                  "unacceptable_responses": "|".join(unacceptable.get("rating") or []),
                  "unacceptable_rationale": unacceptable.get("rationale", ""),
                  "importance": a["importance"], "representativeness": a["representativeness"],
                  "subjectivity": a["subjectivity"]})


def instances(seed=0, data_dir=None, min_assessments=3):
    name = "collective_alignment_individual"
    root = common.root(data_dir, name, FILES, URL)
    prompts = load_prompts(str(root / COMPARISONS))
    people = {}
    for a in load_assessments(str(root / MERGED)):
        people.setdefault(a["annotator_id"], []).append(a)
    out = []
    for person in sorted(people):
        mine = people[person]
        if len(mine) < min_assessments:  # counted before the join with the prompts (reference)
            continue
        examples = [Example(assessment(a), dumps(prompts[a["prompt_id"]]))
                    for a in mine if a["prompt_id"] in prompts]
        if examples:
            out.append(Instance(name, [DESCRIPTION + dumps(mine[0]["demographics"])], examples,
                                group=str(person)))
    return out


TASKS = [Task("collective_alignment_individual", "train", URL, instances=instances, files=FILES,
              download=DOWNLOAD, checked="fixture")]
