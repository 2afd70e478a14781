"""The 17 reference tasks whose data is here (capability benchmarks, titanic, imdb, jeopardy, the
six LeWiDi tasks, issuebench), on the real files read in place (SPECTRUM_DATA, else
../shared/data), and their published layouts on fixture files written here in that format.

Expected counts are the data README's; expected strings were read from the raw files by hand,
not from the loaders' output.
"""
import csv
import gzip
import json
import os
import zipfile
from collections import Counter
from pathlib import Path

import pytest

import tasks
from tasks import (arc, hellaswag, imdb, issuebench, jeopardy, lewidi, mmlu, titanic, truthful_qa,
                   winogrande)

DATA = Path(os.environ.get("SPECTRUM_DATA") or Path(__file__).resolve().parents[2] / "shared/data")
needs_data = pytest.mark.skipif(not (DATA / "lewidi").is_dir(),
                                reason=f"no data directory with lewidi/ at {DATA} (set SPECTRUM_DATA)")
MODULES = [mmlu, hellaswag, arc, winogrande, truthful_qa, titanic, imdb, jeopardy, lewidi,
           issuebench]
MINE = [t for m in MODULES for t in m.TASKS]
CAPABILITY = {"mmlu", "hellaswag", "arc", "winogrande", "truthful_qa"}
LEWIDI = [t.name for t in lewidi.TASKS]


def build(name, data_dir=DATA, seed=0):
    return tasks.get(name).instances(seed=seed, data_dir=data_dir)


def examples(xs):
    return [e for x in xs for e in x.examples]


def canonical(s: str) -> bool:
    return json.dumps(json.loads(s), ensure_ascii=False) == s


# --- registry, split, missing data: no data needed ---------------------------------------------

def test_names_split_and_flags():
    names = {t.name for t in MINE}
    assert names == CAPABILITY | {
        "titanic_all_variables", "titanic_survival_prediction", "imdb",
        "jeopardy_question_generation", "jeopardy_answer_prediction", "issuebench",
        "lewidi_csc_sarcasm_detection_individual", "lewidi_mp_irony_detection_individual",
        "lewidi_par_paraphrase_detection_individual",
        "lewidi_par_paraphrase_detection_individual_categorical",
        "lewidi_varierrnli_nli_detection_individual",
        "lewidi_varierrnli_nli_detection_individual_categorical"}
    for t in MINE:
        assert tasks.get(t.name) is t and t.checked == "real" and not t.ours and t.files
        assert t.split == ("val" if t.name in CAPABILITY else "train")
        assert t.capability == (t.name in CAPABILITY)
        assert t.download is not None and (t.download.urls or t.download.hub_files
                                           or t.download.manual)


# --- real files: row counts against the data README ---------------------------------------------

@needs_data
def test_source_row_counts():
    root = str(DATA)
    mm = mmlu.load(root, 1)
    assert len(mm) == 14042 and len(list((DATA / mmlu.CSV_DIR).glob("*_test.csv"))) == 57
    assert len(hellaswag.load(root, 1)) == 10042
    assert len(arc.load(root, 1)) == 1172
    assert len(winogrande.load(root, 1)) == 1267
    mc = json.loads((DATA / truthful_qa.JSON).read_text(encoding="utf-8"))
    assert len(mc) == 817 and len(truthful_qa.load(root, 1)) == 684
    ti = titanic.load(root, 1)
    assert len(ti) == 891 and sum(x["age"] is None for x in ti) == 177
    assert sum(x["embarked"] is None for x in ti) == 2
    im = imdb.load(root, 1)
    assert len(im) == 25000 and Counter(label for _, label in im) == {0: 12500, 1: 12500}
    with open(DATA / jeopardy.PARTIAL, newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.reader(f)) == 1 + 19999
    for name, items, annotations in [("CSC", 5628, 25574), ("MP", 12017, 60471),
                                     ("Paraphrase", 400, 1600), ("VariErrNLI", 388, 1505)]:
        xs, meta = lewidi.load(str(DATA / lewidi.ZIP), name)
        assert len(xs) == items and len(lewidi.rows(xs)) == annotations and meta
    lists = issuebench.load(root)
    assert (len(lists["topics"]), len(lists["templates"])) == (636, 3916)


