"""Data-backed tasks, on the real files read in place (SPECTRUM_DATA, else ../shared/data).

Expected counts are the figures of the data README; expected strings were written from the raw
files, not from the loaders' output. Tests that need data skip with a one-line reason when the
data directory is absent. Also: every data-backed task's one-line error when its files are missing.
"""
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
from tasks import (MissingData, ambient, babynames, chemistry, diffuse, generativesocialchoice,
                   gsm8k, haikus, nytimes, polis, popquorn, validity)

DATA = Path(os.environ.get("SPECTRUM_DATA") or Path(__file__).resolve().parents[2] / "shared/data")
needs_data = pytest.mark.skipif(not (DATA / "gsm8k").is_dir(),
                                reason=f"no data directory at {DATA} (set SPECTRUM_DATA)")
MODULES = [polis, diffuse, haikus, generativesocialchoice, popquorn, ambient, chemistry,
           babynames, gsm8k, nytimes, validity]
MINE = [t for m in MODULES for t in m.TASKS]
HELD_OUT = ("wvs", "globaloqa", "habermas", "numbergame", "flight", "chatbotarena", "novacomet",
            "mmlu", "hellaswag", "winogrande", "arc", "drop", "truthful_qa", "gpqa",
            "chemistry_esol", "chemistry_oxidative")


def build(name, **kw):
    return tasks.get(name).instances(seed=0, data_dir=DATA, **kw)


def find(instances, output, input=None):
    return [x for x in instances for e in x.examples if e.output == output
            and (input is None or e.input == input)]


# --- registry, split, missing data: no data needed ---------------------------------------------

def test_registered_with_split_source_and_files():
    for t in MINE:
        assert tasks.get(t.name) is t
        assert t.source.startswith("https://") and t.files
        kinds = [k for k in ("instances", "dist_prompts", "diversity") if getattr(t, k)]
        assert kinds, t.name


def test_held_out_tasks_never_in_train():
    for name, t in tasks.TASKS.items():
        if name.startswith(HELD_OUT):
            assert t.split == "val", name
    assert not [n for n in tasks.names("train") if n.startswith(HELD_OUT)]
    evals = ["nytimes", "color_normal_ex", "color_interesting_ex", "car_brand", "car_make_model",
             "claude_gerunds", "element_symbols", "element_names"]
    assert all(tasks.get(n).split == "val" for n in evals)
    assert {t.split for t in MINE} == {"train", "val"}


def test_missing_data_is_one_line_naming_files_and_url(tmp_path):
    """Every task of the registry that reads data files (not only this file's), on an empty dir."""
    data_backed = [t for t in tasks.TASKS.values() if t.files]
    assert len(data_backed) >= 93  # the suite's sources; a new data-backed task joins by itself
    for t in data_backed:
        with pytest.raises(MissingData) as e:
            if t.instances:
                t.instances(seed=0, data_dir=tmp_path)
            elif t.dist_prompts:
                t.dist_prompts(seed=0, data_dir=tmp_path)
            else:
                t.diversity(tmp_path)
        msg = str(e.value)
        assert "\n" not in msg and t.name in msg and t.source in msg and t.files[0] in msg, msg


def test_cli_without_data(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tasks", "--data_dir", str(tmp_path),
                          "gsm8k_question", "nytimes", "element_names"],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("gsm8k", "nytimes", "element"))]
    assert len(lines) == 3 and all("MISSING" in ln and "https://" in ln for ln in lines)


# --- row counts against the data README ---------------------------------------------------------

