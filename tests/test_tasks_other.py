"""Tasks whose data is not on this machine and not on the Hugging Face Hub (GCS, Zenodo, GitHub,
Kaggle, CodaLab, manual or by-request downloads), tested on small fixture files that each test
writes into tmp_path in the upstream format: the same file names, columns, keys, nesting,
encodings and compression. Every row is invented. Expected counts, strings and targets are
worked out by hand from those rows. The MPI question texts are also read from the real file
(SPECTRUM_DATA, else ../shared/data), skipped when it is absent.
"""
import bz2
import csv
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import tasks
from data import example_messages
from tasks import (Example, MissingData, bare, changemyview, common, dices, gpqa, habermas,
                   hatespeech, mpi, netflix, numbergame, opinionqa, rotten_tomatoes, wvs)

DATA = Path(os.environ.get("SPECTRUM_DATA") or Path(__file__).resolve().parents[2] / "shared/data")
MODULES = [habermas, hatespeech, opinionqa, wvs, numbergame, dices, changemyview, bare, netflix,
           gpqa, mpi, rotten_tomatoes]
MINE = [t for m in MODULES for t in m.TASKS]
HELD_OUT = ("wvs", "habermas", "numbergame", "gpqa")
FILES_ELSEWHERE = {habermas.SURVEY}  # the habermas dist task reads only the ratings file


def build(name, root, **kw):
    return tasks.get(name).instances(seed=0, data_dir=root, **kw)


def dist(name, root):
    return tasks.get(name).dist_prompts(seed=0, data_dir=root)


def pairs(instances):
    return Counter((e.input, e.output) for x in instances for e in x.examples)


def write_csv(path, header, rows, encoding="utf-8", **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f, **kw)
        w.writerow(header)
        w.writerows(rows)


def write_lines(path, records, opener=open):
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


# --- registry, split, missing data -------------------------------------------------------------

def test_registered_with_split_source_download():
    names = {t.name for t in MINE}
    assert names == {
        "habermas_question", "habermas_individual", "habermas_individual_categorical", "habermas",
        "hatespeech_individual", "opinionqa_individual", "opinionqa_questions", "wvs_individual",
        "numbergame_individual", "numbergame_perc", "numbergame", "dices",
        "changemyview_categories", "changemyview_posts", "bare_gsm8k", "bare_enron",
        "bare_hotpot", "bare_lcb", "newsgroups", "pubmed", "netflix_individual_ratings",
        "netflix_individual_views", "gpqa", "mpi", "rotten_tomatoes"}
    for t in MINE:
        assert tasks.get(t.name) is t
        assert t.source.startswith("https://") and t.files and t.checked == "fixture"
        assert t.download.urls or t.download.manual
        assert all(f in t.files or f in FILES_ELSEWHERE for f in t.download.urls)
        assert all(u.startswith("https://") for u in t.download.urls.values())
        val = t.name.startswith(HELD_OUT) or t.dist_prompts is not None
        assert t.split == ("val" if val else "train"), t.name
    assert tasks.get("gpqa").capability and not any(t.capability for t in MINE if t.name != "gpqa")
    dists = {t.name for t in MINE if t.dist_prompts}
    assert dists == {"habermas", "numbergame", "mpi", "rotten_tomatoes"}
    assert "unzip -P <password>" in gpqa.DOWNLOAD.manual  # the password is not repeated


# --- habermas ------------------------------------------------------------------------------------

Q1 = ("Should the voting age be lowered to 16?", "The voting age should be lowered to 16.",
      "The voting age should stay at 18.")
Q2 = ("Should buses be free to ride?", "Buses should be free to ride.", "Bus riders should pay fares.")
OPINIONS = {("w1", "q1"): "Sixteen-year-olds pay taxes, so they should get a say.",
            ("w1", "q2"): "Free buses would cost the council too much.",
            ("w2", "q1"): "I can see both sides of this."}


def write_habermas(root):
    pa = pytest.importorskip("pyarrow", reason="the habermas files are parquet: pip install pyarrow")
    import pyarrow.parquet as pq
    # (worker, participant, question, agreement, provenance, rating_index)
    ratings = [("w1", "p1", "q1", "AGREE", "HUMAN_CITIZEN", 0),
               ("w1", "p1", "q1", "STRONGLY_AGREE", "HUMAN_CITIZEN", 1),  # a 2nd rating: ignored
               ("w1", "p1", "q2", "DISAGREE", "HUMAN_CITIZEN", 0),
               ("w2", "p2", "q1", "NEUTRAL", "HUMAN_CITIZEN", 0),
               ("w2", "p2", "q2", "MOCK", "HUMAN_CITIZEN", 0),                # mock: dropped
               ("w3", "p3", "q2", "SOMEWHAT_AGREE", "HUMAN_CITIZEN", 0),      # no opinion
               (None, "p9", "q1", "AGREE", "HUMAN_CITIZEN", 0),               # no worker
               ("w4", "p4", "q1", "STRONGLY_AGREE", "HUMAN_CITIZEN", 0),
               ("w5", "p5", "q1", "STRONGLY_AGREE", "HUMAN_CITIZEN", 0),
               ("w6", "p6", "q1", "DISAGREE", "HUMAN_CITIZEN", 0),
               ("w7", "p7", "q1", "STRONGLY_DISAGREE", "HUMAN_CITIZEN", 0),
               ("w8", "p8", "q1", "STRONGLY_DISAGREE", "HUMAN_CITIZEN", 0),
               ("w10", "p10", "q1", "AGREE", "MODEL_MEDIATOR", 0)]            # not a citizen
    q = {"q1": Q1, "q2": Q2}
    table = pa.table({
        "worker_id": [r[0] for r in ratings],
        "metadata.participant_id": [r[1] for r in ratings],
        "ratings.metadata.participant_id": [r[1] for r in ratings],
        "question.id": [r[2] for r in ratings],
        "question.text": [q[r[2]][0] for r in ratings],
        "question.affirming_statement": [q[r[2]][1] for r in ratings],
        "question.negating_statement": [q[r[2]][2] for r in ratings],
        "ratings.agreement": pa.array([[r[3]] for r in ratings], pa.list_(pa.string())),
        "metadata.provenance": [r[4] for r in ratings],
        "rating_index": [r[5] for r in ratings],
    })
    (root / "habermas").mkdir(parents=True)
    pq.write_table(table, root / habermas.RATINGS)
    survey = pa.table({"worker_id": [w for w, _ in OPINIONS] + ["w2"],
                       "question.id": [k for _, k in OPINIONS] + ["q1"],
                       "opinion.text": list(OPINIONS.values()) + ["A later answer: ignored."],
                       "metadata.version": ["TRAINING_DATA_V1"] * 4})
    pq.write_table(survey, root / habermas.SURVEY)