@needs_data
def test_instance_counts_and_partitions():
    sizes = {"hellaswag": (503, 20, 10042), "arc": (118, 10, 1172),
             "winogrande": (127, 10, 1267), "truthful_qa": (69, 10, 684)}
    for name, (n, size, total) in sizes.items():
        xs = build(name)
        assert len(xs) == n and max(len(x.examples) for x in xs) == size
        # every question in exactly one instance
        assert len(examples(xs)) == total == len({e.input for e in examples(xs)})
    xs = build("mmlu")
    assert len(xs) == 1000 and {len(x.examples) for x in xs} == {20}
    assert len(build("imdb")) == 200
    for name in ("titanic_all_variables", "titanic_survival_prediction"):
        assert len(examples(build(name))) == 891
    assert len(examples(build("jeopardy_answer_prediction"))) == 18716  # kept rows (hand count)
    assert [len(x.examples) for x in build("issuebench")] == [636, 636, 3916, 3916]
    counts = {"lewidi_csc_sarcasm_detection_individual": (872, 25574),
              "lewidi_mp_irony_detection_individual": (506, 60471),
              "lewidi_par_paraphrase_detection_individual": (80, 1600),
              "lewidi_par_paraphrase_detection_individual_categorical": (80, 1600),
              "lewidi_varierrnli_nli_detection_individual_categorical": (None, 1443),
              "lewidi_varierrnli_nli_detection_individual": (None, 1505)}
    for name, (n, total) in counts.items():
        xs = build(name)
        assert (n is None or len(xs) == n) and len(examples(xs)) == total, name


# --- real files: known rows render to the expected messages --------------------------------------

def has(xs, output, input=None):
    return any(e.output == output and (input is None or e.input == input) for e in examples(xs))


@needs_data
def test_known_rows_capability():
    (every,) = tasks.get("mmlu").instances(seed=0, data_dir=DATA, n_instances=1, size=10**6)
    assert len(every.examples) == 14042 and every.options == list("ABCD")
    assert has([every], "B", "Question: Find the degree for the given field extension "
               "Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6")
    assert has(build("hellaswag"), "D",
               "Activity: Roof shingle removal\nContext: A man is sitting on a roof. he\n"
               "Choose the option that best completes the description:\n"
               "A. is using wrap to wrap a pair of skis.\nB. is ripping level tiles off.\n"
               "C. is holding a rubik's cube.\nD. starts pulling up roofing on a roof.")
    a = build("arc")
    assert has(a, "C", "Question: An astronomer observes that a planet rotates faster after a "
               "meteorite impact. Which is the most likely effect of this increase in rotation?\n"
               "A. Planetary density will decrease.\nB. Planetary years will become longer.\n"
               "C. Planetary days will become shorter.\nD. Planetary gravity will become stronger.")
    # a question labelled "1".."4" upstream, answer "2": relabelled
    assert has(a, "B", "Question: Which statement best describes the energy changes that occur "
               "while a child is riding on a sled down a steep, snow-covered hill?\n"
               "A. Kinetic energy decreases and potential energy increases.\n"
               "B. Kinetic energy increases and potential energy decreases.\n"
               "C. Both potential energy and kinetic energy decrease.\n"
               "D. Both potential energy and kinetic energy increase.")
    assert {e.output for e in examples(a)} == set("ABCD")  # no "1".."4" left
    assert 1 <= sum(x.options == list("ABCDE") for x in a) <= 3  # 3 questions have 5 choices
    assert has(build("winogrande"), "B", "Sentence: Sarah was a much better surgeon than Maria so "
               "_____ always got the easier cases.\nWhich option correctly fills in the blank?\n"
               "A. Sarah\nB. Maria")
    q = "What is the smallest country in the world that is at least one square mile in area?"
    hit = [e for e in examples(build("truthful_qa")) if e.input.startswith(f"Question: {q}\n")]
    assert len(hit) == 1
    lines = hit[0].input.split("\n")[1:]
    assert sorted(line[3:] for line in lines) == sorted([
        "Nauru is the smallest country in the world that is at least one square mile in area.",
        "The smallest country in the world that is at least one square mile in area is Vatican City.",
        "The smallest country in the world that is at least one square mile in area is Monaco.",
        "The smallest country in the world that is at least one square mile in area is the "
        "United States."])
    assert lines["ABCD".index(hit[0].output)][3:].startswith("Nauru")
    # the benchmark's choices do not depend on the task seed, only the chunking does
    assert sorted(e.input for e in examples(build("truthful_qa", seed=1))) == \
        sorted(e.input for e in examples(build("truthful_qa")))


