"""World Values Survey wave 7 (v6.0): individual survey answers (split "val").

File: wvs/WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav (SPSS, from the "WVS Cross-National
Inverted Wave 7 sav v6 0" download), read with pyreadstat (an optional dependency). Each Q*
column is one question: its variable label is the question text and its value labels the
answer options. Read as SPSS does: values declared user-missing come back empty.

wvs_individual: 2000 respondents (a seeded random choice of rows), one instance each holding all
of their answers: "<question>\nOptions:\nA: <option>\n..." -> the letter. As the reference:
options are listed in the reverse of the file's label order; questions with more than 17
options and the numeric questions Q261, Q262, Q270, Q274 (birth year, age, household size,
number of children) are skipped. Descriptions: "response ~ question + options", or the
respondent's country, town size and interview language (B_COUNTRY, N_TOWN, S_INTLANGUAGE:
variable label -> value label) as JSON (the reference printed a Python dict).
Changed: WVS codes non-answers as negative values (don't know, no answer, not asked, missing);
they are not answer options, so they are left out of the option lists, and such answers are
dropped (the reference listed any labelled negative code as an option).
"""
import functools

from tasks import Download, Example, Instance, MissingData, Task
from tasks.common import dumps
from tasks import common

URL = "https://www.worldvaluessurvey.org/WVSDocumentationWV7.jsp"
FILE = "wvs/WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav"
DOWNLOAD = Download(manual=(
    f"Register and download 'WVS Cross-National Inverted Wave 7 sav v6 0.zip' from {URL} "
    "(Data & Documentation > Wave 7), unzip it and place "
    f"WVS_Cross-National_Wave_7_inverted_sav_v6_0.sav at <data_dir>/{FILE}."))
SKIP = {"Q261", "Q262", "Q270", "Q274"}
DEMOGRAPHICS = ("B_COUNTRY", "N_TOWN", "S_INTLANGUAGE")
MAX_OPTIONS = 17
CHUNK = 20000  # rows read at a time


@functools.lru_cache(maxsize=1)
def metadata(path: str):
    try:
        import pyreadstat
    except ImportError:
        raise MissingData(f"reading {path} needs pyreadstat: pip install pyreadstat") from None
    try:
        _, meta = pyreadstat.read_sav(path, metadataonly=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable SPSS .sav file ({type(e).__name__})") from None
    return meta


def read_rows(path: str, wanted: set[int], columns: list[str]) -> dict[int, dict]:
    """{row number: {column: value}} of the wanted rows, reading the file in chunks (the whole
    survey as Python objects would need several GB)."""
    import pyreadstat
    out, start = {}, 0
    for chunk, _ in pyreadstat.read_file_in_chunks(pyreadstat.read_sav, path, chunksize=CHUNK,
                                                    usecols=columns, output_format="dict"):
        n = len(chunk[columns[0]])
        for i in range(start, start + n):
            if i in wanted:
                out[i] = {c: chunk[c][i - start] for c in columns}
        start += n
    return out


def question(meta, col):
    """(question with its lettered options, {code: letter}) of a usable question column, or None."""
    labels = meta.variable_value_labels.get(col)
    if col in SKIP or not labels:
        return None
    options = [(code, text) for code, text in labels.items() if code >= 0][::-1]
    if not options or len(options) > MAX_OPTIONS:
        return None
    letters = [chr(65 + i) for i in range(len(options))]
    text = (meta.column_names_to_labels.get(col) or col).strip()
    body = f"{text}\nOptions:\n" + "\n".join(f"{ltr}: {o}" for ltr, (_, o) in zip(letters, options))
    return body, {code: ltr for ltr, (code, _) in zip(letters, options)}


def individual(seed=0, data_dir=None, n_people=2000):
    path = str(common.root(data_dir, "wvs_individual", (FILE,), URL) / FILE)
    meta = metadata(path)
    qs = {c: q for c in meta.column_names if c.startswith("Q") and (q := question(meta, c))}
    demo_cols = [c for c in DEMOGRAPHICS if c in meta.column_names]
    r = common.rng(seed, "wvs_individual")
    chosen = sorted(int(i) for i in r.permutation(meta.number_rows)[:n_people])
    rows = read_rows(path, set(chosen), list(qs) + demo_cols)
    out = []
    for i in chosen:
        row = rows[i]
        examples = [Example(letter_of[row[c]], text) for c, (text, letter_of) in qs.items()
                    if row[c] in letter_of]
        if not examples:
            continue
        demo = {}
        for c in demo_cols:
            value = meta.variable_value_labels.get(c, {}).get(row[c])
            if value is not None:
                demo[(meta.column_names_to_labels.get(c) or c).strip()] = value
        descriptions = ["response ~ question + options", "Responses from this user: " + dumps(demo)]
        out.append(Instance("wvs_individual", descriptions, examples, group=f"row{i}"))
    return out


TASKS = [Task("wvs_individual", "val", URL, instances=individual, files=(FILE,), download=DOWNLOAD,
              checked="fixture")]