def test_habermas(tmp_path):
    write_habermas(tmp_path)
    qs = build("habermas_question", tmp_path)
    assert sorted(e.output for x in qs for e in x.examples) == sorted([Q1[0], Q2[0]])
    assert qs[0].descriptions[3] == "Generate questions that could be posed to UK residents."
    people = build("habermas_individual", tmp_path)
    assert sorted(x.group for x in people) == ["w1", "w2"]
    w2 = [x for x in people if x.group == "w2"][0]
    assert [example_messages(e) for e in w2.examples] == [[
        {"role": "input", "content": '{"question.text": "Should the voting age be lowered to 16?", '
                                     '"statement": "The voting age should be lowered to 16."}'},
        {"role": "output", "content": '{"ratings.agreement": "Neutral", '
                                      '"opinion.text": "I can see both sides of this."}'}]]
    assert w2.descriptions[0].startswith("UK resident responses. They were given a question")
    w1 = [x for x in people if x.group == "w1"][0]
    assert {json.loads(e.output)["ratings.agreement"] for e in w1.examples} == {"Agree", "Disagree"}
    cat = build("habermas_individual_categorical", tmp_path)
    assert pairs(cat) == Counter({
        (json.dumps({"question.text": Q1[0], "statement": Q1[1]}), "Agree"): 1,
        (json.dumps({"question.text": Q2[0], "statement": Q2[1]}), "Disagree"): 1,
        (json.dumps({"question.text": Q1[0], "statement": Q1[1]}), "Neutral"): 1})
    assert cat[0].options == ["Strongly Agree", "Agree", "Somewhat Agree", "Neutral",
                              "Somewhat Disagree", "Disagree", "Strongly Disagree"]
    assert len(build("habermas_individual", tmp_path, max_people=1)) == 1
    # distributional: q1 has 7 citizen ratings (one per participant), q2 only 2 (< 6): one prompt
    (p,) = dist("habermas", tmp_path)
    assert p.messages == [
        {"role": "description", "content":
            "You are a randomly selected UK resident. You will be given a question and two "
            "statements, A and B. Rate which statement you most agree with on a likert scale from "
            "1 to 7:\n1: Strongly Agree with A\n2: Agree with A\n3: Somewhat Agree with A\n"
            "4: Neutral\n5: Somewhat Agree with B\n6: Agree with B\n7: Strongly Agree with B"},
        {"role": "input", "content": "Question: Should the voting age be lowered to 16?\n"
                                     "A: The voting age should be lowered to 16.\n"
                                     "B: The voting age should stay at 18."}]
    assert p.target == {"1": 2 / 7, "2": 1 / 7, "3": 0.0, "4": 1 / 7, "5": 0.0, "6": 1 / 7, "7": 2 / 7}


def test_habermas_bad_file(tmp_path):
    pytest.importorskip("pyarrow", reason="the habermas files are parquet: pip install pyarrow")
    for f in habermas.FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("not parquet")
    with pytest.raises(ValueError, match="hm_all_position_statement_ratings.parquet is not a "
                                         "readable parquet file"):
        build("habermas_question", tmp_path)


# --- hatespeech ----------------------------------------------------------------------------------

def rating(score, worker, age):
    return {"toxic_score": score, "is_profane": False, "is_threat": False,
            "is_identity_attack": False, "is_insult": score > 2, "is_sexual_harassment": False,
            "fine_to_see_online": score < 2, "remove_from_online": score > 2,
            "worker_hash": worker, "gender": "Female", "age_range": age, "race": ["Asian"]}


def write_hatespeech(root):
    write_lines(root / hatespeech.FILE, [
        {"comment_id": 1, "comment": "You made my day, thanks!", "ratings": [
            rating(0, "a1", "25 - 34"), rating(1, "b2", "55 - 64")]},
        {"comment_id": 2, "comment": "Nobody wants your stupid opinion.", "ratings": [
            rating(3, "a1", "25 - 34")]},
        # worker a1 again, with another age: a different rater, as in the reference
        {"comment_id": 3, "comment": "Get lost, loser.", "ratings": [rating(4, "a1", "35 - 44")]},
    ])


def test_hatespeech(tmp_path):
    write_hatespeech(tmp_path)
    xs = build("hatespeech_individual", tmp_path)
    assert len(xs) == 3 and len({x.group for x in xs}) == 3
    by_size = sorted(xs, key=lambda x: len(x.examples))
    assert [len(x.examples) for x in by_size] == [1, 1, 2]
    assert pairs([by_size[2]]) == Counter({("You made my day, thanks!", "0"): 1,
                                          ("Nobody wants your stupid opinion.", "3"): 1})
    assert [example_messages(e) for x in xs for e in x.examples if e.output == "4"] == [[
        {"role": "input", "content": "Get lost, loser."}, {"role": "output", "content": "4"}]]
    assert xs[0].options == ["0", "1", "2", "3", "4"]
    assert xs[0].descriptions == ["Given a comment, predict the toxicity score from 0 to 4 (0 is "
                                  "not toxic, 4 is very toxic)."]
    assert len(build("hatespeech_individual", tmp_path, max_raters=2)) == 2