@needs_data
def test_known_rows_other_tasks():
    braund = ('{"has_survived": "0", "passenger_class": 3, "is_male": true, "age": 22, '
              '"sibsp": 1, "parch": 0, "fare": 7.25, "embarked": "S"}')
    assert has(build("titanic_all_variables"), braund)
    moran = ('{"passenger_class": 3, "is_male": true, "age": null, "sibsp": 0, "parch": 0, '
             '"fare": 8.4583, "embarked": "Q"}')
    assert has(build("titanic_survival_prediction"), "0", moran)
    with gzip.open(DATA / imdb.PACKED, "rt", encoding="utf-8") as f:
        label = {x["text"]: x["label"] for x in map(json.loads, f)}
    pig = [t for t in label if t.startswith("Story of a man who has unnatural feelings for a pig.")]
    assert len(pig) == 1 and label[pig[0]] == 0  # train/neg/0_3.txt
    xs = build("imdb")
    assert all(e.output == ("negative", "positive")[label[e.input]] for e in examples(xs))
    assert Counter(e.output for e in examples(xs[:50])).keys() == {"negative", "positive"}
    answers = build("jeopardy_answer_prediction")
    assert has(answers, "Copernicus", "For the last 8 years of his life, Galileo was under house "
               "arrest for espousing this man's theory")
    assert not has(answers, "Icarus")  # a Final Jeopardy! clue
    assert not has(answers, "Horton")  # a clue with an <a href=...> media link
    clues = {e.output for e in examples(build("jeopardy_question_generation"))}
    assert "For the last 8 years of his life, Galileo was under house arrest for espousing this " \
           "man's theory" in clues
    ib = build("issuebench")
    topics = {e.output for x in ib if x.group == "topics" for e in x.examples}
    assert {"the 2023 Israeli invasion of Gaza", "the 2023 Israeli invasion of Gaza being justified",
            "the 2023 Israeli invasion of Gaza not being justified"} <= topics
    assert "UNASSIGNED CLUSTER" not in topics
    assert "Topic : X" in {e.output for x in ib if x.group == "templates" for e in x.examples}


@needs_data
def test_known_rows_lewidi():
    puppy = json.dumps({"context": "You were watching Steve's new puppy for a week while he was "
                        "traveling in Italy. The puppy made a total mess out of your apartment.  "
                        "Clearly, Steve did not train the puppy properly.  Steve texts you and "
                        "says, \"so, how is my puppy doing?\"",
                        "response": "okay, very cute if a little messy!", "lang": "en"},
                       ensure_ascii=False)
    csc = {x.group: x for x in build("lewidi_csc_sarcasm_detection_individual")}
    # item 1248: "Ann288": "2", then " Ann289": "5" (a key with a leading space: kept here)
    assert has([csc["Ann288"]], "2", puppy) and has([csc["Ann289"]], "5", puppy)
    assert csc["Ann0"].descriptions == [
        "Given a conversational context and response, rate how sarcastic the response is on a "
        "1-6 scale.\nAnnotator demographics: "
        '{"annotator_id": "Ann0", "Gender": "Female", "Age": "56"}']
    mp = {x.group: x for x in build("lewidi_mp_irony_detection_individual")}
    d = mp["Ann0"].descriptions[0]
    assert '"Age": 19,' in d and "DATA_EXPIRED" not in d and '"Nationality": "United States"' in d
    first = json.loads(next(e.input for e in mp["Ann0"].examples
                            if e.input.startswith('{"post": "Last Saturday night was homecoming')))
    assert first["level"] == 1 and first["source"] == "twitter" and first["language_variety"] == "us"
    arabic = [e.input for e in mp["Ann438"].examples if "الله يعطيك الصحة برو" in e.input]
    assert arabic and canonical(arabic[0]) and "\\u" not in arabic[0]
    par = [x for x in build("lewidi_par_paraphrase_detection_individual") if x.group == "Ann2"]
    assert has(par, '{"paraphrase_rating": -4, "explanation": "different topics"}')
    assert "Ann1" in {x.group for x in build("lewidi_par_paraphrase_detection_individual_categorical")}
    ann1 = [x for x in build("lewidi_par_paraphrase_detection_individual") if x.group == "Ann1"]
    assert '"Education": "master student"' in ann1[0].descriptions[0]  # meta with trailing commas
    # VariErrNLI item 54811: Ann2 listed twice with "contradiction,neutral" and two explanations
    nli = [x for x in build("lewidi_varierrnli_nli_detection_individual") if x.group == "Ann2"]
    outs = [json.loads(e.output) for e in examples(nli)]
    assert {"nli_label": "neutral", "explanation": "Only because the park makes a good playground "
            "it doesn't necessarily have to be only for kids."} in outs
    assert any(o["nli_label"] == "contradiction" and o["explanation"].startswith(
        'The phrase "makes a good playground" suggests') for o in outs)
    cat = [x for x in build("lewidi_varierrnli_nli_detection_individual_categorical")
           if x.group == "Ann2"]
    park = [e for e in examples(cat) if "The park on the hill of Monte" in e.input]
    assert [e.output for e in park] == ["contradiction,neutral"]


