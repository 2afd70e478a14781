"""Tasks whose sources are Hugging Face Hub datasets that are not on this machine.

Each source gets small fixture files written here in the upstream format (same file names and
folders as the dataset repo, same columns, dtypes, nesting, compression), with invented content.
Expected counts and strings are worked out by hand from these fixtures, never pasted from the
loaders' output.
"""
import csv
import gzip
import json
import math
import random
import sys

import pytest

import tasks
from tasks import (MissingData, chatbotarena, collective_alignment, community_alignment, drop,
                   globaloqa, helpsteer, hubfiles, novacomet, prism, valueconsistency, valueprism)

MODULES = [novacomet, valueprism, valueconsistency, globaloqa, chatbotarena, helpsteer, prism,
           community_alignment, collective_alignment, drop]
MINE = [t for m in MODULES for t in m.TASKS]
NAMES = {"novacomet_hypothesis", "novacomet_premise", "valueprism_situation", "valueprism_vrd",
         "valueprism_vrds_noncontextual", "valueprism_misc", "valueconsistency", "globaloqa",
         "global_oqa", "chatbotarena_prompts", "chatbotarena_individual_prefs",
         "chatbotarena_assistant", "helpsteer", "prism_prompts", "prism_prompts_individual",
         "prism_individual_preferences", "community_alignment_initial_prompt",
         "community_alignment_individual_reply", "community_alignment_individual_preferences",
         "community_alignment_response", "collective_alignment_individual", "drop"}
VAL = {"novacomet_hypothesis", "novacomet_premise", "globaloqa", "global_oqa", "drop",
       "chatbotarena_prompts", "chatbotarena_individual_prefs", "chatbotarena_assistant"}


def needs_pyarrow():
    return pytest.importorskip("pyarrow", reason="parquet fixtures need pyarrow (pip install "
                                                  "pyarrow)")


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    """One data directory for the whole session (loaders cache parsed files by path)."""
    return tmp_path_factory.mktemp("hub")


def build(name, root, **kw):
    return tasks.get(name).instances(seed=0, data_dir=root, **kw)


def examples(instances):
    return [e for x in instances for e in x.examples]


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_jsonl(path, rows, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def write_parquet(path, rows, schema):
    pa = needs_pyarrow()
    import pyarrow.parquet as pq
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


# --- registry -------------------------------------------------------------------------------------

def test_registered_split_checked_download():
    assert {t.name for t in MINE} == NAMES
    for t in MINE:
        assert tasks.get(t.name) is t and t.checked == "fixture" and not t.ours
        assert t.split == ("val" if t.name in VAL else "train"), t.name
        assert t.source.startswith("https://huggingface.co/datasets/") and t.files
        d = t.download
        assert d.hub and d.hub_dir and t.source.endswith(d.hub)
        # every file the task needs is <hub_dir>/<path in the dataset repo>, or the manual says how
        assert all(f.startswith(d.hub_dir + "/") for f in t.files)
        assert {f"{d.hub_dir}/{h}" for h in d.hub_files} >= set(t.files) or d.manual
    assert tasks.get("drop").capability and not tasks.get("helpsteer").capability
    assert tasks.get("global_oqa").dist_prompts and not tasks.get("global_oqa").instances
    for gated in ("chatbotarena_prompts", "valueprism_vrd"):  # gated sources say how to get in
        assert "huggingface-cli login" in tasks.get(gated).download.manual


def test_novacomet_empty_shard_folder_is_missing_data(tmp_path):
    (tmp_path / "novacomet/data").mkdir(parents=True)
    with pytest.raises(MissingData, match=r"novacomet/data/train-\*\.parquet"):
        build("novacomet_premise", tmp_path)


def test_missing_pyarrow_is_one_line_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingData, match="pip install pyarrow") as e:
        hubfiles.parquet(tmp_path / "x.parquet")
    assert "\n" not in str(e.value)


def test_malformed_files_name_the_file(tmp_path):
    write_csv(tmp_path / "globaloqa/data/global_opinions.csv", ["question", "options", "source"],
              [["Q?", "['Yes', 'No']", "GAS"]])
    with pytest.raises(ValueError, match=r"global_opinions\.csv has no column 'selections'"):
        build("globaloqa", tmp_path)
    bad = tmp_path / "helpsteer2/train.jsonl.gz"
    bad.parent.mkdir(parents=True)
    with gzip.open(bad, "wt") as f:
        f.write('{"prompt": "p", "response": "r"\n')
    with pytest.raises(ValueError, match=r"train\.jsonl\.gz line 1 is not JSON"):
        build("helpsteer", tmp_path)
    needs_pyarrow()
    junk = tmp_path / "drop/data/validation-00000-of-00001.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_text("not parquet")
    with pytest.raises(ValueError, match="is not a readable parquet file"):
        build("drop", tmp_path)


# --- novacomet: two parquet shards of the train split --------------------------------------------