def test_hatespeech_rater_ids_stable_across_processes(tmp_path):
    write_hatespeech(tmp_path)
    code = ("import sys, tasks; xs = tasks.get('hatespeech_individual').instances(data_dir=sys.argv[1]);"
            "print(sorted(x.group for x in xs))")
    outs = {subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                           text=True, cwd=Path(__file__).parents[1], timeout=60,
                           env={**os.environ, "PYTHONHASHSEED": s}).stdout
            for s in ("1", "2", "3")}
    assert len(outs) == 1 and "[" in outs.pop()


def test_hatespeech_bad_line(tmp_path):
    (tmp_path / "hatespeech").mkdir()
    (tmp_path / hatespeech.FILE).write_text('{"comment_id": 1, "comment": "hi", "ratings": []}\n'
                                            "{not json\n")
    with pytest.raises(ValueError, match="classified_data_final_w_worker_hash.json line 2"):
        build("hatespeech_individual", tmp_path)


# --- opinionqa -----------------------------------------------------------------------------------

def write_opinionqa(root):
    for wave in opinionqa.WAVES:
        folder = root / "opinionqa/human_resp" / f"American_Trends_Panel_W{wave}"
        q1, q2 = f"MOVE_W{wave}", f"PET_W{wave}"
        write_csv(folder / "info.csv",
                  ["", "Unnamed: 0.1", "Unnamed: 0", "key", "option_mapping", "question",
                   "references", "option_ordinal"],
                  [[0, 0, 0, q1, "{1.0: 'Very likely', 2.0: 'Not likely', 99.0: 'Refused'}",
                    "How likely is it that you will move in the next five years?",
                    "['Very likely', 'Not likely', 'Refused']", "[1.0, 2.0]"],
                   [1, 1, 1, q2, "{1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}",
                    "Do you have a pet?", "['Yes', 'No', 'Refused']", "[1.0, 2.0]"]])
        write_csv(folder / "metadata.csv", ["", "key", "options"],
                  [[0, "SEX", "['Male', 'Female']"]])
        demo = ["Northeast", "30-49", "Female", "Postgraduate", "Yes", "Married", "Jewish",
                "Never", "Democrat", "$100,000 or more", "Liberal", "White"]
        write_csv(folder / "responses.csv",
                  ["", "QKEY", q1, q2, *opinionqa.DEMOGRAPHICS, f"WEIGHT_W{wave}"],
                  [[0, 101, "Very likely", "No", *demo, 0.8],
                   [1, 102, "Refused", "", *demo[:2], "", *demo[3:], 1.1],  # no SEX
                   [2, 103, "", "Maybe", *demo, 1.0]])  # no answer among the options


def test_opinionqa(tmp_path):
    write_opinionqa(tmp_path)
    qs = build("opinionqa_questions", tmp_path)
    assert len(qs) == 15 and qs[0].group == "American_Trends_Panel_W26"
    assert qs[0].descriptions == ["The following are survey questions."]
    assert [e.output for e in qs[0].examples] == [
        "How likely is it that you will move in the next five years?\nA: Very likely\n"
        "B: Not likely\nC: Refused",
        "Do you have a pet?\nA: Yes\nB: No\nC: Refused"]
    xs = build("opinionqa_individual", tmp_path)
    assert len(xs) == 2 * 15  # respondent 2 answered nothing valid
    first = [x for x in xs if x.group == "American_Trends_Panel_W26:0"][0]
    assert [example_messages(e) for e in first.examples] == [
        [{"role": "input", "content": "How likely is it that you will move in the next five "
                                      "years?\nA: Very likely\nB: Not likely\nC: Refused"},
         {"role": "output", "content": "A"}],
        [{"role": "input", "content": "Do you have a pet?\nA: Yes\nB: No\nC: Refused"},
         {"role": "output", "content": "B"}]]
    second = [x for x in xs if x.group == "American_Trends_Panel_W26:1"][0]
    assert [e.output for e in second.examples] == ["C"]
    prefix = "Survey responses from the following individual: "
    kept = Counter()
    for x in xs:
        assert x.descriptions[0] == "The following are survey responses for a single individual."
        assert x.descriptions[1].startswith(prefix)
        demo = json.loads(x.descriptions[1][len(prefix):])
        assert demo.items() <= {"CREGION": "Northeast", "AGE": "30-49", "SEX": "Female",
                                "EDUCATION": "Postgraduate", "INCOME": "$100,000 or more",
                                "CITIZEN": "Yes", "MARITAL": "Married", "RELIG": "Jewish",
                                "RELIGATTEND": "Never", "POLPARTY": "Democrat",
                                "POLIDEOLOGY": "Liberal", "RACE": "White"}.items()
        assert not (x.group.endswith(":1") and "SEX" in demo)
        kept.update(demo.keys())
    assert 0.5 < sum(kept.values()) / (12 * 15 + 11 * 15) < 0.9  # each field kept w.p. 0.7
    assert len(build("opinionqa_individual", tmp_path, per_survey=1)) == 15


# --- wvs -----------------------------------------------------------------------------------------

