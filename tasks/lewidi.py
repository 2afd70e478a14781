"""LeWiDi 2025 (Learning With Disagreements, third edition), practice-phase release: six
per-annotator training tasks on four datasets, train split only (as the reference).

Each instance holds annotations of ONE annotator; the description is the task sentence plus
"Annotator demographics: " and a JSON object of the annotator's id and metadata.
  lewidi_csc_sarcasm_detection_individual   json{context, response, lang} -> sarcasm "1".."6";
      one instance per annotator (872), all of their rows.
  lewidi_mp_irony_detection_individual      json{post, reply, source, level, language_variety,
      lang} -> irony "0"/"1"; one instance per annotator (506), all of their rows.
  lewidi_par_paraphrase_detection_individual   json{question1, question2, lang} ->
      json{paraphrase_rating (-5..5), explanation}; each annotator's rows in chunks of 20.
  lewidi_par_paraphrase_detection_individual_categorical   the same input -> the rating.
  lewidi_varierrnli_nli_detection_individual   json{context, statement, lang} ->
      json{nli_label, explanation}; each annotator's rows in chunks of 30.
  lewidi_varierrnli_nli_detection_individual_categorical   the same input -> the label(s).
Read in place from the official zip (data_practice_phase.zip: <Dataset>/<Dataset>_train.json,
<Dataset>_annotators_meta.json; its __MACOSX/ and .DS_Store entries are skipped). Item format:
{text: {...}, annotators: "Ann1,Ann2", annotations: {"Ann1": label, ...}, lang, other_info}.
Fixed:
  * CSC annotation keys after the first carry a leading space (" Ann289"); the reference matched
    them against the stripped ids and silently kept only the first annotator of each item
    (5,628 of 25,574 annotations). Keys are stripped here, so all 25,574 are used.
  * Paraphrase and VariErrNLI meta files have trailing commas (not JSON); they are removed
    before parsing. MP meta ids lack the "Ann" prefix of the annotation ids.
  * Metadata values "DATA_EXPIRED" (Prolific placeholders) are left out; the reference appended
    "annotator_id" to every annotator's metadata by mutating it (twice for Paraphrase).
  * VariErrNLI: an annotator who gave several labels is listed once per label, with one
    explanation each, and the annotation is the labels joined ("contradiction,neutral"). The
    categorical task has one example per (item, annotator) with that joined label (the reference
    repeated it once per listing); the explanation task pairs each label with its own
    explanation (the reference paired every explanation with the joined labels).
  * MP's reply depth "level" (1.0, 2.0 in the file) is an integer.
"""
import functools
import json
import re
import zipfile

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import _layout, common

URL = "https://github.com/Le-Wi-Di/le-wi-di.github.io"
ZIP = "lewidi/data_practice_phase.zip"
RAW = ("https://github.com/Le-Wi-Di/le-wi-di.github.io/raw/"
       "0fc0f189defa8f3c34b9f8636e6f5c4a7bbe704c/data_practice_phase.zip")
DOWNLOAD = Download(urls={ZIP: RAW}, sha256={
    ZIP: "0b8bf887bce04698ce45e88c1b5dbb314264fdc580dd5618cb2235836c28dda4"})


def _members(z: zipfile.ZipFile) -> dict[str, str]:
    """{file name: member path} of the real files (not macOS metadata)."""
    out = {}
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("__MACOSX/") or base.startswith("._") or base in ("", ".DS_Store"):
            continue
        out[base] = name
    return out


def _json(z, members, name, path):
    if name not in members:
        raise ValueError(f"{path} has no {name} (is it the LeWiDi 2025 practice-phase zip?)")
    text = z.read(members[name]).decode("utf-8")
    if name.endswith("_meta.json"):
        text = re.sub(r",(\s*[}\]])", r"\1", text)  # trailing commas in two of the meta files
    return json.loads(text)


@functools.lru_cache(maxsize=8)
def load(path: str, dataset: str) -> tuple[dict, dict]:
    """(items of <dataset>_train.json, annotator metadata keyed by "Ann<id>")."""
    with zipfile.ZipFile(path) as z:
        members = _members(z)
        items = _json(z, members, f"{dataset}_train.json", path)
        meta = _json(z, members, f"{dataset}_annotators_meta.json", path)
    meta = {(k if k.startswith("Ann") else f"Ann{k}"): v for k, v in meta.items()}
    return items, meta


def demographics(annotator: str, meta: dict) -> str:
    fields = {"annotator_id": annotator}
    for k, v in meta.get(annotator, {}).items():
        if v in ("", None, "DATA_EXPIRED"):
            continue
        fields[k] = int(v) if isinstance(v, float) and v.is_integer() else v
    return dumps(fields)