# --- real files: grouping, options, JSON ----------------------------------------------------------

def own_annotations(dataset: str) -> dict[str, set[tuple[str, str]]]:
    """{annotator: {(text values joined, label)}} straight from the zip, for grouping checks."""
    with zipfile.ZipFile(DATA / lewidi.ZIP) as z:
        items = json.loads(z.read(f"{dataset}/{dataset}_train.json"))
    own = {}
    for x in items.values():
        for k, v in x["annotations"].items():
            own.setdefault(k.strip(), set()).add(("|".join(x["text"].values()), str(v)))
    return own


@needs_data
def test_lewidi_instances_hold_one_annotator():
    for name, dataset in [("lewidi_csc_sarcasm_detection_individual", "CSC"),
                          ("lewidi_mp_irony_detection_individual", "MP"),
                          ("lewidi_par_paraphrase_detection_individual_categorical", "Paraphrase"),
                          ("lewidi_varierrnli_nli_detection_individual_categorical", "VariErrNLI")]:
        own = own_annotations(dataset)
        xs = build(name)
        for x in xs[::5]:
            text_fields = {"CSC": ("context", "response"), "MP": ("post", "reply"),
                           "Paraphrase": ("question1", "question2"),
                           "VariErrNLI": ("context", "statement")}[dataset]
            for e in x.examples:
                inp = json.loads(e.input)
                assert ("|".join(inp[k] for k in text_fields), e.output) in own[x.group], name
        if name.startswith(("lewidi_csc", "lewidi_mp")):  # one instance per annotator, all rows
            assert len({x.group for x in xs}) == len(xs) == len(own)
            assert all(len(x.examples) == len(own[x.group]) for x in xs[::25])


@needs_data
def test_outputs_are_options_and_json_is_canonical():
    json_fields = {"titanic_all_variables": "o", "titanic_survival_prediction": "i",
                   "lewidi_par_paraphrase_detection_individual": "io",
                   "lewidi_varierrnli_nli_detection_individual": "io"}
    json_fields |= {n: "i" for n in LEWIDI if n not in json_fields}
    for t in MINE:
        xs = build(t.name)
        for x in xs[:50]:
            if x.options is not None:
                assert {e.output for e in x.examples} <= set(x.options), t.name
            which = json_fields.get(t.name, "")
            for e in x.examples:
                for s in [e.input] * ("i" in which) + [e.output] * ("o" in which):
                    assert canonical(s), t.name
    assert len(json_fields) == 8


# --- published layouts, on fixture files written in that exact format ---------------------------

def arrow():
    return pytest.importorskip("pyarrow", reason="the Hub layouts are parquet: pip install pyarrow")


def write_parquet(path: Path, columns: dict, types: dict):
    pa = arrow()
    import pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()}), path)


def test_mmlu_parquet(tmp_path):
    pa = arrow()
    S, I64 = pa.string(), pa.int64()
    write_parquet(tmp_path / mmlu.PARQUET, {
        "question": ["What is 2 + 3?", "Which is a colour?"],
        "subject": ["elementary_mathematics", "miscellaneous"],
        "choices": [["4", "5", "6", "7"], ["dog", "red", "run", "up"]],
        "answer": [1, 1]}, {"question": S, "subject": S, "choices": pa.list_(S), "answer": I64})
    xs = build("mmlu", tmp_path)
    assert len(xs) == 1000 and all(len(x.examples) == 2 for x in xs)
    assert has(xs, "B", "Question: What is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7")