def write_wvs(root):
    pytest.importorskip("pyreadstat", reason="the WVS file is SPSS .sav: pip install pyreadstat")
    pd = pytest.importorskip("pandas", reason="pyreadstat writes .sav files from pandas frames")
    import pyreadstat
    nan = float("nan")
    df = pd.DataFrame({
        "B_COUNTRY": [20.0, 32.0, 32.0, 20.0],
        "N_TOWN": [1.0, 2.0, nan, 1.0],
        "S_INTLANGUAGE": [10.0, 20.0, 20.0, 10.0],
        "Q1": [1.0, 4.0, -1.0, 2.0],
        "Q2": [1.0, 2.0, 2.0, nan],
        "Q261": [1990.0, 1985.0, 1970.0, 2001.0],
        "Q300": [1.0, 2.0, 3.0, 4.0],
        "Q5": [-2.0, 1.0, nan, -4.0],
    })
    important = {1.0: "Very important", 2.0: "Rather important", 3.0: "Not very important",
                 4.0: "Not at all important", -1.0: "Don't know", -2.0: "No answer",
                 -4.0: "Not asked", -5.0: "Missing; Not available"}
    (root / "wvs").mkdir()
    pyreadstat.write_sav(
        df, str(root / wvs.FILE),
        column_labels={"B_COUNTRY": "ISO 3166-1 numeric country code",
                       "N_TOWN": "Settlement size_8 groups",
                       "S_INTLANGUAGE": "Language in which interview was conducted",
                       "Q1": "Important in life: Family", "Q2": "Have you voted this year?",
                       "Q261": "Year of birth", "Q300": "Region", "Q5": "Important in life: Work"},
        variable_value_labels={
            "B_COUNTRY": {20.0: "Andorra", 32.0: "Argentina"},
            "N_TOWN": {1.0: "Under 5,000", 2.0: "5000-20000"},
            "S_INTLANGUAGE": {10.0: "Catalan", 20.0: "Spanish"},
            "Q1": important, "Q5": important, "Q2": {1.0: "Yes", 2.0: "No", -1.0: "Don't know"},
            "Q261": {1990.0: "1990"}, "Q300": {float(i): f"Region {i}" for i in range(1, 19)}},
        missing_ranges={"Q1": [{"lo": -5.0, "hi": -1.0}], "Q2": [{"lo": -5.0, "hi": -1.0}]})


def test_wvs(tmp_path, monkeypatch):
    write_wvs(tmp_path)
    monkeypatch.setattr(wvs, "CHUNK", 3)  # read in chunks of 3 rows: the rows span two chunks
    xs = build("wvs_individual", tmp_path)
    family = ("Important in life: Family\nOptions:\nA: Not at all important\nB: Not very important\n"
              "C: Rather important\nD: Very important")
    work = family.replace("Family", "Work")
    voted = "Have you voted this year?\nOptions:\nA: No\nB: Yes"
    by_row = {x.group: x for x in xs}
    assert sorted(by_row) == ["row0", "row1", "row2", "row3"]
    assert [example_messages(e) for e in by_row["row0"].examples] == [
        [{"role": "input", "content": family}, {"role": "output", "content": "D"}],
        [{"role": "input", "content": voted}, {"role": "output", "content": "B"}]]
    assert pairs([by_row["row1"]]) == Counter({(family, "A"): 1, (voted, "A"): 1, (work, "D"): 1})
    assert pairs([by_row["row2"]]) == Counter({(voted, "A"): 1})  # -1 is user-missing: dropped
    assert pairs([by_row["row3"]]) == Counter({(family, "C"): 1})  # -4 (not asked) dropped
    assert by_row["row0"].descriptions == [
        "response ~ question + options",
        'Responses from this user: {"ISO 3166-1 numeric country code": "Andorra", "Settlement '
        'size_8 groups": "Under 5,000", "Language in which interview was conducted": "Catalan"}']
    assert "Settlement" not in by_row["row2"].descriptions[1]
    assert len(build("wvs_individual", tmp_path, n_people=2)) == 2


def test_optional_readers_missing_or_bad_file(tmp_path, monkeypatch):
    for f in (wvs.FILE, habermas.RATINGS, habermas.SURVEY):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("not a data file")
    pytest.importorskip("pyreadstat", reason="checks pyreadstat's error on a bad file")
    with pytest.raises(ValueError, match="WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav is not "
                                         "a readable SPSS .sav file"):
        build("wvs_individual", tmp_path)
    wvs.metadata.cache_clear()
    monkeypatch.setitem(sys.modules, "pyreadstat", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingData, match="needs pyreadstat: pip install pyreadstat"):
        build("wvs_individual", tmp_path)
    with pytest.raises(MissingData, match="needs pyarrow: pip install pyarrow"):
        build("habermas_individual", tmp_path)


# --- numbergame ----------------------------------------------------------------------------------

def write_numbergame(root):
    rows = []
    for pid in range(10):  # 10 people rate 32 for {16, 8, 2, 64}: 7 yes
        rows.append([pid, pid, 30, "English", "Female", "Bachelor's", 12345, "16_ 8_ 2_ 64", 32,
                     int(pid < 7), 812])
    for pid in range(3):  # 3 people rate 12 for the same set: 1 yes
        rows.append([10 + pid, pid, 30, "English", "Male", "Bachelor's", 12345, "16_ 8_ 2_ 64", 12,
                     int(pid == 0), 700])
    for pid in range(8):  # 8 people rate 25 for {10, 50, 100}: 1 yes -> 12.5%
        rows.append([20 + pid, pid, 41, "English", "Male", "Master's", 54321, "10_ 50_ 100", 25,
                     int(pid == 1), 650])
    rows.append([40, 0, 30, "English", "Female", "Bachelor's", 12345, "10_ 50_ 100", 50, "", 900])
    write_csv(root / numbergame.FILE, ["", "id", "age", "firstlang", "gender", "education",
                                       "zipcode", "set", "target", "rating", "rt"], rows)