@pytest.fixture(scope="session")
def nova(hub):
    pa = needs_pyarrow()
    schema = pa.schema([("premise", pa.string()), ("hypothesis", pa.string())])
    write_parquet(hub / "novacomet/data/train-00000-of-00002.parquet", [
        {"premise": "PersonX bakes bread", "hypothesis": "PersonX wants to eat"},
        {"premise": "PersonX bakes bread", "hypothesis": "The kitchen smells nice"},
        {"premise": "PersonX loses a key", "hypothesis": "PersonX is annoyed"}], schema)
    write_parquet(hub / "novacomet/data/train-00001-of-00002.parquet", [
        {"premise": "PersonX bakes bread", "hypothesis": "PersonX buys flour first"},
        {"premise": "PersonX orders a café au lait", "hypothesis": "PersonX likes coffee"},
        {"premise": "PersonX orders a café au lait", "hypothesis": "PersonX is in a café"}], schema)
    return hub


def test_novacomet(nova):
    premises = build("novacomet_premise", nova)
    assert len(premises) == 1  # 3 distinct premises fit one Geometric+Poisson(64) chunk
    assert sorted(e.output for e in examples(premises)) == [
        "PersonX bakes bread", "PersonX loses a key", "PersonX orders a café au lait"]
    assert all(e.input is None for e in examples(premises))
    assert "Generate an event." in premises[0].descriptions and len(premises[0].descriptions) == 5
    hyp = build("novacomet_hypothesis", nova)
    got = {e.input: e.output for e in examples(hyp)}
    assert got == {  # shards in name order, rows in file order
        "PersonX bakes bread":
            '["PersonX wants to eat", "The kitchen smells nice", "PersonX buys flour first"]',
        "PersonX loses a key": '["PersonX is annoyed"]',
        "PersonX orders a café au lait": '["PersonX likes coffee", "PersonX is in a café"]'}
    for d in hyp[0].descriptions:
        assert "JSON list" in d and "semicolon" not in d


# --- ValuePrism: full/full.csv ------------------------------------------------------------------

@pytest.fixture(scope="session")
def prism_values(hub):
    rows = []
    for k in range(1, 11):
        rows.append([f"Situation {k}", "Value", "Honesty", f"Truth matters in case {k}, even when "
                     '"hard".', "Supports"])
    for k in range(1, 10):
        rows.append([f"Situation {k}", "Value", "Autonomy", f"Choice in case {k}.", "Either"])
    for k in range(1, 4):
        rows.append([f"Situation {k}", "Right", "Right to privacy", f"Private\nmatter {k}.",
                     "Opposes"])
    rows.append(["Situation 11", "Duty", "Duty to help", "Others need help.", "Supports"])
    rows.append(["Situation 12", "Duty", "Duty to help", "Help is owed.", "Either"])
    rows.append(["Situation 12", "Duty", "Honesty", "Owed to others.", "Supports"])
    write_csv(hub / "valueprism/full/full.csv",
              ["situation", "vrd", "text", "explanation", "valence"], rows)
    return hub


def test_valueprism_situations_and_vrd(prism_values):
    sit = build("valueprism_situation", prism_values)
    assert len(sit) == 1 and sorted(e.output for e in sit[0].examples) == sorted(
        f"Situation {k}" for k in range(1, 13))
    assert sit[0].descriptions == ["Generate a situation.", "Situations to do moral reasoning over"]
    vrd = examples(build("valueprism_vrd", prism_values))
    assert sorted(e.input for e in vrd) == sorted(f"Situation {k}" for k in range(1, 13))
    s3 = json.loads(next(e.output for e in vrd if e.input == "Situation 3"))
    assert len(s3) == 3 and {"text": "Right to privacy", "vrd": "Right",
                             "explanation": "Private\nmatter 3.", "valence": "Opposes"} in s3
    assert {x["text"] for x in s3} == {"Honesty", "Autonomy", "Right to privacy"}
    s1 = next(e.output for e in vrd if e.input == "Situation 1")
    assert '"explanation": "Truth matters in case 1, even when \\"hard\\"."' in s1  # JSON, not repr
    d = build("valueprism_vrd", prism_values)[0].descriptions
    assert len(d) == 1 and "JSON list" in d[0] and "(Supports, Opposes, or Either)" in d[0]


def test_valueprism_noncontextual_and_misc(prism_values):
    nc = build("valueprism_vrds_noncontextual", prism_values)
    assert len(nc) == 3  # Value, Right, Duty: a few texts each, one chunk each
    got = {x.group: sorted(e.output for e in x.examples) for x in nc}
    assert got == {"Value": ["Autonomy", "Honesty"], "Right": ["Right to privacy"],
                   "Duty": ["Duty to help", "Honesty"]}
    assert {x.group: x.descriptions for x in nc}["Right"] == ["Right (wrt moral reasoning)"]
    misc = build("valueprism_misc", prism_values)
    assert len(misc) == 1  # only Honesty is named in >= 10 Value rows (Autonomy in 9)
    x = misc[0]
    assert x.group == "Honesty" and x.descriptions == ["Generate a situation relating to Honesty."]
    outs = [e.output for e in x.examples]
    # situations of any row naming Honesty (1..10 as a Value, 12 as a Duty), each at most once
    assert len(outs) == len(set(outs)) and x.examples
    assert set(outs) <= {f"Situation {k}" for k in (*range(1, 11), 12)}
    assert len(build("valueprism_misc", prism_values, min_occurrences=9)) == 2


# --- ValueConsistency: valueconsistency.jsonl ----------------------------------------------------