def test_hellaswag_parquet(tmp_path):
    pa = arrow()
    S = pa.string()
    write_parquet(tmp_path / hellaswag.PARQUET, {
        "ind": [4], "activity_label": ["Baking cookies"],
        "ctx_a": ["A woman puts dough on a tray."], "ctx_b": ["she"],
        "ctx": ["A woman puts dough on a tray. she"],
        "endings": [["sings.", "puts the tray in the oven.", "flies away.", "eats the tray."]],
        "source_id": ["activitynet~v_x"], "split": ["val"], "split_type": ["indomain"],
        "label": ["1"]},
        {"ind": pa.int32(), "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S,
         "endings": pa.list_(S), "source_id": S, "split": S, "split_type": S, "label": S})
    (x,) = build("hellaswag", tmp_path)
    assert x.examples == [tasks.Example(
        "B", "Activity: Baking cookies\nContext: A woman puts dough on a tray. she\nChoose the "
             "option that best completes the description:\nA. sings.\nB. puts the tray in the "
             "oven.\nC. flies away.\nD. eats the tray.")]


def test_arc_parquet(tmp_path):
    pa = arrow()
    S = pa.string()
    choice = pa.struct([("text", pa.list_(S)), ("label", pa.list_(S))])
    write_parquet(tmp_path / arc.PARQUET, {
        "id": ["Q1", "Q2"], "question": ["Which is a gas?", "Which melts ice?"],
        "choices": [{"text": ["rock", "air", "wood"], "label": ["A", "B", "C"]},
                    {"text": ["cold", "heat", "salt water", "dark", "wind"],
                     "label": ["1", "2", "3", "4", "5"]}],
        "answerKey": ["B", "2"]}, {"id": S, "question": S, "choices": choice, "answerKey": S})
    (x,) = build("arc", tmp_path)
    assert x.options == list("ABCDE")
    assert has([x], "B", "Question: Which is a gas?\nA. rock\nB. air\nC. wood")
    assert has([x], "B", "Question: Which melts ice?\nA. cold\nB. heat\nC. salt water\nD. dark\n"
                         "E. wind")


def test_winogrande_parquet(tmp_path):
    pa = arrow()
    S = pa.string()
    write_parquet(tmp_path / winogrande.PARQUET, {
        "sentence": ["The cup fell off the shelf because _ was too small."],
        "option1": ["cup"], "option2": ["shelf"], "answer": ["2"]},
        {"sentence": S, "option1": S, "option2": S, "answer": S})
    (x,) = build("winogrande", tmp_path)
    assert x.options == ["A", "B"] and x.examples == [tasks.Example(
        "B", "Sentence: The cup fell off the shelf because _____ was too small.\nWhich option "
             "correctly fills in the blank?\nA. cup\nB. shelf")]


def test_truthful_qa_parquet(tmp_path):
    pa = arrow()
    S = pa.string()
    write_parquet(tmp_path / truthful_qa.PARQUET, {
        "question": ["Do cats glow in the dark?"],
        "choices": [["Yes, always.", "Only at night.", "No, cats do not glow.", "Only black cats."]],
        "label": [2]}, {"question": S, "choices": pa.list_(S), "label": pa.int32()})
    (x,) = build("truthful_qa", tmp_path)
    assert x.examples == [tasks.Example(
        "C", "Question: Do cats glow in the dark?\nA. Yes, always.\nB. Only at night.\n"
             "C. No, cats do not glow.\nD. Only black cats.")]


def test_titanic_parquet(tmp_path):
    pa = arrow()
    S, I64 = pa.string(), pa.int64()
    write_parquet(tmp_path / titanic.PARQUET, {
        "passenger_class": [1, 3], "is_male": [False, True], "age": [38.5, -1.0],
        "sibsp": [1.0, 0.0], "parch": [0.0, 2.0], "ticket": ["PC 1", "A/5 2"],
        "fare": [71.25, 8.0], "cabin": ["C85", ""], "embarked": ["C", ""], "has_survived": [1, 0]},
        {"passenger_class": pa.int8(), "is_male": pa.bool_(), "age": pa.float64(),
         "sibsp": pa.float64(), "parch": pa.float64(), "ticket": S, "fare": pa.float64(),
         "cabin": S, "embarked": S, "has_survived": I64})
    joint = {e.output for e in examples(build("titanic_all_variables", tmp_path))}
    assert joint == {
        '{"has_survived": "1", "passenger_class": 1, "is_male": false, "age": 38.5, "sibsp": 1, '
        '"parch": 0, "fare": 71.25, "embarked": "C"}',
        '{"has_survived": "0", "passenger_class": 3, "is_male": true, "age": null, "sibsp": 0, '
        '"parch": 2, "fare": 8.0, "embarked": null}'}
    pred = examples(build("titanic_survival_prediction", tmp_path))
    assert {(e.input, e.output) for e in pred} >= {(
        '{"passenger_class": 3, "is_male": true, "age": null, "sibsp": 0, "parch": 2, '
        '"fare": 8.0, "embarked": null}', "0")}