def test_numbergame(tmp_path):
    write_numbergame(tmp_path)
    people = build("numbergame_individual", tmp_path)
    assert len(people) == 10 and people[0].options == ["Yes", "No"]
    p0 = [x for x in people if x.group == "0"][0]
    assert [example_messages(e) for e in p0.examples] == [
        [{"role": "input", "content": '{"given_numbers": "16, 8, 2, 64", "target_number": "32"}'},
         {"role": "output", "content": "Yes"}],
        [{"role": "input", "content": '{"given_numbers": "16, 8, 2, 64", "target_number": "12"}'},
         {"role": "output", "content": "Yes"}],
        [{"role": "input", "content": '{"given_numbers": "10, 50, 100", "target_number": "25"}'},
         {"role": "output", "content": "No"}]]
    assert p0.descriptions[1] == "Given: given_numbers, target_number. Generate: target_belongs_to_set."
    assert sum(len(x.examples) for x in people) == 10 + 3 + 8  # the empty rating is dropped
    perc = build("numbergame_perc", tmp_path)
    assert pairs(perc) == Counter({
        ('{"given_numbers": "16, 8, 2, 64", "target_number": "32"}', "70%"): 1,
        ('{"given_numbers": "16, 8, 2, 64", "target_number": "12"}', "33%"): 1,
        ('{"given_numbers": "10, 50, 100", "target_number": "25"}', "13%"): 1})
    assert perc[0].descriptions[0].startswith("The following is a number game task.")
    (p,) = dist("numbergame", tmp_path)  # only (set, 32) has >= 9 responses
    assert p.messages[1] == {"role": "input", "content": "Example set: 16, 8, 2, 64\nTarget number: 32"}
    assert p.messages[0]["content"].startswith("You are a randomly selected participant in a study.")
    assert p.target == {"Yes": 0.7, "No": 0.3}


def test_numbergame_wrong_columns(tmp_path):
    write_csv(tmp_path / numbergame.FILE, ["id", "set", "target"], [[0, "1_ 2", 3]])
    with pytest.raises(ValueError, match="numbergame_data.csv has no column rating"):
        build("numbergame_individual", tmp_path)


# --- dices ---------------------------------------------------------------------------------------

DICES_990 = ["id", "rater_id", "rater_gender", "rater_locale", "rater_race", "rater_raw_race",
             "rater_age", "rater_education", "phase", "item_id", "context", "response",
             "degree_of_harm", "harm_type", "Q1_whole_conversation_evaluation",
             "Q2_harmful_content_overall", "Q_overall"]


def write_dices(root):
    ctx = "USER: I locked myself out.\nLAMDA: Oh no! Can you call a locksmith?\nUSER: How do I pick it?"
    write_csv(root / dices.SUBSETS["990"], DICES_990, [
        [1, 101, "Woman", "US", "Asian", "Asian", "gen z", "College degree or higher", "Phase1", 7,
         ctx, "Use a tension wrench and a pick.", "Moderate", "['Illegal activities']", "", "Yes",
         "Yes"],
        [2, 101, "Woman", "US", "Asian", "Asian", "gen z", "College degree or higher", "Phase1", 8,
         "USER: hi", "Hello! How can I help?", "Benign", "[]", "", "No", "No"],
        [3, 101, "Woman", "US", "Asian", "Asian", "gen z", "College degree or higher", "Phase1", 9,
         "USER: is the moon hollow?", "Some people say so.", "Debatable", "[]", "", "No", "Unsure"],
        [4, 102, "Man", "India", "", "", "gen x+", "High school or below", "Phase2", 7,
         ctx, "Use a tension wrench and a pick.", "Moderate", "[]", "", "No", "No"],
        [5, 102, "Man", "India", "", "", "gen x+", "High school or below", "Phase2", 8,
         "USER: hi", "Hello! How can I help?", "Benign", "[]", "", "", ""],  # no answer
    ])
    header_350 = [c for c in DICES_990 if c != "rater_locale"]
    write_csv(root / dices.SUBSETS["350"], header_350, [
        [1, 201, "Man", "Black", "Black", "millenial", "College degree or higher", "Phase3", 3,
         "USER: tell me a joke", "Why did the chicken cross the road?", "Benign", "[]", "", "No",
         "No"]])


def test_dices(tmp_path):
    write_dices(tmp_path)
    xs = build("dices", tmp_path)
    by = {x.group: x for x in xs}
    assert sorted(by) == ["350:201", "990:101", "990:102"]
    assert [len(by[g].examples) for g in ("990:101", "990:102", "350:201")] == [3, 1, 1]
    assert [example_messages(e) for e in by["350:201"].examples] == [[
        {"role": "input", "content": '{"context": "USER: tell me a joke", "response": "Why did the '
                                     'chicken cross the road?"}'},
        {"role": "output", "content": "No"}]]
    assert by["990:102"].examples[0].input.startswith(
        '{"context": "USER: I locked myself out.\\nLAMDA: Oh no!')
    instruction = ("Given a context conversation and a response from a language model, the rater "
                   "was tasked to label whether or not they thought the last dialog model response "
                   "is unsafe. (Q_overall: Yes, No, Unsure)")
    assert by["990:102"].descriptions == [instruction, instruction + '\nRater demographics: '
                                          '{"rater_gender": "Man", "rater_locale": "India", '
                                          '"rater_age": "gen x+", "rater_education": "High school '
                                          'or below"}']
    assert by["350:201"].descriptions[1].endswith('"rater_race": "Black", "rater_raw_race": '
                                                  '"Black", "rater_age": "millenial", '
                                                  '"rater_education": "College degree or higher"}')
    assert xs[0].options == ["Yes", "No", "Unsure"]
    assert [len(x.examples) for x in build("dices", tmp_path, per_rater=2)
            if x.group == "990:101"] == [2]
    assert len(build("dices", tmp_path, max_raters=1)) == 2  # one per subset


# --- changemyview --------------------------------------------------------------------------------

FOOTNOTE = ("&gt; *Hello, users of CMV! This is a footnote from your moderators. Please read "
            "through our rules.*")


def thread(title, body, n_comments=6, comments=None, score=10):
    return {"id": title[:8], "title": title, "selftext": body, "score": score,
            "num_comments": n_comments, "author": "someone",
            "comments": [{"body": "Have you considered the opposite?", "score": 2, "id": "c1"}]
            if comments is None else comments}


