"""AmbiEnt: ambiguity in natural language inference (six tasks, all train).

Sources: ambient_full.jsonl (1,645 premise/hypothesis pairs with disambiguations),
linguist_annotations.jsonl (2,020 items, each labelled by a few of 28 linguists) and
analysis/crowdworker_annotations.jsonl (542 items with interpretations and crowd labels).
Multi-field inputs and outputs are JSON (booleans as true/false, the label distribution as a
JSON object, never a Python repr). Population-level tasks have 50 sequences of
Geometric+Poisson(64) random rows; the linguist task has 2 sequences per linguist, each from that
linguist's labels only.
"""
import functools
import json
from collections import Counter

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/alisawuffles/ambient"
FULL, LING, CROWD = ("ambient/ambient_full.jsonl", "ambient/linguist_annotations.jsonl",
                     "ambient/analysis/crowdworker_annotations.jsonl")
NLI = ["entailment", "neutral", "contradiction"]


@functools.lru_cache(maxsize=8)
def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def premise_hypothesis(x):
    return Example(dumps({"premise": x["premise"], "hypothesis": x["hypothesis"]}))


def ambiguity(x):
    return Example(dumps({"premise_ambiguous": x["premise_ambiguous"],
                          "hypothesis_ambiguous": x["hypothesis_ambiguous"]}),
                   dumps({"premise": x["premise"], "hypothesis": x["hypothesis"]}))


def disambiguations(rows):
    return [Example(dumps({"disambiguated_premise": d["premise"],
                           "disambiguated_hypothesis": d["hypothesis"]}),
                    dumps({"original_premise": x["premise"], "original_hypothesis": x["hypothesis"],
                           "target_label": d["label"]}))
            for x in rows for d in x["disambiguations"]]


def interpretations(rows):
    # one example per (item, interpretation) with a label; unlabelled distractors are skipped
    return [Example(label, dumps({"premise": x["premise"], "hypothesis": x["hypothesis"],
                                  "ambiguous_sent": x["ambiguous_sent"], "interpretation": i}))
            for x in rows for i, label in zip(x["interpretations"], x["labels"]) if label]


def distributions(rows):
    # all crowd labels of an item (q0_gold..q3_gold pooled, as the reference does), as counts
    # "k/n" and percentages rounded to 4 decimals
    out = []
    for x in rows:
        labels = [lab for q in ("q0_gold", "q1_gold", "q2_gold", "q3_gold")
                  for lab in x.get(q) or [] if lab]
        if not labels:
            continue
        c, n = Counter(labels), len(labels)
        dist = {}
        for lab in NLI:
            dist[f"{lab}_fraction"] = f"{c[lab]}/{n}"
            dist[f"{lab}_percentage"] = round(100 * c[lab] / n, 4)
        inp = {"premise": x["premise"], "hypothesis": x["hypothesis"],
               "ambiguous_sent": x["ambiguous_sent"]}
        out.append(Example(dumps(dist), dumps(inp)))
    return out


def _population(name, file, make, descriptions, options=None):
    """50 sequences of gp(64) random examples from the whole file."""
    def instances(seed=0, data_dir=None):
        rows = load(str(common.root(data_dir, name, (file,), URL) / file))
        examples = make(rows)
        return [Instance(name, descriptions, sub, options=options)
                for sub in common.subsets(examples, common.rng(seed, name), 50, 64)]
    return Task(name, "train", URL, instances=instances, files=(file,), checked="real",
                download=Download(urls={file: "https://raw.githubusercontent.com/alisawuffles/"
                                              "ambient/HEAD/AmbiEnt/" + file.split("/", 1)[1]}))


def linguists(seed=0, data_dir=None):
    name = "ambient_linguist_annotations"
    rows = load(str(common.root(data_dir, name, (LING,), URL) / LING))
    by_worker = {}
    for x in rows:
        inp = dumps({"premise": x["premise"], "hypothesis": x["hypothesis"]})
        for w, a in zip(x["worker_ids"], x["annotations"]):
            by_worker.setdefault(w, []).append(Example(a, inp))
    r = common.rng(seed, name)
    options = sorted({e.output for ex in by_worker.values() for e in ex})
    return [Instance(name, LINGUIST_DESCRIPTIONS, sub, group=w, options=options)
            for w, ex in by_worker.items() for sub in common.subsets(ex, r, 2, 64)]