def test_valueconsistency(hub):
    base = {"original": None, "topic": "family"}
    write_jsonl(hub / "valueconsistency/valueconsistency.jsonl", [
        base | {"question": "Should parents choose their children's school?",
                "controversial": True, "language": "english", "country": "us", "rephrase": False},
        base | {"question": "Is it parents' job to choose a school for their kids?",
                "controversial": True, "language": "english", "country": "us", "rephrase": True},
        base | {"question": "Sollte man sonntags arbeiten dürfen?", "controversial": False,
                "language": "german", "country": "germany", "rephrase": False},
        base | {"question": "週末に働くべきですか？", "controversial": False, "language": "japanese",
                "country": "japan", "rephrase": None},
        base | {"question": "Ist Sonntagsarbeit erlaubt?", "controversial": False,
                "language": "german", "country": "germany", "rephrase": True},
        base | {"question": "应该延长退休年龄吗？", "controversial": True, "language": "chinese",
                "country": "china", "rephrase": False}])
    xs = build("valueconsistency", hub)
    assert len(xs) == 1  # 4 original questions, one Geometric+Poisson(64) chunk
    got = {e.output: e.input for e in xs[0].examples}
    assert set(got) == {"Should parents choose their children's school?",
                        "Sollte man sonntags arbeiten dürfen?", "週末に働くべきですか？",
                        "应该延长退休年龄吗？"}  # the two rephrasings are left out
    assert got["Sollte man sonntags arbeiten dürfen?"] == \
        '{"controversial": false, "language": "german", "country": "germany"}'
    assert xs[0].descriptions[0] == "Value-based questions."


# --- GlobalOpinionQA: data/global_opinions.csv ----------------------------------------------------

@pytest.fixture(scope="session")
def goqa(hub):
    dd = "defaultdict(<class 'list'>, {})"
    header = ["question", "selections", "options", "source"]
    write_csv(hub / "globaloqa/data/global_opinions.csv", header, [
        ["Is the economy doing well?",
         dd.replace("{}", "{'Belgium': [0.29, 0.71], 'Greece': [0.5, 0.5]}"), "['Yes', 'No']",
         "GAS"],
        ["How much do you trust the press?",
         dd.replace("{}", "{'Belgium': [0.2, 0.3, 0.4], 'Greece': [0.0, 0.0, 0.0]}"),
         "['A lot', 'Some', \"Don't know\"]", "WVS"],
        ["Is it a good time?", dd.replace("{}", "{'Greece': [0.6, 0.3, 0.1]}"), "['Good', 'Bad']",
         "GAS"]])
    return hub


def test_globaloqa_training(goqa):
    xs = build("globaloqa", goqa)
    assert len(xs) == 4 and [x.group for x in xs] == ["Belgium", "Belgium", "Greece", "Greece"]
    belgium = {e.input: e.output for e in xs[0].examples}
    assert belgium == {
        '{"question": "Is the economy doing well?", "options": ["Yes", "No"]}':
            '[{"Yes": 29}, {"No": 71}]',  # 29, not the reference's int(0.29 * 100) = 28
        '{"question": "How much do you trust the press?", '
        '"options": ["A lot", "Some", "Don\'t know"]}':
            '[{"A lot": 20}, {"Some": 30}, {"Don\'t know": 40}]'}
    assert [e.output for e in xs[2].examples] == ['[{"Yes": 50}, {"No": 50}]']  # all-zero and
    assert xs[0].examples == xs[1].examples  # misfit rows skipped; two sequences per country
    assert xs[0].descriptions[1] == ("Country: Belgium\nFor each question, predict the percentage "
                                     "of people from the country who chose each option. "
                                     "(list of dicts)")
    assert "{country}" not in " ".join(xs[2].descriptions)


def test_global_oqa_dist_prompts(goqa):
    ps = tasks.get("global_oqa").dist_prompts(seed=0, data_dir=goqa)
    assert len(ps) == 3  # (Q1, Belgium), (Q1, Greece), (Q2, Belgium)
    p = ps[2]
    assert p.task == "global_oqa" and p.messages == [
        {"role": "description", "content": "Responses from a person from this country: Belgium"},
        {"role": "input", "content": "How much do you trust the press?\nOptions:\nA. A lot\n"
                                     "B. Some\nC. Don't know"}]
    assert p.target == pytest.approx({"A": 2 / 9, "B": 3 / 9, "C": 4 / 9})
    assert ps[1].target == {"A": 0.5, "B": 0.5}
    for p in ps:
        assert math.isclose(sum(p.target.values()), 1.0)


# --- Chatbot Arena: data/train-00000-of-00001-cced8514c7ed782a.parquet ---------------------------

ARENA = [  # (judge, model_a, model_b, winner), in file order
    ("arena_user_1", "m1", "m2", "model_a"), ("arena_user_3", "m4", "m1", "tie"),
    ("arena_user_1", "m2", "m3", "tie (bothbad)"), ("arena_user_2", "m1", "m2", "model_b"),
    ("arena_user_1", "m1", "m3", "tie"), ("arena_user_1", "m3", "m1", "model_b"),
    ("arena_user_2", "m3", "m2", "tie"), ("arena_user_3", "m4", "m2", "model_a"),
    ("arena_user_1", "m2", "m1", "model_a"), ("arena_user_2", "m1", "m3", "model_a"),
    ("arena_user_2", "m2", "m3", "model_b"), ("arena_user_3", "m3", "m4", "model_b"),
]