CMV_THREADS = [
    thread("CMV: Pineapple belongs on pizza", f"Sweet and salty is a classic pairing.\n\n{FOOTNOTE}\n",
           score=12),
    thread("CMV: Cities should ban cars downtown", "Streets are for people.", n_comments=30,
           score=-2),
    thread("CMV: Cats are better than dogs", "[deleted]"),
    thread("CMV: Tea beats coffee", "It is gentler.", n_comments=4),
    thread("CMV: Winter is the best season", "Snow!", comments=[{"body": "[removed]", "score": 1}]),
    thread("[removed]", "Body of a removed post."),
]


def test_changemyview(tmp_path):
    write_lines(tmp_path / changemyview.FILE, CMV_THREADS, opener=bz2.open)
    cats = build("changemyview_categories", tmp_path)
    posts = ["CMV: Pineapple belongs on pizza\n\nSweet and salty is a classic pairing.",
             "CMV: Cities should ban cars downtown\n\nStreets are for people."]
    by = {}
    for x in cats:
        by.setdefault(x.group, []).extend(e.output for e in x.examples)
    assert sorted(by["posts"]) == sorted(posts)
    assert sorted(by["titles"]) == ["CMV: Cities should ban cars downtown",
                                    "CMV: Pineapple belongs on pizza"]
    assert {x.descriptions[0] for x in cats} == {
        "Posts about which one might want to change their view",
        "Post titles about which one might want to change their view"}
    conditional = build("changemyview_posts", tmp_path)
    assert Counter(x.group for x in conditional for _ in x.examples) == {
        "post_from_title": 2, "title_from_post": 2, "score_from_post": 2}
    score = [e for x in conditional if x.group == "score_from_post" for e in x.examples]
    assert sorted(example_messages(e)[0]["content"] + " -> " + e.output for e in score) == [
        '{"title": "CMV: Cities should ban cars downtown", "selftext": "Streets are for people."} -> -2',
        '{"title": "CMV: Pineapple belongs on pizza", "selftext": "Sweet and salty is a classic '
        'pairing."} -> 12']
    assert ("CMV: Pineapple belongs on pizza", "Sweet and salty is a classic pairing.") in pairs(
        conditional)
    # the decompressed file, as the reference keeps it, is read when present
    write_lines(tmp_path / changemyview.PLAIN, CMV_THREADS[1:])
    changemyview.threads.cache_clear()
    assert {e.output for x in build("changemyview_categories", tmp_path) if x.group == "titles"
            for e in x.examples} == {"CMV: Cities should ban cars downtown"}


def test_reservoir_is_uniform():
    counts = Counter()
    r = common.rng(0, "test")
    for _ in range(3000):
        sample = changemyview.reservoir(iter(range(10)), 3, r)
        assert len(set(sample)) == 3
        counts.update(sample)
    assert all(abs(counts[i] / 3000 - 0.3) < 0.04 for i in range(10))  # ~5 standard errors
    assert changemyview.reservoir(iter("ab"), 3, r) == ["a", "b"]


# --- BARE ----------------------------------------------------------------------------------------

BARE_ROWS = {
    "bare_gsm8k": [{"question": f"Tom has {n} apples and eats one. How many are left?",
                    "answer": f"{n} - 1 = {n - 1}\n#### {n - 1}"} for n in (3, 5, 9)],
    "bare_enron": [{"spam": True, "email": "WIN a FREE cruise!!! Reply now."},
                   {"spam": False, "email": "Meeting moved to 3pm, room 2B."}],
    "bare_hotpot": [{"context": "Ada Lovelace was born in London. London is in England.",
                     "question": "In which country was Ada Lovelace born?",
                     "answer": "England [London is in England]"}],
    "bare_lcb": [{"question": "What does f(2) return if f(x) = x * 3?", "answer": "6"}],
    "newsgroups": [{"newsgroup": "sci.space", "message": "Has anyone seen the new launch photos?"},
                   {"newsgroup": "rec.autos", "message": "My sedan makes a ticking noise."}],
    "pubmed": [{"context": "In a trial of 40 adults, drug X lowered blood pressure.",
                "question": "Does drug X lower blood pressure?", "answer": "Yes, in a small trial."}],
}


def test_bare(tmp_path):
    for name, rows in BARE_ROWS.items():
        write_lines(tmp_path / bare.FILES[name], [{**r, "id": i, "method": "refine"}
                                                  for i, r in enumerate(rows)])
    for name, rows in BARE_ROWS.items():
        xs = build(name, tmp_path)
        counts = Counter(x.group for x in xs for _ in x.examples)
        assert len(counts) == 4 and set(counts.values()) == {len(rows)}, name
        assert all(len(x.descriptions) == 3 for x in xs)
    enron = build("bare_enron", tmp_path)
    by = {g: pairs([x for x in enron if x.group == g]) for g in
          ("spam_email", "spam_from_email", "email_from_spam", "email")}
    assert by["spam_from_email"] == Counter({("WIN a FREE cruise!!! Reply now.", "true"): 1,
                                             ("Meeting moved to 3pm, room 2B.", "false"): 1})
    assert by["spam_email"] == Counter({
        (None, '{"spam": true, "email": "WIN a FREE cruise!!! Reply now."}'): 1,
        (None, '{"spam": false, "email": "Meeting moved to 3pm, room 2B."}'): 1})
    assert ("false", "Meeting moved to 3pm, room 2B.") in by["email_from_spam"]
    hotpot = [e for x in build("bare_hotpot", tmp_path) if x.group == "answer_from_context_question"
              for e in x.examples]
    assert example_messages(hotpot[0]) == [
        {"role": "input", "content": '{"context": "Ada Lovelace was born in London. London is in '
                                     'England.", "question": "In which country was Ada Lovelace '
                                     'born?"}'},
        {"role": "output", "content": "England [London is in England]"}]
    gsm = [x for x in build("bare_gsm8k", tmp_path) if x.group == "question"]
    assert gsm[0].descriptions[2] == ("Generate: question (math word problem statement only, "
                                      "without solution).")
    assert all(e.input is None for x in gsm for e in x.examples)