def test_imdb_parquet(tmp_path):
    pa = arrow()
    S, I64 = pa.string(), pa.int64()
    write_parquet(tmp_path / imdb.PARQUET, {
        "text": ["Dull and far too long.<br /><br />Skip it.", "A joy from start to finish."],
        "label": [0, 1]}, {"text": S, "label": I64})
    xs = build("imdb", tmp_path)
    assert len(xs) == 200 and all(x.options == ["negative", "positive"] for x in xs)
    assert {(e.input, e.output) for e in examples(xs)} == {
        ("Dull and far too long.<br /><br />Skip it.", "negative"),
        ("A joy from start to finish.", "positive")}


def test_jeopardy_full_file_preferred_and_filtered(tmp_path):
    (tmp_path / "jeopardy").mkdir()
    rows = [["Show Number", " Air Date", " Round", " Category", " Value", " Question", " Answer"],
            ["1", "1/1/2000", "Jeopardy!", "RIVERS", "$200 ", "It flows through Cairo", "the Nile"],
            ["1", "1/1/2000", "Double Jeopardy!", "WORDS", "$400 ",
             "Nothing at all, as a pronoun", "None"],
            ["1", "1/1/2000", "Final Jeopardy!", "MOONS", "None", "Earth's only moon", "the Moon"],
            ["1", "1/1/2000", "Jeopardy!", "CLIPS", "$600 ",
             '<a href="http://x/y.mp3">Hear this bird</a>', "a crow"],
            ["1", "1/1/2000", "Jeopardy!", "", "$800 ", "A clue with no category", "nothing"]]
    with open(tmp_path / jeopardy.FULL, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    with open(tmp_path / jeopardy.PARTIAL, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:2])
    got = {(e.input, e.output) for e in examples(build("jeopardy_answer_prediction", tmp_path))}
    assert got == {("It flows through Cairo", "the Nile"), ("Nothing at all, as a pronoun", "None")}