def arena_prompt(i):
    return "¿Qué hora es?" if i == 0 else f"Battle {i}: tell me a joke"


@pytest.fixture(scope="session")
def arena(hub):
    pa = needs_pyarrow()
    turn = pa.struct([("content", pa.string()), ("role", pa.string())])
    schema = pa.schema([
        ("question_id", pa.string()), ("model_a", pa.string()), ("model_b", pa.string()),
        ("winner", pa.string()), ("judge", pa.string()), ("conversation_a", pa.list_(turn)),
        ("conversation_b", pa.list_(turn)), ("turn", pa.int64()), ("anony", pa.bool_()),
        ("language", pa.string()), ("tstamp", pa.float64()),
        ("openai_moderation", pa.struct([("flagged", pa.bool_())])),
        ("toxic_chat_tag", pa.struct([("roberta-large", pa.struct([
            ("flagged", pa.bool_()), ("probability", pa.float64())]))]))])
    rows = []
    for i, (judge, a, b, winner) in enumerate(ARENA):
        conv = [[{"content": f"  {arena_prompt(i)}\n", "role": "user"},
                 {"content": f"response of {m} to battle {i}", "role": "assistant"}]
                for m in (a, b)]
        if i == 2:  # a two-turn battle: only the opening exchange counts
            for c in conv:
                c += [{"content": "and another?", "role": "user"},
                      {"content": "sure", "role": "assistant"}]
        rows.append({"question_id": f"q{i}", "model_a": a, "model_b": b, "winner": winner,
                     "judge": judge, "conversation_a": conv[0], "conversation_b": conv[1],
                     "turn": 2 if i == 2 else 1, "anony": True, "language": "English",
                     "tstamp": 1682351591.0 + i, "openai_moderation": {"flagged": False},
                     "toxic_chat_tag": {"roberta-large": {"flagged": False, "probability": 0.01}}})
    write_parquet(hub / f"chatbotarena/{chatbotarena.PARQUET}", rows, schema)
    return hub


def test_chatbotarena_prompts(arena):
    xs = build("chatbotarena_prompts", arena)
    assert sorted(x.group for x in xs) == ["arena_user_1", "arena_user_2"]  # user 3: 3 battles
    got = {x.group: sorted(e.output for e in x.examples) for x in xs}
    assert got["arena_user_2"] == sorted(arena_prompt(i) for i in (3, 6, 9, 10))
    assert got["arena_user_1"] == sorted(arena_prompt(i) for i in (0, 2, 4, 5, 8))
    assert all(x.descriptions == ["Language model prompt"] for x in xs)
    one = build("chatbotarena_prompts", arena, max_judges=1, per_judge=2)
    assert len(one) == 1 and len(one[0].examples) == 2


def test_chatbotarena_preferences(arena):
    xs = build("chatbotarena_individual_prefs", arena)
    own = {j: {i for i, a in enumerate(ARENA) if a[0] == j}
           for j in ("arena_user_1", "arena_user_2")}
    seen = {}
    for x in xs:  # one judge per instance, only that judge's battles
        assert x.options == ["a", "b", "tie", "bothbad"]
        for e in x.examples:
            i = int(json.loads(e.input)["model_a_response"].split()[-1])
            assert i in own[x.group] and i not in seen
            seen[i] = e
    assert set(seen) == own["arena_user_1"] | own["arena_user_2"]
    assert seen[0].input == ('{"opening_prompt": "¿Qué hora es?", "model_a_response": "response of '
                             'm1 to battle 0", "model_b_response": "response of m2 to battle 0"}')
    assert [seen[i].output for i in (0, 2, 3, 4)] == ["a", "bothbad", "b", "tie"]
    assert xs[0].descriptions[0].endswith("with one of the following options: a, b, tie, bothbad")


def test_chatbotarena_assistant(arena):
    xs = build("chatbotarena_assistant", arena)
    by_model = {}
    for x in xs:
        assert x.descriptions[1].endswith(
            f"All responses are from the same model.\nModel: {x.group}")
        for e in x.examples:
            assert e.output.startswith(f"response of {x.group} to battle ")
            i = int(e.output.split()[-1])
            assert e.input == arena_prompt(i)
            by_model.setdefault(x.group, []).append(i)
    # the 9 battles of judges 1 and 2, each seen from both sides; m4 only fought judge 3
    assert {m: sorted(v) for m, v in by_model.items()} == {
        "m1": [0, 3, 4, 5, 8, 9], "m2": [0, 2, 3, 6, 8, 10], "m3": [2, 4, 5, 6, 9, 10]}


# --- HelpSteer2: train.jsonl.gz ------------------------------------------------------------------

ATTRS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