def rows(items: dict) -> list[tuple[str, str, dict, str, str, str]]:
    """(item id, annotator, item, label, explanation, the annotator's whole annotation): one per
    listed annotator position. An annotator listed k times (VariErrNLI: k labels) gets the k
    labels of their annotation in order; explanations (if any) are per listed position."""
    out = []
    for item_id, x in items.items():
        annotation = {k.strip(): str(v).strip() for k, v in x["annotations"].items()}
        listed = [a.strip() for a in x["annotators"].split(",")]
        explanations = (x.get("other_info") or {}).get("explanations") or []
        seen = {}
        for i, a in enumerate(listed):
            if a not in annotation:
                continue
            parts = annotation[a].split(",") if listed.count(a) > 1 else [annotation[a]]
            j = seen[a] = seen.get(a, -1) + 1
            label = parts[j].strip() if j < len(parts) else annotation[a]
            explanation = str(explanations[i]).strip() if i < len(explanations) else ""
            out.append((item_id, a, x, label, explanation, annotation[a]))
    return out


def _csc_input(x):
    return {"context": x["text"]["context"], "response": x["text"]["response"], "lang": x["lang"]}


def _mp_input(x):
    info = x.get("other_info") or {}
    level = info.get("level", "")
    return {"post": x["text"]["post"], "reply": x["text"]["reply"],
            "source": info.get("source", ""),
            "level": int(level) if isinstance(level, float) and level.is_integer() else level,
            "language_variety": info.get("language_variety", ""), "lang": x["lang"]}


def _par_input(x):
    return {"question1": x["text"]["Question1"], "question2": x["text"]["Question2"],
            "lang": x["lang"]}


def _nli_input(x):
    return {"context": x["text"]["context"], "statement": x["text"]["statement"], "lang": x["lang"]}


# name -> (dataset, item -> input fields, (label, explanation) -> output, chunk size (None: one
#          instance per annotator with all of their rows), options ("observed": the labels that
#          occur), the task sentence)
SPECS = {
    "lewidi_csc_sarcasm_detection_individual": (
        "CSC", _csc_input, lambda label, expl: label, None, [str(i) for i in range(1, 7)],
        "Given a conversational context and response, rate how sarcastic the response is on a "
        "1-6 scale."),
    "lewidi_mp_irony_detection_individual": (
        "MP", _mp_input, lambda label, expl: label, None, ["0", "1"],
        "Given a post-reply pair from social media (Twitter/Reddit), determine whether the reply "
        "is ironic given the post. Context includes platform source, reply depth level, language "
        "variety, and language code. Binary irony detection task."),
    "lewidi_par_paraphrase_detection_individual": (
        "Paraphrase", _par_input,
        lambda label, expl: dumps({"paraphrase_rating": int(label), "explanation": expl}), 20, None,
        "Given a pair of questions from Quora Question Pairs (QQP), assign a Likert scale score "
        "from -5 to 5 indicating how strongly the questions are paraphrases of one another, and "
        "provide a short explanation for your score."),
    "lewidi_par_paraphrase_detection_individual_categorical": (
        "Paraphrase", _par_input, lambda label, expl: str(int(label)), 20,
        [str(i) for i in range(-5, 6)],
        "Given a pair of questions from Quora Question Pairs (QQP), assign a Likert scale score "
        "from -5 to 5 indicating how strongly the questions are paraphrases of one another."),
    "lewidi_varierrnli_nli_detection_individual": (
        "VariErrNLI", _nli_input,
        lambda label, expl: dumps({"nli_label": label, "explanation": expl}), 30, None,
        "Given a premise and hypothesis from MNLI corpus, assign one or more labels from "
        "{Entailment, Neutral, Contradiction} indicating the logical relationship between them, "
        "and provide an explanation for your reasoning."),
    "lewidi_varierrnli_nli_detection_individual_categorical": (
        "VariErrNLI", _nli_input, lambda label, expl: label, 30, "observed",
        "Given a premise and hypothesis from MNLI corpus, assign one or more labels from "
        "{entailment, neutral, contradiction} indicating the logical relationship between them."),
}


def _task(name):
    dataset, make_input, make_output, size, options, sentence = SPECS[name]

    def instances(seed=0, data_dir=None):
        root, _ = _layout.layout(data_dir, name, [(ZIP,)], URL)
        items, meta = load(str(root / ZIP), dataset)
        by_annotator, seen = {}, set()
        for item_id, a, x, label, expl, annotation in rows(items):
            if name.endswith("_categorical") and dataset == "VariErrNLI":
                if (item_id, a) in seen:  # one example per (item, annotator): the joined labels
                    continue
                seen.add((item_id, a))
                label = annotation
            by_annotator.setdefault(a, []).append(
                Example(make_output(label, expl), dumps(make_input(x))))
        opts = options
        if options == "observed":
            opts = sorted({e.output for ex in by_annotator.values() for e in ex})
        r = common.rng(seed, name)
        out = []
        for a, ex in by_annotator.items():
            desc = [f"{sentence}\nAnnotator demographics: {demographics(a, meta)}"]
            chunks = [ex] if size is None else common.partition(ex, r, size)
            out += [Instance(name, desc, c, group=a, options=opts) for c in chunks]
        return out

    return Task(name, "train", URL, instances=instances, files=(ZIP,), download=DOWNLOAD,
                checked="real")


TASKS = [_task(name) for name in SPECS]
