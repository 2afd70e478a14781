"""Generative social choice surveys (abortion: 200 respondents; chatbot personalization: 200).

One instance per (survey, respondent), all of that respondent's answers:
generativesocialchoice_validation: json{question_text, choices} -> json{choice, response_text}
    for every "multiple choice + text" step (rating how well a candidate statement captures the
    respondent's view, then explaining why).
generativesocialchoice_freetext: question_text -> response_text for every "text" step.
Question texts are HTML in the abortion survey: tags are dropped, paragraph and heading ends
become line breaks, entities are decoded and blank lines collapsed (strip_html). The choice
scales are a Python-repr list in one file and JSON in the other; both become a JSON list.
"""
import ast
import csv
import functools
import html
import json
import re

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/generative-social-choice/survey_data"
SURVEYS = {"abortion": "generativesocialchoice/abortion_survey.csv",
           "chatbot_personalization": "generativesocialchoice/chatbot_personalization_survey.csv"}
FILES = tuple(SURVEYS.values())
TOPIC = {"abortion": "abortion", "chatbot_personalization": "chatbot personalization"}


def strip_html(s: str) -> str:
    s = re.sub(r"<br\s*/?>|</(p|h\d|blockquote|li|div)>", "\n", s)
    s = html.unescape(re.sub(r"<[^>]+>", "", common.text(s)))
    s = "\n".join(line.strip() for line in s.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", s).strip()


def parse_choices(s: str) -> list[str]:
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return ast.literal_eval(s)  # e.g. "['very poorly', 'poorly', ...]"


@functools.lru_cache(maxsize=4)
def load(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _validation(x):
    return Example(dumps({"choice": x["choice"].strip(), "response_text": common.text(x["text"])}),
                   dumps({"question_text": strip_html(x["question_text"]),
                          "choices": parse_choices(x["json_choices"])}))


def _freetext(x):
    return Example(common.text(x["text"]), strip_html(x["question_text"]))


DESCRIPTIONS = {
    "generativesocialchoice_validation": [
        "Survey answers about {t}, all from the same respondent. For each candidate statement, "
        "the respondent chose how well it captures their own view and explained why.",
        "How well does each statement represent this person's opinion on {t}? One respondent's "
        "ratings and explanations.",
        "The following are one individual's survey responses about {t}."],
    "generativesocialchoice_freetext": [
        "Free-text survey answers about {t}, all from the same respondent.",
        "One person's answers to open questions about {t}.",
        "The following are one individual's survey responses about {t}."],
}


def _task(name, qtype, make):
    def instances(seed=0, data_dir=None):
        root = common.root(data_dir, name, FILES, URL)
        out = []
        for survey, file in SURVEYS.items():
            users = {}
            for x in load(str(root / file)):
                if x["question_type"] == qtype and x["text"].strip():
                    users.setdefault(x["user_id"], []).append(make(x))
            descs = [d.replace("{t}", TOPIC[survey]) for d in DESCRIPTIONS[name]]
            out += [Instance(name, descs, ex, group=f"{survey}:{u}") for u, ex in users.items()]
        return out
    return Task(name, "train", URL, instances=instances, files=FILES, checked="real",
                download=Download(urls={f: "https://raw.githubusercontent.com/generative-social-"
                                           "choice/survey_data/HEAD/data/" + f.split("/")[-1]
                                        for f in FILES}))


TASKS = [
    _task("generativesocialchoice_validation", "multiple choice + text", _validation),
    _task("generativesocialchoice_freetext", "text", _freetext),
]