@pytest.fixture(scope="session")
def steer(hub):
    r = random.Random(7)
    rows, scores = [], {}
    for k in range(50):
        pair = [[r.randint(0, 4) for _ in ATTRS] for _ in range(2)]
        if k < 5:
            pair[1] = list(pair[0])  # identical scores: a tie, which the rule labels "2"
        scores[f"Prompt {k}?"] = pair
        for j, s in enumerate(pair):
            rows.append({"prompt": f"Prompt {k}?", "response": f"Answer {j} to prompt {k}."}
                        | dict(zip(ATTRS, s)))
    rows.append({"prompt": "Lonely prompt?", "response": "Only answer."} | dict.fromkeys(ATTRS, 2))
    for j in range(3):
        rows.append({"prompt": "Busy prompt?", "response": f"Busy answer {j}."}
                    | dict(zip(ATTRS, [j, 4 - j, 2, 1, 0])))
    scores["Busy prompt?"] = [[0, 4, 2, 1, 0], [1, 3, 2, 1, 0]]
    write_jsonl(hub / "helpsteer2/train.jsonl.gz", rows, gz=True)
    return hub, scores


def test_helpsteer(steer):
    hub, scores = steer
    xs = build("helpsteer", hub)
    assert len(xs) == 500 and len({x.group for x in xs}) == 500
    checked = 0
    for x in xs:
        assert len(x.examples) == 40 and x.options == ["1", "2"]
        assert x.descriptions[1] == ("The following are ratings from the same individual, who was "
                                     "asked to judge two language model outputs written by someone "
                                     "else. Generate the winner.")
        head, weights = x.descriptions[2].split("\nUser preferences: ")
        assert head == x.descriptions[1]
        w = json.loads(weights)
        assert list(w) == list(ATTRS)
        assert all(-0.05 <= w[k] <= 0.95 for k in ATTRS[:3])
        assert all(-0.5 <= w[k] <= 0.5 for k in ATTRS[3:])
        prompts = []
        for e in x.examples:
            inp = json.loads(e.input)
            prompts.append(inp["prompt"])
            assert inp["prompt"] != "Lonely prompt?" and "Busy answer 2." not in e.input
            s1, s2 = scores[inp["prompt"]]
            d = [a - b for a, b in zip(s1, s2)]
            margin = sum(w[k] * v for k, v in zip(ATTRS, d))
            if not any(d):
                assert e.output == "2"
            elif abs(margin) > 0.005 * sum(map(abs, d)):  # the 2-decimal rounding cannot flip it
                assert e.output == ("1" if margin > 0 else "2")
                checked += 1
        assert len(set(prompts)) == 40  # without replacement
    assert checked > 500 * 40 * 0.8
    busy = [e for x in xs for e in x.examples if '"Busy prompt?"' in e.input]
    assert busy and busy[0].input == ('{"prompt": "Busy prompt?", "response1": "Busy answer 0.", '
                                      '"response2": "Busy answer 1."}')


# --- PRISM: conversations.jsonl and survey.jsonl -------------------------------------------------

def model_turn(turn, wid, score, chosen, text):
    return {"turn": turn, "role": "model", "content": text, "model_provider": "x",
            "model_name": f"model-{wid}", "score": score, "if_chosen": chosen,
            "within_turn_id": wid}


@pytest.fixture(scope="session")
def prism_hub(hub):
    survey = [
        {"user_id": "user1", "survey_only": False, "age": "25-34 years old", "gender": "Female",
         "employment_status": "Working full-time", "education": "University Bachelors Degree",
         "marital_status": "Single", "english_proficiency": "Native speaker",
         "religion": {"self_described": "none", "categorised": "No Affiliation",
                      "simplified": "No Affiliation"},
         "ethnicity": {"self_described": "x", "categorised": "White", "simplified": "White"},
         "location": {"birth_country": "United Kingdom", "reside_country": "United Kingdom",
                      "special_region": "UK", "birth_countryISO": "GBR",
                      "reside_countryISO": "GBR"}},
        {"user_id": "user2", "survey_only": False, "age": "55-64 years old", "gender": None,
         "employment_status": None, "education": None, "marital_status": None,
         "english_proficiency": None, "religion": {"self_described": None, "categorised": None,
                                                   "simplified": None},
         "ethnicity": None, "location": None}]

    def user(text):
        return {"turn": 0, "role": "user", "content": text, "within_turn_id": None}

    def conv(cid, uid, ctype, prompt, history):
        return {"conversation_id": cid, "user_id": uid, "generated_datetime": "2023-11-22 15:56:52",
                "timing_duration_s": 60.0, "timing_duration_mins": 1.0, "conversation_type": ctype,
                "opening_prompt": prompt, "conversation_turns": 1, "conversation_history": history,
                "performance_attributes": {}, "choice_attributes": {}, "open_feedback": "ok"}

    conversations = [
        conv("c1", "user1", "unguided", "What should I cook tonight? ", [
            user("What should I cook tonight?"),
            model_turn(0, 3, 40, False, "Soup."), model_turn(0, 0, 10, False, "Pasta."),
            model_turn(0, 2, 90, True, "A curry."), model_turn(0, 1, 55, False, "Salad.")]),
        conv("c2", "user1", "values guided", "Is honesty always right?", [
            user("Is honesty always right?"), model_turn(0, 0, 50, True, "Mostly."),
            model_turn(0, 1, None, False, "Yes."), model_turn(0, 2, 20, False, "No."),
            model_turn(0, 3, 30, False, "Depends.")]),
        conv("c3", "user1", "controversy guided", "Should voting be compulsory?", [
            user("Should voting be compulsory?"), model_turn(0, 0, 80, True, "Some say yes."),
            model_turn(0, 1, 70, False, "Some say no."), model_turn(0, 2, 60, False, "Unclear."),
            model_turn(0, 3, 5, False, "Never."),
            {"turn": 1, "role": "user", "content": "Why?", "within_turn_id": None},
            model_turn(1, 0, 99, True, "Because.")]),
        conv("c4", "user2", "unguided", "Tell me about birds.", [
            user("Tell me about birds."), model_turn(0, 0, 1, False, "They fly."),
            model_turn(0, 1, 2, False, "Feathers."), model_turn(0, 2, 3, True, "Eggs."),
            model_turn(0, 3, 4, False, "Songs.")]),
        conv("c5", "user2", "values guided", "What matters most?", [
            user("What matters most?"), model_turn(0, 0, 60, True, "Family."),
            model_turn(0, 1, 40, False, "Work."), model_turn(0, 2, 20, False, "Health.")]),
        conv("c6", "user9", "unguided", "Hello there", [user("Hello there")])]
    write_jsonl(hub / "prism/survey.jsonl", survey)
    write_jsonl(hub / "prism/conversations.jsonl", conversations)
    return hub


