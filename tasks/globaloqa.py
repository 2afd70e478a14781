"""GlobalOpinionQA (Hugging Face Anthropic/llm_global_opinions: data/global_opinions.csv): survey
questions from the Pew Global Attitudes Survey and the World Values Survey, with each country's
share of respondents per answer option. Columns: question, selections (a Python
"defaultdict(<class 'list'>, {country: [share per option]})" string), options (a Python list
string), source. Both tasks are held out (split "val").

globaloqa: per country, {question, options} (JSON) -> the country's answer distribution as a JSON
    list of {option: percent}; two instances per country, each holding all of the country's
    questions (the reference draws two sequences per country).
global_oqa (distributional alignment eval): one prompt per (question, country): description
    "Responses from a person from this country: <country>", input the question and its lettered
    options; the target is the country's shares over the letters, renormalized to sum to 1.

Rows whose share list does not match the options, or whose shares sum to 0, carry no
distribution and are skipped. Fixed from the reference implementation (tsor13/spectrum): the
second globaloqa description was a literal "Country: {country}" (a missing f-string); percentages
were int(round(p, 2) * 100), one too low whenever the float product falls short (0.29 -> 28), and
are round(100 * p) here; options and distributions were Python reprs, JSON here.
"""
import ast
import functools
import re

from tasks import Download, DistPrompt, Example, Instance, Task
from tasks import common, hubfiles
from tasks.common import dumps

URL = "https://huggingface.co/datasets/Anthropic/llm_global_opinions"
FILES = ("globaloqa/data/global_opinions.csv",)
DOWNLOAD = Download(hub="Anthropic/llm_global_opinions", hub_files=("data/global_opinions.csv",),
                    hub_dir="globaloqa")


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[tuple[str, list[str], dict[str, list[float]]]]:
    """(question, options, {country: shares}) per row, shares only where they fit the options."""
    out = []
    for i, r in enumerate(hubfiles.columns(hubfiles.csv_rows(path), path, "question",
                                           "selections", "options"), 2):
        question = common.text(r["question"] or "")
        if not question:
            continue
        try:
            options = [str(o) for o in ast.literal_eval(r["options"])]
            m = re.search(r"\{.*\}", r["selections"], re.S)
            selections = ast.literal_eval(m.group()) if m else {}
        except (ValueError, SyntaxError):
            raise ValueError(f"{path} line {i}: options/selections are not the Python literals "
                             f"upstream publishes") from None
        shares = {c: [float(p) for p in ps] for c, ps in selections.items()
                  if len(ps) == len(options) and sum(ps) > 0}
        out.append((question, options, shares))
    return out


def rows(name, data_dir):
    return load(str(common.root(data_dir, name, FILES, URL) / FILES[0]))


def instances(seed=0, data_dir=None):
    name = "globaloqa"
    by_country = {}
    for question, options, shares in rows(name, data_dir):
        inp = dumps({"question": question, "options": options})
        for country, ps in shares.items():
            dist = [{o: round(100 * p)} for o, p in zip(options, ps)]
            by_country.setdefault(country, []).append(Example(dumps(dist), inp))
    return [Instance(name, descriptions(c), ex, group=c)
            for c, ex in by_country.items() for _ in range(2)]


def descriptions(country):
    return [
        "People from an unknown location were surveyed. For each question, predict the percentage "
        "of people who chose each option. (list of dicts)",
        f"Country: {country}\nFor each question, predict the percentage of people from the country "
        "who chose each option. (list of dicts)",
    ]


def dist_prompts(seed=0, data_dir=None):
    out = []
    for question, options, shares in rows("global_oqa", data_dir):
        letters = [chr(65 + i) for i in range(len(options))]
        text = question + "\nOptions:" + "".join(f"\n{a}. {o}" for a, o in zip(letters, options))
        for country, ps in shares.items():
            total = sum(ps)
            out.append(DistPrompt("global_oqa", [
                {"role": "description",
                 "content": f"Responses from a person from this country: {country}"},
                {"role": "input", "content": text}], {a: p / total for a, p in zip(letters, ps)}))
    return out


TASKS = [
    Task("globaloqa", "val", URL, instances=instances, files=FILES, download=DOWNLOAD,
         checked="fixture"),
    Task("global_oqa", "val", URL, dist_prompts=dist_prompts, files=FILES, download=DOWNLOAD,
         checked="fixture"),
]