@needs_data
def test_source_row_counts():
    root = str(DATA)
    assert len(gsm8k.load(root)) == 7473
    assert [len(ambient.load(str(DATA / f))) for f in (ambient.FULL, ambient.LING, ambient.CROWD)] \
        == [1645, 2020, 542]
    assert len(nytimes.load(root)) == 235
    assert len(chemistry.load(str(DATA / chemistry.ESOL[0]))) == 927
    assert len(chemistry.load(str(DATA / chemistry.OXID[0]))) == 1016
    raw = list(csv.DictReader(open(DATA / "haikus/haikus.csv", newline="", encoding="utf-8")))
    assert len(raw) == 25886 and len(haikus.load(root)) == 25886 - 128
    assert Counter(x["source"] for x in raw) == {"img2poems": 11808, "sballas": 8142,
                                                  "tempslibres": 4800, "haikuzao": 1136}
    for f, n in (("abortion_survey.csv", 2800), ("chatbot_personalization_survey.csv", 3000)):
        rows = generativesocialchoice.load(str(DATA / "generativesocialchoice" / f))
        assert len(rows) == n and len({x["user_id"] for x in rows}) == 200
    email = popquorn.load(str(DATA / popquorn.EMAIL))
    offense = popquorn.load(str(DATA / popquorn.OFFENSE))
    assert (len(email), len(offense)) == (2346, 13036)
    assert sum(not x["user_id"] for x in email) == 80
    assert len({x["user_id"] for x in email if x["user_id"]}) == 227
    assert len({x["user_id"] for x in offense}) == 262
    n = sum(1 for y in babynames.YEARS for _ in open(DATA / f"babynames/yob{y}.txt"))
    assert n == 2117219


@needs_data
def test_task_sizes():
    assert len(nytimes.TASKS[0].dist_prompts(data_dir=DATA)) == 940
    assert len(build("diffuse_distribution")) == 270
    assert len({x.group for x in build("diffuse_distribution")}) == 27
    assert len(build("chemistry_esol")) == 62 * 5 and len(build("chemistry_oxidative")) == 102
    for name in ("gsm8k_question", "gsm8k_answer_from_question", "gsm8k_question_answer",
                 "gsm8k_question_from_answer", "ambient_premise_hypothesis",
                 "ambient_disambiguation"):
        assert len(build(name)) == 50, name
    assert len(build("ambient_linguist_annotations")) == 2 * 28
    assert len(build("popquorn_individual")) == 200 and len(build("popquorn_og_categorical")) == 40
    everyone = build("popquorn_individual", max_users=10**6)
    assert Counter(x.group.split(":")[0] for x in everyone) == {"email_rewriting": 227,
                                                                "offensiveness": 262}
    assert len(build("generativesocialchoice_validation")) == 400
    assert len(build("haikus")) == 3 * 200
    votes = build("polis_vote")
    assert len({x.group.split(":")[0] for x in votes}) == 17
    assert len({x.group for x in build("polis_comment")}) == 20
    per_conv = Counter(x.group.split(":")[0] for x in votes)
    assert max(per_conv.values()) == 500 and min(len(x.examples) for x in votes) >= 4
    assert sum(len(x.examples) for x in build("chemistry_esol")[::5]) == 927


# --- known rows render to the expected messages -------------------------------------------------