UNGUIDED = "Ask, request or talk to the model about anything. It is up to you!"
USER1 = ("Age: 25-34 years old; Gender: Female; Education: University Bachelors Degree; "
         "Employment: Working full-time; Country: United Kingdom; Religion: No Affiliation")


def test_prism_prompts(prism_hub):
    xs = build("prism_prompts", prism_hub)
    assert len(xs) == 1 and len(xs[0].examples) == 6  # every conversation, with or without survey
    got = {e.output: e.input for e in xs[0].examples}
    assert got["What should I cook tonight?"] == UNGUIDED
    assert got["Should voting be compulsory?"] == (
        "Ask, request or talk to the model about something controversial or where people would "
        "disagree in your community, culture or country.")
    ind = build("prism_prompts_individual", prism_hub)
    assert sorted(x.group for x in ind) == ["user1", "user2"]  # user9 is not in the survey
    u1 = [x for x in ind if x.group == "user1"][0]
    assert sorted(e.output for e in u1.examples) == [
        "Is honesty always right?", "Should voting be compulsory?", "What should I cook tonight?"]
    assert u1.descriptions == ["Generate opening prompts for conversations (all same individual)",
                               "Generate opening prompts for conversations given user demographics:"
                               f"\n\n{USER1} (all same individual)"]
    u2 = [x for x in ind if x.group == "user2"][0]
    assert u2.descriptions[1].endswith(
        "demographics:\n\nAge: 55-64 years old (all same individual)")


def test_prism_preferences(prism_hub):
    xs = build("prism_individual_preferences", prism_hub)
    # user1: c1 and c3 (c2 has an unscored response); user2 keeps only c4 (c5 has 3) -> dropped
    assert len(xs) == 1 and xs[0].group == "user1" and len(xs[0].examples) == 2
    c1 = [e for e in xs[0].examples if "cook" in e.input][0]
    assert c1.input == ('{"opening_prompt": "What should I cook tonight?", "response_a": "Pasta.", '
                        '"response_b": "Salad.", "response_c": "A curry.", "response_d": "Soup."}')
    assert c1.output == ('{"chosen_response": "c", "score_a": 10, "score_b": 55, "score_c": 90, '
                         '"score_d": 40}')
    c3 = [e for e in xs[0].examples if "voting" in e.input][0]
    assert json.loads(c3.output)["chosen_response"] == "a" and "Because." not in c3.input
    assert xs[0].descriptions == [
        "The following is a prompt a user gave to a chatbot, along with 4 responses. They were "
        "asked to choose their preferred response and rate the responses on a scale of 0 to 100, "
        "where 100 is the most preferred. The responses were labeled A, B, C, D.\n"
        f"User demographics: {USER1}"]


# --- Community Alignment: data/filtered_community_alignment.csv ----------------------------------

CA_HEADER = ["conversation_id", "annotator_id", "assigned_lang", "is_pregenerated_first_prompt",
             "first_turn_prompt", "first_turn_response_a", "first_turn_response_b",
             "first_turn_response_c", "first_turn_response_d", "first_turn_preferred_response",
             "first_turn_feedback", "second_turn_prompt", "annotator_age", "annotator_gender",
             "annotator_education_level", "annotator_political", "annotator_ethnicity",
             "annotator_country"]
PEOPLE = {"A1": ["18-34", "Woman", "Bachelor", "Moderate", "Asian", "india"],
          "A2": ["55+", "Man", "", "Liberal", "White", "france"],
          "A3": ["35-45", "Man", "High school", "Conservative", "Black", "united states"]}


def ca_row(i, who, lang, prompt, preferred, feedback, reply):
    return [f"conv{i}", who, lang, "True", prompt, f"A{i}<|end_of_text|>", f"B{i}", f"C{i}",
            f"D{i}<|end_of_text|>", preferred, feedback, reply, *PEOPLE[who]]