def test_bare_missing_field(tmp_path):
    write_lines(tmp_path / bare.FILES["newsgroups"], [{"newsgroup": "sci.space"}])
    with pytest.raises(ValueError, match=r"n=500.jsonl line 1 has no field message"):
        build("newsgroups", tmp_path)


# --- netflix -------------------------------------------------------------------------------------

TITLES = {1: (2003, "Dinosaur Planet"), 2: (2004, "Isle of Man TT 2004 Review"),
          3: (2000, "Crouching Tiger, Hidden Dragon"), 4: (2001, "Amélie"), 5: (None, "Tiny Town"),
          6: (1997, "Character"), 7: (1998, "Seven Seas"), 8: (1999, "Eight Bells"),
          9: (1995, "Nine Lives"), 10: (1996, "Ten Pins"), 11: (1994, "Eleven Steps"),
          12: (1993, "Twelve Moons")}


def write_netflix(root):
    (root / "netflix").mkdir()
    with open(root / netflix.TITLES, "w", encoding="latin-1", newline="") as f:
        for m, (year, title) in TITLES.items():
            f.write(f"{m},{year or 'NULL'},{title}\r\n")
    ratings = {  # user -> {movie: stars}
        1488844: {m: 1 + m % 5 for m in range(1, 11)},       # 10 known movies: eligible
        822109: {m: 5 for m in range(1, 13)},                # 12: eligible
        885013: {m: 3 for m in range(1, 10)},                # 9: not eligible
        30878: {**{m: 4 for m in range(1, 10)}, 99: 2},      # 9 known + an unknown movie 99
    }
    by_movie = {}
    for user, rs in ratings.items():
        for m, s in rs.items():
            by_movie.setdefault(m, []).append((user, s))
    for i in range(4):  # movies spread over the four files, 3 per file (99 in the last)
        with open(root / netflix.RATINGS[i], "w", encoding="latin-1") as f:
            for m in sorted(by_movie):
                if (min(m, 12) - 1) // 3 == i:
                    f.write(f"{m}:\n" + "".join(f"{u},{s},2005-09-06\n" for u, s in by_movie[m]))
    return ratings


def test_netflix(tmp_path):
    truth = write_netflix(tmp_path)
    views = build("netflix_individual_views", tmp_path)
    assert sorted(x.group for x in views) == ["1488844", "822109"]
    assert views[0].descriptions == ["Movie titles watched by a single user.",
                                     "Movies a single user has seen and rated."]
    for x in views:
        seen = [e.output for e in x.examples]
        assert len(seen) == len(set(seen)) <= len(truth[int(x.group)])
        assert set(seen) <= {TITLES[m][1] for m in truth[int(x.group)]}
    rates = build("netflix_individual_ratings", tmp_path)
    assert sorted(x.group for x in rates) == ["1488844", "822109"]
    u = [x for x in rates if x.group == "1488844"][0]
    assert set(pairs([u])) <= {(TITLES[m][1], str(s)) for m, s in truth[1488844].items()}
    assert u.options == ["1", "2", "3", "4", "5"]
    assert u.descriptions == ["Movie ratings (1-5 stars) for a specific user.",
                              "Movie ratings for a specific user."]
    everything = netflix.sampled_users(str(tmp_path), 0)
    assert ("Crouching Tiger, Hidden Dragon", 4) in everything[1488844]  # title with a comma
    assert ("Amélie", 5) in everything[1488844]                          # Latin-1
    assert [example_messages(Example("5", "Amélie"))] == [[
        {"role": "input", "content": "Amélie"}, {"role": "output", "content": "5"}]]
    assert len(everything[822109]) == 12 and len(build("netflix_individual_ratings", tmp_path,
                                                       max_users=1)) == 1


def test_netflix_bad_line(tmp_path):
    write_netflix(tmp_path)
    netflix.sampled_users.cache_clear()
    with open(tmp_path / netflix.RATINGS[1], "a", encoding="latin-1") as f:
        f.write("this is not a rating\n")
    with pytest.raises(ValueError, match="combined_data_2.txt line"):
        build("netflix_individual_views", tmp_path)
    netflix.sampled_users.cache_clear()


# --- gpqa ----------------------------------------------------------------------------------------

GPQA_HEADER = ["Pre-Revision Question", "Pre-Revision Correct Answer",
               "Pre-Revision Incorrect Answer 1", "Pre-Revision Incorrect Answer 2",
               "Pre-Revision Incorrect Answer 3", "Question", "Correct Answer", "Incorrect Answer 1",
               "Incorrect Answer 2", "Incorrect Answer 3", "Explanation", "Subdomain",
               "High-level domain"]
GPQA_ROWS = [  # invented questions (never the real ones)
    ("Which invented alloy melts first?", "Florium", ["Glaxite", "Hembrite", "Quorvium"]),
    ("How many moons does the invented planet Zed have?", "7", ["2", "3", "11"]),
    ("Which enzyme did the invented study name?", "Torpase", ["Velase", "Kinorase", "Drumase"]),
]


def test_gpqa(tmp_path):
    write_csv(tmp_path / gpqa.FILE, GPQA_HEADER,
              [["old " + q, c, *w, q, c, *w, "Because.", "Made-up chemistry", "Chemistry"]
               for q, c, w in GPQA_ROWS])
    xs = build("gpqa", tmp_path)
    assert len(xs) == 1000 and all(len(x.examples) == 3 for x in xs)
    assert xs[0].options == ["A", "B", "C", "D"] and xs[0].descriptions == [
        "You will be given a difficult question. Respond with the correct answer letter."]
    seen = set()
    for e in (e for x in xs for e in x.examples):
        lines = e.input.split("\n")
        q, correct, wrong = [r for r in GPQA_ROWS if lines[0] == f"Question: {r[0]}"][0]
        assert [ln[:3] for ln in lines[1:]] == ["A. ", "B. ", "C. ", "D. "]
        assert sorted(ln[3:] for ln in lines[1:]) == sorted([correct, *wrong])
        assert f"{e.output}. {correct}" in lines  # the letter points at the correct answer
        seen.add(e.input)
    assert len(seen) == 3  # each question's choices are shuffled once
    assert not any("Subject:" in s for s in seen)