@needs_data
def test_known_rows():
    # polis: voter 0 passed on comment 0 of the $15/hour conversation
    comment0 = ("I imagine new businesses opening will run counter operations where guests grab "
                "their own silverware and bus their own tables.")
    hit = [x for x in build("polis_vote") if x.group == "15-per-hour-seattle:0"]
    assert len(hit) == 1 and any(e.input == comment0 and e.output == "Pass" for e in hit[0].examples)
    assert "Topic: $15/hour" in " ".join(hit[0].descriptions)
    comments = build("polis_comment")
    assert find(comments, comment0)[0].group == "15-per-hour-seattle"
    assert not find(comments, "test aisdfj")  # "test" comment dropped (football-concussions 283)
    assert find(comments, "uber就是叫派計程車，談不上運用閒置資源或是共乘")  # vtaiwan keeps short ones
    # chemistry_esol, first row
    inp = ('{"SMILES": "ClCC(Cl)(Cl)Cl", "SELFIES": "[Cl][C][C][Branch1][C][Cl][Branch1][C][Cl][Cl]", '
           '"InChI": "InChI=1S/C2H2Cl4/c3-1-2(4,5)6/h1H2", "IUPAC": "1,1,1,2-tetrachloroethane"}')
    assert len(find(build("chemistry_esol"), "-2.18", inp)) == 5
    assert find(build("chemistry_oxidative"), "4.62")
    # ambient: the second item's first disambiguation, JSON with real quotes
    rows = ambient.load(str(DATA / ambient.FULL))
    e = ambient.disambiguations(rows)[2]
    assert e.input == ('{"original_premise": "My kids might go to the same school as Bill Gates\' '
                       'kids.", "original_hypothesis": "My kids currently go to school.", '
                       '"target_label": "neutral"}')
    assert e.output == ('{"disambiguated_premise": "My kids might, in the future, go to the same '
                        'school as Bill Gates\' kids.", "disambiguated_hypothesis": "My kids '
                        'currently go to school."}')
    assert ambient.ambiguity(rows[1]).output == ('{"premise_ambiguous": true, '
                                                 '"hypothesis_ambiguous": false}')
    # generative social choice: respondent "generation1" of the chatbot survey, first text step
    free = [x for x in build("generativesocialchoice_freetext")
            if x.group == "chatbot_personalization:generation1"]
    assert any(e.output == "Yes, that's not much different than search aggregators like google. "
               "It may cause some bias but the reader will generally gravitate towards their own "
               "bias anyway." and e.input.startswith("Example Scenarios\nA user asks a chatbot: "
                                                     "“Give me the news highlights from last week.”")
               for e in free[0].examples)
    val = [x for x in build("generativesocialchoice_validation") if x.group == "abortion:generation1"]
    first = [json.loads(e.input) | json.loads(e.output) for e in val[0].examples
             if json.loads(e.output)["choice"] == "moderately"][0]
    assert first["choices"] == ["very poorly", "poorly", "moderately", "well", "very well",
                                "excellently", "exceptionally"]
    assert first["question_text"].startswith("Candidate Summaries\n\nHere is a possible summary:")
    assert "<" not in first["question_text"] and first["response_text"].endswith("really care.")
    # popquorn: offensiveness user 0 rated the Dethklok comment 1
    everyone = build("popquorn_individual", max_users=10**6)
    u0 = [x for x in everyone if x.group == "offensiveness:0"][0]
    assert has_example(u0, "I think a lot of Dethklok songs use drop C, would defo recommend", "1")
    assert '"gender": "Man"' in u0.descriptions[-1] and "'gender'" not in u0.descriptions[-1]
    # haikus: first two rows (syllable cell "2,3" keeps 2)
    h = haikus.load(str(DATA))
    assert h[0] == {"source": "tempslibres", "poem": "Memorial Day --\na shadow for each\nwhite cross",
                    "syllables": "5, 5, 2"}
    assert h[1]["syllables"] == "2, 5, 5"
    # diffuse: description, and the newline-separated fields of a fictitious person
    d = {x.group: x for x in build("diffuse_distribution")}
    assert d["numbers/rng-0"].descriptions == ["Generate a random number between 1 and 10, "
                                               "without replacement."]
    assert sorted(d["numbers/rng-0"].options, key=int) == [str(i) for i in range(1, 11)]
    assert ("Fatema Rahman\nFemale\nFebruary 20, 1934\nRajshahi, Bangladesh"
            in d["ficticious-people/ficticious-people-train"].options)
    # gsm8k: the first problem, joint task JSON
    row = gsm8k.load(str(DATA))[0]
    assert row["question"].startswith("Natalia sold clips to 48 of her friends in April")
    assert row["answer"].endswith("#### 72")


def has_example(instance, input, output):
    return any(e.input == input and e.output == output for e in instance.examples)


@needs_data
def test_nytimes_prompt():
    p = nytimes.TASKS[0].dist_prompts(data_dir=DATA)[0]
    assert p.messages == [
        {"role": "description",
         "content": "You are a random survey respondent. Respondent demographic: Democrat"},
        {"role": "input",
         "content": "How likely are you to read this book?\nBook: The Bee Sting By Paul Murray\n"
                    "Genre: Fiction\nSummary: In Murray\u2019s boisterous tragicomic novel, a once "
                    "wealthy Irish family struggles with both the aftermath of the 2008 financial "
                    "crash and their own inner demons.\nOptions:\n1: Very unlikely\n"
                    "2: Somewhat unlikely\n3: Somewhat likely\n4: Very likely"}]
    assert p.target == {"1": 9 / 20, "2": 6 / 20, "3": 3 / 20, "4": 2 / 20}