CA_ROWS = [  # (annotator, language, first prompt, preferred, justification, next prompt)
    ("A1", "en", "How do I fix a bike chain?", "response_c", "Clear steps.", "Thanks, and brakes?"),
    ("A1", "en", "Best way to learn Python?", "response_a", "", "Any books?"),
    ("A3", "en", "Best way to learn Python?", "response_b", "", "More?"),
    ("A1", "en", "Plan a trip to Goa", "response_d", "Fun, \"cheap\" ideas", ""),
    ("A2", "fr", "Comment faire du pain ?", "response_b", "Précis.", "Et sans levure ?"),
    ("A2", "fr", "Quel vin avec du fromage ?", "response_a", "", "Merci"),
    ("A1", "en", "Explain taxes simply", "response_b", "", "Example?"),
    ("A3", "en", "Why is the sky blue?", "response_a", "", "Why red at dusk?"),
    ("A2", "fr", "Idées de cadeaux ?", "response_c", "", ""),
    ("A1", "en", "Write a haiku", "", "", ""),  # no preferred response: not read at all
    ("A2", "fr", "Comment dormir mieux ?", "response_d", "", "D'accord"),
    ("A1", "en", "Suggest a movie", "response_a", "Good pick.", "Another one?"),
    ("A3", "en", "Is coffee healthy?", "response_c", "", "How much?"),
]


@pytest.fixture(scope="session")
def ca(hub):
    write_csv(hub / f"community_alignment/{community_alignment.CSV}", CA_HEADER,
              [ca_row(i, *r) for i, r in enumerate(CA_ROWS)])
    return hub


def test_community_alignment_prompts_and_responses(ca):
    xs = build("community_alignment_initial_prompt", ca)
    got = {x.group: sorted(e.output for e in x.examples) for x in xs}
    assert len(xs) == 2 and got == {  # distinct first prompts (the shared one once) per language
        "en": sorted(["How do I fix a bike chain?", "Best way to learn Python?",
                      "Plan a trip to Goa", "Explain taxes simply", "Why is the sky blue?",
                      "Suggest a movie", "Is coffee healthy?"]),
        "fr": sorted(["Comment faire du pain ?", "Quel vin avec du fromage ?", "Idées de cadeaux ?",
                      "Comment dormir mieux ?"])}
    assert {x.group: x.descriptions for x in xs}["fr"] == [
        "Generate a prompt for a language model in the following language: fr."]
    rs = build("community_alignment_response", ca)
    assert sorted(len(x.examples) for x in rs) == [2, 4, 5]  # chunks of 5: en 7 = 5 + 2, fr 4
    bike = [e for e in examples(rs) if e.input == "How do I fix a bike chain?"][0]
    assert sorted(json.loads(bike.output)) == ["A0", "B0", "C0", "D0"]  # end-of-text marks removed


def test_community_alignment_individual(ca):
    reply = build("community_alignment_individual_reply", ca)
    # A1 has 5 rows with a preference, 4 with a next prompt; A2 has 3; A3 has 3
    assert {x.group for x in reply} == {"A1"} and len(examples(reply)) == 4
    bike = [e for e in examples(reply) if e.output == "Thanks, and brakes?"][0]
    assert bike.input == '{"prompt": "How do I fix a bike chain?", "model_response": "C0"}'
    assert reply[0].descriptions == [
        "The following are user replies to a language model.\nUser demographics: "
        '{"age": "18-34", "gender": "Woman", "education_level": "Bachelor", '
        '"annotator_political": "Moderate", "ethnicity": "Asian", "country": "india"}']
    prefs = build("community_alignment_individual_preferences", ca)
    assert {x.group for x in prefs} == {"A1", "A2"}  # A3 has 3 rows
    mine = {g: sorted(e.input for x in prefs if x.group == g for e in x.examples)
            for g in ("A1", "A2")}
    assert len(mine["A1"]) == 5 and len(mine["A2"]) == 4
    trip = [e for e in examples(prefs) if "Goa" in e.input][0]
    assert trip.input == ('{"prompt": "Plan a trip to Goa", "response_a": "A3", '
                          '"response_b": "B3", "response_c": "C3", "response_d": "D3"}')
    assert trip.output == ('{"preferred_response": "response_d", '
                           '"justification": "Fun, \\"cheap\\" ideas"}')
    taxes = [e for e in examples(prefs) if "taxes" in e.input][0]
    assert taxes.output == '{"preferred_response": "response_b", "justification": null}'
    a2 = [x for x in prefs if x.group == "A2"][0]
    assert a2.descriptions[0].endswith('{"age": "55+", "gender": "Man", "annotator_political": '
                                       '"Liberal", "ethnicity": "White", "country": "france"}')
    assert a2.descriptions[1] == community_alignment.PREFERENCES


def test_community_alignment_reads_only_the_first_10000_rows(tmp_path):
    rows = [ca_row(i, "A1", "en", f"Prompt {i}", "response_a", "", "") for i in range(10_000)]
    rows += [ca_row(10_000 + i, "A2", "it", f"Domanda {i}", "response_a", "", "") for i in range(3)]
    write_csv(tmp_path / f"community_alignment/{community_alignment.CSV}", CA_HEADER, rows)
    xs = build("community_alignment_initial_prompt", tmp_path)
    assert {x.group for x in xs} == {"en"} and len(examples(xs)) == 10_000


# --- Collective Alignment 1: comparisons.jsonl, merged_comparisons_annotators.jsonl --------------