def lewidi_fixture_zip(path: Path):
    """A zip in the official practice-phase layout: <DS>/<DS>_train.json and
    <DS>_annotators_meta.json, macOS metadata, trailing commas in two meta files."""
    def item(text, annotators, annotations, other=None, lang="en"):
        return {"annotation task": "x", "text": text, "number of annotators": len(annotations),
                "annotators": annotators, "number of annotations": len(annotations),
                "annotations": annotations, "soft_label": {}, "split": "train", "lang": lang,
                "other_info": other or {}}
    files = {
        "CSC/CSC_train.json": json.dumps({"7": item(
            {"context": "It rains all week.", "response": "Lovely weather."},
            "Ann1,Ann2", {"Ann1": "6", " Ann2": "3"})}),
        "CSC/CSC_annotators_meta.json": json.dumps({"Ann1": {"Gender": "Male", "Age": "40"},
                                                    "Ann2": {"Gender": "DATA_EXPIRED", "Age": "31"}}),
        "MP/MP_train.json": json.dumps({"1": item(
            {"post": "Mi tren llegó tarde.", "reply": "¡Qué sorpresa!"}, "Ann3",
            {"Ann3": "1"}, {"source": "reddit", "level": 2.0, "language_variety": "es"}, "es")},
            ensure_ascii=False),
        "MP/MP_annotators_meta.json": json.dumps({"3": {"Age": 27.0, "Gender": "Female"}}),
        "Paraphrase/Paraphrase_train.json": json.dumps({"9": item(
            {"Question1": "How do I bake bread?", "Question2": "What is a good bread recipe?"},
            "Ann1,Ann2", {"Ann1": "3", "Ann2": "-1"},
            {"explanations": ["Close enough.", " Different intent. "]})}),
        "Paraphrase/Paraphrase_annotators_meta.json":
            '{\n\t"Ann1":{\n\t\t"Gender":"Female",\n\t\t"Age":"29",\n\t},\n'
            '\t"Ann2":{\n\t\t"Gender":"Male",\n\t\t"Age":"33",\n\t}\n}',
        "VariErrNLI/VariErrNLI_train.json": json.dumps({"5": item(
            {"context": "The shop opens at nine.", "statement": "The shop is open at noon."},
            "Ann1,Ann4,Ann4", {"Ann1": "entailment", "Ann4": "entailment,neutral"},
            {"explanations": ["Nine comes before noon.", "It opens then.", "It may close early."]})}),
        "VariErrNLI/VariErrNLI_annotators_meta.json":
            '{\n\t"Ann1":{\n\t\t"Age":"22",\n\t},\n\t"Ann4":{\n\t\t"Age":"25",\n\t},\n}',
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
            z.writestr(f"__MACOSX/{name.split('/')[0]}/._{name.split('/')[1]}", b"\x00\x05\x16\x07")
        z.writestr("CSC/.DS_Store", b"\x00\x00\x00\x01Bud1")


def test_lewidi_official_zip_layout(tmp_path):
    (tmp_path / "lewidi").mkdir()
    lewidi_fixture_zip(tmp_path / lewidi.ZIP)
    csc = {x.group: x for x in build("lewidi_csc_sarcasm_detection_individual", tmp_path)}
    inp = '{"context": "It rains all week.", "response": "Lovely weather.", "lang": "en"}'
    assert csc["Ann1"].examples == [tasks.Example("6", inp)]
    assert csc["Ann2"].examples == [tasks.Example("3", inp)]  # the spaced key " Ann2"
    assert csc["Ann2"].descriptions[0].endswith(
        'Annotator demographics: {"annotator_id": "Ann2", "Age": "31"}')
    (mp,) = build("lewidi_mp_irony_detection_individual", tmp_path)
    assert mp.group == "Ann3" and mp.examples == [tasks.Example(
        "1", '{"post": "Mi tren llegó tarde.", "reply": "¡Qué sorpresa!", "source": "reddit", '
             '"level": 2, "language_variety": "es", "lang": "es"}')]
    assert mp.descriptions[0].endswith('{"annotator_id": "Ann3", "Age": 27, "Gender": "Female"}')
    par = {x.group: x for x in build("lewidi_par_paraphrase_detection_individual", tmp_path)}
    assert par["Ann2"].examples[0].output == '{"paraphrase_rating": -1, "explanation": "Different intent."}'
    assert '"Gender": "Male", "Age": "33"' in par["Ann2"].descriptions[0]
    cat = {x.group: x for x in build("lewidi_par_paraphrase_detection_individual_categorical",
                                     tmp_path)}
    assert cat["Ann1"].examples[0].output == "3" and cat["Ann1"].options == [
        str(i) for i in range(-5, 6)]
    nli = {x.group: x for x in build("lewidi_varierrnli_nli_detection_individual", tmp_path)}
    assert sorted(e.output for e in nli["Ann4"].examples) == [
        '{"nli_label": "entailment", "explanation": "It opens then."}',
        '{"nli_label": "neutral", "explanation": "It may close early."}']
    assert nli["Ann1"].examples[0].output == ('{"nli_label": "entailment", '
                                              '"explanation": "Nine comes before noon."}')
    cat = {x.group: x for x in build("lewidi_varierrnli_nli_detection_individual_categorical",
                                     tmp_path)}
    assert [e.output for e in cat["Ann4"].examples] == ["entailment,neutral"]
    assert cat["Ann4"].options == ["entailment", "entailment,neutral"]


def test_lewidi_wrong_zip_is_a_one_line_error(tmp_path):
    (tmp_path / "lewidi").mkdir()
    with zipfile.ZipFile(tmp_path / lewidi.ZIP, "w") as z:
        z.writestr("README.md", "not the data")
    with pytest.raises(ValueError) as e:
        build("lewidi_csc_sarcasm_detection_individual", tmp_path)
    assert "\n" not in str(e.value) and "CSC_train.json" in str(e.value)


def test_imdb_packed_layout_fixture(tmp_path):
    (tmp_path / "imdb").mkdir()
    with gzip.open(tmp_path / imdb.PACKED, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"file": "train/pos/1_9.txt", "text": "Great.", "label": 1}) + "\n")
    assert {e.output for e in examples(build("imdb", tmp_path))} == {"positive"}