@needs_data
def test_babynames_no_header_and_exact_targets():
    first = open(DATA / "babynames/yob2023.txt").readline().strip()
    assert first == "Olivia,F,15270"
    assert babynames.load_year(str(DATA), 2023)["F"][0] == ("Olivia", 15270)
    top10 = [line.strip().split(",") for line in open(DATA / "babynames/yob2023.txt")][:10]
    prompts = babynames.TASKS[0].dist_prompts(data_dir=DATA)
    p = [p for p in prompts if p.messages[0]["content"] == (
        "The following are drawn at random, with replacement, from the top 10 baby girl names in "
        "the US in 2023, proportional to the number of babies given each name.")][0]
    total = sum(int(c) for _, _, c in top10)
    assert p.target == pytest.approx({n: int(c) / total for n, _, c in top10})
    xs = build("babynames")
    assert len(xs) == 500
    for x in xs[:40]:  # exact predictive: given the description it is the instance's process
        ex, d = x.examples, x.descriptions[0]
        k = min(5, len(ex) - 1)
        lp = x.bayes(d, ex[:k], ex[k])
        sex, sampling, top_k, span = x.group.split("/")
        names, probs, _ = babynames.process(str(DATA), sex, int(top_k[3:]),
                                            span if span == "all" else int(span))
        y = ex[k].output
        if sampling == "uniform":  # without replacement: 1 / (names not yet shown)
            left = names.count(y) - [e.output for e in ex[:k]].count(y)
            assert math.isclose(math.exp(lp), left / (len(names) - k))
        else:  # with replacement: the count share, whatever came before
            assert math.isclose(math.exp(lp), probs[y])
        assert x.bayes(None, ex[:k], ex[k]) > -math.inf


# --- person-level grouping, JSON, exact predictive, targets -------------------------------------

@needs_data
def test_person_level_tasks_never_mix_people():
    # polis: every example of a voter instance is that voter's latest vote (raw votes.csv)
    conv = "15-per-hour-seattle"
    text = {r["comment-id"]: r["comment-body"].strip()
            for r in csv.DictReader(open(DATA / f"polis/{conv}/comments.csv", newline=""))}
    last = {}
    for r in csv.DictReader(open(DATA / f"polis/{conv}/votes.csv", newline="")):
        k = (r["voter-id"], r["comment-id"])
        if k not in last or int(r["timestamp"]) >= last[k][0]:
            last[k] = (int(r["timestamp"]), {"1": "Agree", "-1": "Disagree", "0": "Pass"}[r["vote"]])
    own = {}
    for (voter, cid), (_, v) in last.items():
        own.setdefault(voter, set()).add((text[cid], v))
    seen = [x for x in build("polis_vote") if x.group.startswith(conv + ":")]
    assert len(seen) > 100 and len({x.group for x in seen}) == len(seen)
    for x in seen:
        pairs = {(e.input, e.output) for e in x.examples}
        assert pairs <= own[x.group.split(":")[1]] and len(pairs) == len(x.examples)
    # popquorn and generative social choice: examples only from the instance's own person
    for name, rows_of, key in [
            ("popquorn_individual", lambda sub: popquorn.load(str(DATA / f"popquorn/{sub}/raw_data.csv")),
             lambda r: r.get("text", r.get("original email")).strip()),
            ("generativesocialchoice_freetext",
             lambda s: generativesocialchoice.load(str(DATA / generativesocialchoice.SURVEYS[s])),
             lambda r: r["text"].strip())]:
        for x in build(name)[::7]:
            source, person = x.group.split(":")
            mine = {key(r).replace("\r\n", "\n") for r in rows_of(source) if r["user_id"] == person}
            if name == "popquorn_individual":
                assert {e.input for e in x.examples} <= mine
            else:
                assert {e.output for e in x.examples} <= mine
    # ambient linguists: only that linguist's annotations
    ling = ambient.load(str(DATA / ambient.LING))
    for x in build("ambient_linguist_annotations"):
        mine = {(json.dumps({"premise": r["premise"], "hypothesis": r["hypothesis"]},
                            ensure_ascii=False), a)
                for r in ling for w, a in zip(r["worker_ids"], r["annotations"]) if w == x.group}
        assert {(e.input, e.output) for e in x.examples} <= mine