def assessment(who, pid, k):
    return {"annotator_id": who, "prompt_id": pid, "importance": "Somewhat important",
            "representativeness": f"level {k}", "subjectivity": "Mostly subjective",
            "ranking_blocks": {"personal": [{"ranking": "A>B>C=D", "rationale": f"{who} likes A"}],
                               "world": [{"ranking": "B>A>C>D", "rationale": "B is safer"}],
                               "unacceptable": [{"rating": ["C", "D"], "rationale": "rude"}]},
            "demographics": ({"age": "25-34", "country": "Kenya", "gender": "female"}
                             if who == "ann1" else {"age": "45-54", "country": "Chile"})}


@pytest.fixture(scope="session")
def cal(hub):
    comparisons = [{"prompt_id": f"p{k}", "prompt": {"id": f"p{k}", "messages": [
        {"role": "system", "content": "Be helpful."}, {"role": "user", "content": f"Question {k}?"},
        {"role": "assistant", "content": "Hm?"}, {"role": "user", "content": f"Really, {k}?"}]},
        "responses": [{"response_index": x,
                       "messages": [{"role": "assistant", "content": f"{x}{k}"}]}
                      for x in "ABCD"], "metadata": {}} for k in (1, 2, 3)]
    merged = [assessment("ann1", "p1", 1), assessment("ann2", "p1", 2), assessment("ann3", "p2", 3),
              assessment("ann1", "p2", 4), assessment("ann2", "p9", 5), assessment("ann1", "p3", 6),
              assessment("ann2", "p3", 7), assessment("ann3", "p3", 8)]
    merged[0]["ranking_blocks"]["personal"] = []  # no personal ranking given
    write_jsonl(hub / "collective_alignment/comparisons.jsonl", comparisons)
    write_jsonl(hub / "collective_alignment/merged_comparisons_annotators.jsonl", merged)
    return hub


def test_collective_alignment(cal):
    xs = build("collective_alignment_individual", cal)
    # ann1: 3 assessments; ann2: 3, one of a prompt not in comparisons; ann3: 2 -> left out
    assert [(x.group, len(x.examples)) for x in xs] == [("ann1", 3), ("ann2", 2)]
    e = xs[0].examples[0]
    assert e.input == ('{"conversation": "Question 1?\\nReally, 1?", "response_a": "A1", '
                       '"response_b": "B1", "response_c": "C1", "response_d": "D1"}')
    assert e.output == ('{"personal_ranking": "", "world_ranking": "B>A>C>D", '
                        '"personal_rationale": "", "world_rationale": "B is safer", '
                        '"unacceptable_responses": "C|D", "unacceptable_rationale": "rude", '
                        '"importance": "Somewhat important", "representativeness": "level 1", '
                        '"subjectivity": "Mostly subjective"}')
    assert json.loads(xs[0].examples[1].output)["personal_rationale"] == "ann1 likes A"
    assert xs[1].descriptions[0].endswith(
        'is subjective.\nAnnotator demographics: {"age": "45-54", "country": "Chile"}')


# --- DROP: data/validation-00000-of-00001.parquet ------------------------------------------------

def test_drop(hub):
    pa = needs_pyarrow()
    schema = pa.schema([("section_id", pa.string()), ("query_id", pa.string()),
                        ("passage", pa.string()), ("question", pa.string()),
                        ("answers_spans", pa.struct([("spans", pa.list_(pa.string())),
                                                     ("types", pa.list_(pa.string()))]))])
    rows = [{"section_id": f"s{i // 3}", "query_id": f"q{i}",
             "passage": f" The team scored {i} goals in game {i // 3}. ",
             "question": f"How many goals were scored in question {i}?",
             "answers_spans": {"spans": [str(i), f"{i} goals"], "types": ["number", "span"]}}
            for i in range(23)]
    rows[5]["answers_spans"] = {"spans": [], "types": []}  # no gold answer: skipped
    write_parquet(hub / "drop/data/validation-00000-of-00001.parquet", rows, schema)
    xs = build("drop", hub)
    assert [len(x.examples) for x in xs] == [10, 10, 2]  # 22 questions in chunks of 10
    got = {e.output: e.input for e in examples(xs)}
    assert sorted(got, key=int) == [str(i) for i in range(23) if i != 5]
    assert got["7"] == ("Passage: The team scored 7 goals in game 2.\n"
                        "Question: How many goals were scored in question 7?")
    assert xs[0].descriptions == [drop.DESCRIPTION] and "passage" in drop.DESCRIPTION
    assert tasks.get("drop").capability and tasks.get("drop").split == "val"


# --- every task: deterministic, one person per instance, seeds matter ----------------------------

def test_deterministic_given_seed(nova, prism_values, arena, prism_hub, ca, cal, steer):
    hub = nova  # every source fixture writes into the same session data directory
    for name in ("novacomet_hypothesis", "valueprism_vrd", "chatbotarena_individual_prefs",
                 "prism_prompts_individual", "community_alignment_response",
                 "collective_alignment_individual", "helpsteer"):
        t = tasks.get(name)
        a, b = t.instances(seed=0, data_dir=hub), t.instances(seed=0, data_dir=hub)
        assert [(x.group, x.examples, x.descriptions) for x in a] == \
            [(x.group, x.examples, x.descriptions) for x in b], name
    h0, h1 = (tasks.get("helpsteer").instances(seed=s, data_dir=hub) for s in (0, 1))
    assert h0[0].descriptions[2] != h1[0].descriptions[2] and h0[0].examples != h1[0].examples