LINGUIST_DESCRIPTIONS = [
    "Given a premise-hypothesis pair, predict the entailment annotation that this specific "
    "linguist would provide (entailment, neutral, contradiction, or combinations like "
    "'entailment|neutral').",
    "Predict individual linguist annotations for natural language inference tasks based on "
    "premise-hypothesis pairs.",
    "Given: premise, hypothesis. Generate: annotation (entailment judgment by this individual "
    "linguist).",
]

TASKS = [
    _population("ambient_premise_hypothesis", FULL, lambda xs: list(map(premise_hypothesis, xs)), [
        "Generate ambiguous premise and hypothesis pairs for natural language inference tasks. "
        "These pairs contain linguistic ambiguities that can lead to multiple valid "
        "interpretations.",
        "Create premise-hypothesis pairs where the premise contains ambiguity that affects the "
        "entailment relationship with the hypothesis.",
        "Generate: premise (ambiguous statement), hypothesis (statement to evaluate against "
        "premise). Natural language inference with ambiguity."]),
    _population("ambient_ambiguity_detection", FULL, lambda xs: [ambiguity(x) for x in xs], [
        "Given a premise and hypothesis pair, determine whether the premise is ambiguous and "
        "whether the hypothesis is ambiguous. Answer with true or false for each.",
        "Analyze premise-hypothesis pairs to detect linguistic ambiguity in either statement.",
        "Given: premise, hypothesis. Generate: premise_ambiguous (true/false), "
        "hypothesis_ambiguous (true/false). Ambiguity detection task."],
        [dumps({"premise_ambiguous": p, "hypothesis_ambiguous": h})
         for p in (True, False) for h in (True, False)]),
    _population("ambient_disambiguation", FULL, disambiguations, [
        "Given an ambiguous premise-hypothesis pair and a target entailment label, rewrite the "
        "premise and/or hypothesis to remove ambiguity and achieve the target label.",
        "Disambiguate premise-hypothesis pairs by rewriting them to clearly express a specific "
        "entailment relationship (entailment, neutral, or contradiction).",
        "Given: original_premise (ambiguous), original_hypothesis, target_label "
        "(entailment/neutral/contradiction). Generate: disambiguated_premise, "
        "disambiguated_hypothesis (unambiguous versions)."]),
    Task("ambient_linguist_annotations", "train", URL, instances=linguists, files=(LING,),
         checked="real", download=Download(urls={
             LING: "https://raw.githubusercontent.com/alisawuffles/ambient/HEAD/AmbiEnt/"
                   "linguist_annotations.jsonl"})),
    _population("ambient_interpretation_labels", CROWD, interpretations, [
        "Given a premise-hypothesis pair with an ambiguous sentence and a specific interpretation "
        "of that ambiguity, predict the entailment label (entailment, neutral, or "
        "contradiction).",
        "Predict entailment labels based on specific interpretations of ambiguous "
        "premise-hypothesis pairs.",
        "Given: premise, hypothesis, ambiguous_sent (which sentence is ambiguous), interpretation "
        "(specific meaning). Generate: entailment_label (entailment/neutral/contradiction)."], NLI),
    _population("ambient_annotation_distributions", CROWD, distributions, [
        "Given an ambiguous premise-hypothesis pair, predict the distribution of entailment "
        "labels that human annotators would provide. Format as counts and proportions for each "
        "label type.",
        "Predict how human annotators would distribute their judgments across entailment, "
        "neutral, and contradiction labels for ambiguous premise-hypothesis pairs.",
        "Given: premise, hypothesis, ambiguous_sent (which is ambiguous). Generate: the fraction "
        "and percentage of annotators choosing each label."]),
]