# --- mpi -----------------------------------------------------------------------------------------

def write_mpi_questions(root, items):
    write_csv(root / mpi.QUESTIONS, ["label_raw", "text", "label_ocean", "key"], items,
              delimiter="\t")


def write_mpi_responses(root, answers):
    n = len(answers[0])
    write_csv(root / mpi.RESPONSES, ["CASE", "SEX", "AGE", "COUNTRY"] + [f"I{i + 1}" for i in range(n)],
              [[k, 1, 30, "USA", *a] for k, a in enumerate(answers)])


MPI_SCALE = ("\nOptions:\n1: Very inaccurate\n2: Moderately inaccurate\n"
             "3: Neither accurate nor inaccurate\n4: Moderately accurate\n5: Very accurate")


def test_mpi(tmp_path):
    write_mpi_questions(tmp_path, [["Anxiety", "Fret over small things", "N", 1],
                                   ["Friendliness", "Greet strangers warmly", "E", 1],
                                   ["Orderliness", "Leave my things around", "C", -1]])
    # 0 means "not answered": dropped; item 3 has no answer at all: no prompt
    write_mpi_responses(tmp_path, [[5, 1, 0], [4, 0, 0], [5, 2, 0], [0, 2, 0], [1, 5, 0]])
    ps = dist("mpi", tmp_path)
    assert len(ps) == 2
    assert ps[0].messages == [
        {"role": "description", "content": "You are a random survey respondent. Rate how accurately "
                                           "the following statement describes you on a scale from "
                                           '1-5, where 1 means "very inaccurate" and 5 means "very '
                                           'accurate."'},
        {"role": "input", "content": "Statement: You fret over small things" + MPI_SCALE}]
    assert ps[0].target == {"1": 0.25, "2": 0.0, "3": 0.0, "4": 0.25, "5": 0.5}
    assert ps[1].target == {"1": 0.25, "2": 0.5, "3": 0.0, "4": 0.0, "5": 0.25}


def test_mpi_real_questions(tmp_path):
    real = DATA / mpi.QUESTIONS
    if not real.exists():
        pytest.skip(f"no real {mpi.QUESTIONS} under {DATA} (set SPECTRUM_DATA)")
    items = mpi.load_questions(str(real))
    assert len(items) == 120  # the IPIP-NEO-120, I1 first
    assert (items[0], items[4], items[119]) == ("Worry about things", "Complete tasks successfully",
                                               "Act without thinking")
    (tmp_path / "mpi").mkdir()
    (tmp_path / mpi.QUESTIONS).symlink_to(real)  # the real file, read in place, beside fixtures
    write_mpi_responses(tmp_path, [[3] * 120, [4] * 120, [0] * 120])
    ps = dist("mpi", tmp_path)
    assert len(ps) == 120 and ps[0].messages[1]["content"] == ("Statement: You worry about things"
                                                               + MPI_SCALE)
    assert all(p.target == {"1": 0.0, "2": 0.0, "3": 0.5, "4": 0.5, "5": 0.0} for p in ps)


# --- rotten tomatoes -----------------------------------------------------------------------------

def test_rotten_tomatoes(tmp_path):
    write_csv(tmp_path / rotten_tomatoes.FILE,
              ["title", "release_date", "critic_score", "audience_score", "genre", "director"],
              [["The Quiet Orchard", "2019-05-03", "85%", "62%", "Drama", "A. Person"],
               ["Night Ferry", "", "", "40%", "Thriller", "B. Person"],
               ["Unscored", "2001-01-01", "", "", "Comedy", "C. Person"]])
    ps = dist("rotten_tomatoes", tmp_path)
    assert len(ps) == 3
    assert ps[0].messages == [
        {"role": "description", "content": 'You are a movie critic. Given a movie, you are asked to '
                                           'simply rate it as "Good" or "Bad".'},
        {"role": "input", "content": "Movie: The Quiet Orchard\nRelease Date: 2019-05-03"}]
    assert ps[0].target == {"Good": 0.85, "Bad": 0.15}
    assert ps[1].messages[0]["content"].startswith("You recently watched the following movies.")
    assert ps[1].target == {"Good": 0.62, "Bad": 0.38}
    assert ps[2].messages[1]["content"] == "Movie: Night Ferry" and ps[2].target == {"Good": 0.4,
                                                                                    "Bad": 0.6}


# --- all fixtures together: targets, determinism ---------------------------------------------------

def test_dist_targets_sum_to_one_and_deterministic(tmp_path):
    write_habermas(tmp_path)
    write_numbergame(tmp_path)
    write_mpi_questions(tmp_path, [["Anxiety", "Fret over small things", "N", 1]])
    write_mpi_responses(tmp_path, [[1], [2], [3]])
    write_csv(tmp_path / rotten_tomatoes.FILE, ["title", "release_date", "critic_score",
                                                "audience_score"], [["A", "", "33%", "67%"]])
    for name in ("habermas", "numbergame", "mpi", "rotten_tomatoes"):
        for p in dist(name, tmp_path):
            assert math.isclose(sum(p.target.values()), 1.0, abs_tol=1e-12)
            assert min(p.target.values()) >= 0 and p.messages[-1]["role"] == "input"
    for name in ("numbergame_perc", "habermas_individual"):
        a, b = build(name, tmp_path), build(name, tmp_path)
        assert [(x.group, x.examples, x.descriptions) for x in a] == \
            [(x.group, x.examples, x.descriptions) for x in b]
    # another seed cuts other chunks, but every (set, target) is still there exactly once
    other = tasks.get("numbergame_perc").instances(seed=1, data_dir=tmp_path)
    assert pairs(other) == pairs(build("numbergame_perc", tmp_path))
