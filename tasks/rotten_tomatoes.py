"""Rotten Tomatoes scores, 1970-2024: would a critic / an audience member call a movie good?
(distributional alignment eval, split "val").

File: rotten_tomatoes/rotten_tomatoes_data_1970_2024/movie_info.csv (a CSV with a header, shared
on Google Drive by the reference's authors), columns read: title, release_date, critic_score,
audience_score, the scores as whole percents such as "85%" (empty when there is none).
One prompt per (movie, critic or audience) with a score: input "Movie: <title>" plus
"\nRelease Date: <date>" when there is one; target {"Good": score/100, "Bad": 1 - score/100}.
"""
import csv
import functools

from tasks import DistPrompt, Download, Task
from tasks import common

URL = "https://drive.google.com/file/d/12IpMErb4j83h5gGTdTpv0WZOf5ceY7b3/view"
FILE = "rotten_tomatoes/rotten_tomatoes_data_1970_2024/movie_info.csv"
DOWNLOAD = Download(manual=(
    f"Download the Rotten Tomatoes archive from {URL} (linked from the README of the reference, "
    "tsor13/spectrum data/) and unpack it in <data_dir>/rotten_tomatoes/, so that "
    f"<data_dir>/{FILE} exists."))
DESCRIPTIONS = {
    "critic": 'You are a movie critic. Given a movie, you are asked to simply rate it as "Good" or '
              '"Bad".',
    "audience": "You recently watched the following movies. Given a movie, you are asked to simply "
                'rate it as "Good" or "Bad".',
}


@functools.lru_cache(maxsize=2)
def load(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"title", "release_date", "critic_score", "audience_score"} - set(
            reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} has no column {', '.join(sorted(missing))}; is it "
                             "movie_info.csv?")
        return list(reader)


def percent(cell: str) -> int | None:
    s = (cell or "").strip().removesuffix("%").strip()
    return int(s) if s.isdigit() and int(s) <= 100 else None


def dist_prompts(seed=0, data_dir=None):
    rows = load(str(common.root(data_dir, "rotten_tomatoes", (FILE,), URL) / FILE))
    out = []
    for x in rows:
        text = "Movie: " + x["title"].strip()
        if (x["release_date"] or "").strip():
            text += f"\nRelease Date: {x['release_date'].strip()}"
        for who in ("critic", "audience"):
            score = percent(x[f"{who}_score"])
            if score is not None:
                out.append(DistPrompt("rotten_tomatoes", [
                    {"role": "description", "content": DESCRIPTIONS[who]},
                    {"role": "input", "content": text}],
                    {"Good": score / 100, "Bad": (100 - score) / 100}))
    return out


TASKS = [Task("rotten_tomatoes", "val", URL, dist_prompts=dist_prompts, files=(FILE,),
              download=DOWNLOAD, checked="fixture")]
