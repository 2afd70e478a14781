"""IssueBench prompt ingredients: political topics and writing-prompt templates (training task).

One task, two lists, each shown as 2 instances (the reference: SingleVariableIID without
replacement, n_per 2): sampling without replacement from
  topics     636 topic texts: the neutral, pro and con phrasing of the 212 issues whose
             topic_neutral is not a placeholder (UNASSIGNED CLUSTER, SPAM, TOXIC / UNSAFE,
             FORMAT NOT TOPIC, FORECAST), as IssueBench's create_prompts does;
  templates  3,916 templates (annot1_template of templates_full.csv), "X" marking the topic.
These are the distinct topic_text and template_text values of Hugging Face Paul/IssueBench
("prompts", prompts_full), which crosses them into ~2.5M prompts; the download fetches the two
small CSVs they are built from instead (GitHub paul-rottger/issuebench). Each instance holds
its whole list in a random order; the exact predictive is uniform over what is not yet shown
(a mixture of the two lists without a description).
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks import _layout, common

URL = "https://github.com/paul-rottger/issuebench"
RAW = ("https://raw.githubusercontent.com/paul-rottger/issuebench/"
       "730aa088c90fe89d37f2f562ed2e3c3c9a7948a6/2_final_dataset/prompt_ingredients/")
ISSUES, TEMPLATES = "issuebench/issues.csv", "issuebench/templates_full.csv"
PLACEHOLDERS = {"UNASSIGNED CLUSTER", "SPAM", "TOXIC / UNSAFE", "FORMAT NOT TOPIC", "FORECAST"}
DESCRIPTIONS = {
    "topics": "Topics relating to politics",
    "templates": "Templates to use for a language model benchmark about bias on a topic. The "
                 "topic should be in the template as X.",
}


@functools.lru_cache(maxsize=2)
def load(root: str) -> dict[str, list[str]]:
    with open(f"{root}/{ISSUES}", newline="", encoding="utf-8") as f:
        issues = [x for x in csv.DictReader(f)
                  if x["topic_neutral"].strip() and x["topic_neutral"] not in PLACEHOLDERS]
    # melted column by column (all neutral, then pro, then con), as create_prompts does
    topics = [x[k] for k in ("topic_neutral", "topic_pro", "topic_con") for x in issues]
    with open(f"{root}/{TEMPLATES}", newline="", encoding="utf-8") as f:
        templates = [x["annot1_template"] for x in csv.DictReader(f)]
    return {"topics": list(dict.fromkeys(topics)), "templates": list(dict.fromkeys(templates))}


def instances(seed=0, data_dir=None):
    root, _ = _layout.layout(data_dir, "issuebench", [(ISSUES, TEMPLATES)], URL)
    lists = load(str(root))
    r = common.rng(seed, "issuebench")
    kinds = [k for k in lists for _ in range(2)]
    bayes = common.list_bayes([common.without(lists[k]) for k in kinds],
                              [[DESCRIPTIONS[k]] for k in kinds])
    return [Instance("issuebench", [DESCRIPTIONS[k]],
                     [Example(lists[k][i]) for i in r.permutation(len(lists[k]))],
                     group=k, bayes=bayes) for k in kinds]


TASKS = [Task("issuebench", "train", URL, instances=instances, files=(ISSUES, TEMPLATES),
              checked="real",
              download=Download(urls={ISSUES: RAW + "issues.csv",
                                      TEMPLATES: RAW + "templates_full.csv"},
                                sha256={ISSUES: "4d758fed3db8f60aac4705a3a5824340f33dc8ee0bd78368"
                                                "667ba37d4a541dd6",
                                        TEMPLATES: "a97e4caa40f6d448a4b2a3bca883a4d1d14ac2782a1f"
                                                   "221a70386770005d1dae"}))]