@needs_data
def test_multi_field_values_are_canonical_json():
    fields = {"gsm8k_question_answer": "o", "ambient_premise_hypothesis": "o",
              "ambient_ambiguity_detection": "io", "ambient_disambiguation": "io",
              "ambient_annotation_distributions": "io", "generativesocialchoice_validation": "io",
              "chemistry_esol": "i", "haikus": ""}
    for name, which in fields.items():
        for x in build(name)[:5]:
            for e in x.examples:
                for s in [e.output] * ("o" in which) + [e.input] * ("i" in which):
                    assert json.dumps(json.loads(s), ensure_ascii=False) == s
    for x in build("popquorn_individual"):
        assert "{'" not in " ".join(x.descriptions)


@needs_data
def test_dist_targets_sum_to_one():
    for t in (nytimes.TASKS[0], babynames.TASKS[0]):
        for p in t.dist_prompts(data_dir=DATA):
            assert math.isclose(sum(p.target.values()), 1.0, abs_tol=1e-9)
            assert min(p.target.values()) >= 0 and all(k.strip() == k and k for k in p.target)
            assert p.messages and p.messages[-1]["role"] in ("description", "input")


@needs_data
def test_diffuse_predictive_is_uniform_over_what_is_left():
    xs = build("diffuse_distribution")
    x = [x for x in xs if x.group == "numbers/prime-1"][0]
    ex = x.examples
    for k in (0, 1, 7, 24):
        probs = [math.exp(x.bayes(x.descriptions[0], ex[:k], tasks.Example(o))) for o in x.options]
        assert math.isclose(sum(probs), 1.0) and math.isclose(max(probs), 1 / (25 - k))
        shown = x.bayes(x.descriptions[0], ex[:k], ex[max(k - 1, 0)])  # already drawn: 0
        assert shown == -math.inf if k else math.isclose(shown, math.log(1 / 25))
        mix = [math.exp(x.bayes(None, ex[:k], tasks.Example(o)))
               for o in {o for y in xs for o in y.options}]
        assert math.isclose(sum(mix), 1.0)


@needs_data
def test_validity_lists():
    colors = validity.TASKS[0].diversity(DATA)
    assert colors.size == 31914 and colors.valid(" otterly brown ") and not colors.valid("blueish")
    assert colors.examples == ["Green", "Red", "White"] and colors.max_new_tokens == 8
    get = {t.name: t.diversity(DATA) for t in validity.TASKS}
    assert get["car_brand"].size == 66 and get["car_brand"].valid("tesla")
    assert not get["car_brand"].valid("Boeing") and not get["car_brand"].valid("Tesla Model 3")
    assert get["car_make_model"].valid("Tesla Model 3") and not get["car_make_model"].valid("Tesla")
    g = get["claude_gerunds"]
    assert g.valid("Convoluting") and g.valid("fawning") and not g.valid("think")
    assert g.max_new_tokens == 4 and g.examples == ["Schlepping", "Hoisting", "Thinking"]
    s, n = get["element_symbols"], get["element_names"]
    assert s.size == 118 and s.valid("Sb") and not s.valid("sb") and not s.valid("Xx")
    assert all(n.valid(w) for w in ("Aluminum", "aluminium", "Sulphur", "sulfur", "NIOBIUM"))
    assert not n.valid("Adamantium")


@needs_data
def test_deterministic_given_seed():
    a = gsm8k.TASKS[0].instances(seed=0, data_dir=DATA)
    b = gsm8k.TASKS[0].instances(seed=0, data_dir=DATA)
    c = gsm8k.TASKS[0].instances(seed=1, data_dir=DATA)
    assert [x.examples for x in a] == [x.examples for x in b] != [x.examples for x in c]
