"""Chemistry regression from BO-ICL (held out, split "val", as in the paper).

chemistry_esol: json{SMILES, SELFIES, InChI, IUPAC} -> measured log solubility (927 compounds),
    shuffled and cut into chunks of 15; each chunk is shown 5 times (the reference's 5
    permutations, reshuffled by data.py), so 62 chunks -> 310 instances.
chemistry_oxidative: catalyst-synthesis prompt -> C2 yield (1,016 experiments), chunks of 10.
Outputs are float strings (str(float(x)): "-2.18", "4.62", "13.0").
"""
import csv
import functools

from tasks import Download, Example, Instance, Task
from tasks.common import dumps
from tasks import common

URL = "https://github.com/ur-whitelab/BO-ICL"
ESOL = ("chemistry/esol_iupac.csv",)
OXID = ("chemistry/train_data_num_feats.csv",)


@functools.lru_cache(maxsize=4)
def load(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def esol(seed=0, data_dir=None):
    rows = load(str(common.root(data_dir, "chemistry_esol", ESOL, URL) / ESOL[0]))
    examples = [Example(str(float(x["measured log(solubility:mol/L)"])),
                        dumps({k: x[k] for k in ("SMILES", "SELFIES", "InChI", "IUPAC")}))
                for x in rows]
    desc = ["Predict the measured log(solubility:mol/L) from SMILES, SELFIES, InChI, IUPAC"]
    chunks = common.partition(examples, common.rng(seed, "chemistry_esol"), 15)
    return [Instance("chemistry_esol", desc, c, group=f"chunk{i}")
            for i, c in enumerate(chunks) for _ in range(5)]


def oxidative(seed=0, data_dir=None):
    rows = load(str(common.root(data_dir, "chemistry_oxidative", OXID, URL) / OXID[0]))
    examples = [Example(str(float(x["C2_yield"])), x["prompt"].strip()) for x in rows]
    desc = ["The following is data from a set of chemistry experiments. Predict the C2_yield "
            "from the experiment description."]
    chunks = common.partition(examples, common.rng(seed, "chemistry_oxidative"), 10)
    return [Instance("chemistry_oxidative", desc, c, group=f"chunk{i}")
            for i, c in enumerate(chunks)]


TASKS = [
    Task("chemistry_esol", "val", URL, instances=esol, files=ESOL, checked="real",
         download=Download(urls={ESOL[0]: "https://raw.githubusercontent.com/ur-whitelab/BO-ICL/"
                                          "HEAD/paper/dataset/data/esol_iupac.csv"})),
    Task("chemistry_oxidative", "val", URL, instances=oxidative, files=OXID, checked="real",
         download=Download(urls={OXID[0]: "https://raw.githubusercontent.com/ur-whitelab/BO-ICL/"
                                          "HEAD/paper/dataset/data/train_data_num_feats.csv"})),
]
