"""Titanic passengers (the 891 Kaggle training rows), two training tasks.

titanic_all_variables: no input -> json{has_survived, passenger_class, is_male, age, sibsp,
    parch, fare, embarked} (the passenger population, jointly).
titanic_survival_prediction: json{passenger_class, is_male, age, sibsp, parch, fare, embarked}
    -> has_survived ("0"/"1", options "0", "1").
Each shuffles the passengers and cuts them into chunks of Geometric+Poisson(64) (every passenger
in exactly one instance, about 14 instances), as the reference. Field names and the "0"/"1"
survival string are the reference's (Hugging Face mstz/titanic).
Fixed: an unknown age or port is null (mstz/titanic wrote age -1), sibsp/parch are integers
(mstz/titanic: floats, "1.0"), and a whole-number age is written without ".0".
Layouts read:
  titanic/survival/train/0000.parquet   mstz/titanic as the Hub serves it (revision
      refs/convert/parquet; passenger_class, is_male, age, sibsp, parch, ticket, fare, cabin,
      embarked, has_survived): what `python -m tasks download titanic_all_variables` fetches;
  titanic/titanic.csv   Kaggle's train.csv (PassengerId, Survived, Pclass, Name, Sex, Age, SibSp,
      Parch, Ticket, Fare, Cabin, Embarked), the same rows.
"""
import csv
import functools
from pathlib import Path

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import _layout, common

URL = "https://huggingface.co/datasets/mstz/titanic"
PARQUET = "titanic/survival/train/0000.parquet"
KAGGLE = "titanic/titanic.csv"
FEATURES = ("passenger_class", "is_male", "age", "sibsp", "parch", "fare", "embarked")


def number(x: float | None):
    """A float, or an int when it is whole (22.0 -> 22); None stays None."""
    return None if x is None else int(x) if float(x).is_integer() else float(x)


def known(age) -> bool:
    return age is not None and age == age and age >= 0  # mstz/titanic writes -1 (or NaN)


@functools.lru_cache(maxsize=2)
def load(root: str, which: int) -> list[dict]:
    """One dict per passenger, in file order, with the output field names."""
    if which == 0:
        return [{"has_survived": str(int(x["has_survived"])),
                 "passenger_class": int(x["passenger_class"]), "is_male": bool(x["is_male"]),
                 "age": number(x["age"] if known(x["age"]) else None),
                 "sibsp": int(x["sibsp"]), "parch": int(x["parch"]), "fare": float(x["fare"]),
                 "embarked": x["embarked"] or None}
                for x in _layout.read_parquet(Path(root, PARQUET), "titanic")]
    path = Path(root, KAGGLE)
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for x in csv.DictReader(f):
            if x["Sex"] not in ("male", "female") or x["Survived"] not in ("0", "1"):
                raise ValueError(f"{path}: passenger {x['PassengerId']} has Sex {x['Sex']!r}, "
                                 f"Survived {x['Survived']!r}")
            out.append({"has_survived": x["Survived"], "passenger_class": int(x["Pclass"]),
                        "is_male": x["Sex"] == "male",
                        "age": number(float(x["Age"])) if x["Age"] else None,
                        "sibsp": int(x["SibSp"]), "parch": int(x["Parch"]),
                        "fare": float(x["Fare"]), "embarked": x["Embarked"] or None})
    return out


def _task(name, example, descriptions, options=None):
    def instances(seed=0, data_dir=None):
        root, which = _layout.layout(data_dir, name, [(PARQUET,), (KAGGLE,)], URL)
        examples = [example(x) for x in load(str(root), which)]
        chunks = common.partition(examples, common.rng(seed, name), lambda r: common.gp(r, 64))
        return [Instance(name, descriptions, c, group=f"chunk{k}", options=options)
                for k, c in enumerate(chunks)]
    return Task(name, "train", URL, instances=instances, files=(PARQUET,), checked="real",
                download=Download(hub="mstz/titanic", hub_files=("survival/train/0000.parquet",),
                                  hub_dir="titanic", hub_revision="refs/convert/parquet"))


TASKS = [
    _task("titanic_all_variables",
          lambda x: Example(dumps({"has_survived": x["has_survived"]}
                                  | {k: x[k] for k in FEATURES})), [
        "Generate complete passenger information for the Titanic dataset, including survival "
        "status, passenger class, demographics, and travel details.",
        "Create realistic Titanic passenger profiles with all relevant attributes including "
        "whether they survived the disaster.",
        "Generate: has_survived (survival outcome), passenger_class (1st/2nd/3rd class), is_male "
        "(gender), age, sibsp (siblings/spouses aboard), parch (parents/children aboard), fare "
        "(ticket price), embarked (port of embarkation)."]),
    _task("titanic_survival_prediction",
          lambda x: Example(x["has_survived"], dumps({k: x[k] for k in FEATURES})), [
        "Given passenger information including class, demographics, family size, and travel "
        "details, predict whether the passenger survived the Titanic disaster.",
        "Predict Titanic passenger survival based on socioeconomic status, demographics, and "
        "family connections.",
        "Given: passenger_class (1st/2nd/3rd class), is_male (gender), age, sibsp "
        "(siblings/spouses), parch (parents/children), fare (ticket price), embarked (port). "
        "Generate: has_survived (survival status)."], ["0", "1"]),
]
