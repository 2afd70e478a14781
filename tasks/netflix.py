"""Netflix Prize ratings (Kaggle netflix-inc/netflix-prize-data): what single users watched and how
they rated it (train).

Files, as in the Kaggle archive, under netflix/:
  combined_data_1.txt .. combined_data_4.txt: blocks of "<movie id>:" followed by
    "<customer id>,<rating 1-5>,<YYYY-MM-DD>" lines;
  movie_titles.csv: "<movie id>,<year or NULL>,<title>", no header, Latin-1; titles may contain
    commas, so only the first two commas split a line (the reference's CSV reader skipped those
    lines, losing the movies).
Ratings of movies missing from movie_titles.csv are dropped. As the reference: 2000 users chosen
at random among those with at least 10 ratings (one choice, shared by both tasks).
Changed: the reference read only the first three combined_data files (all four did not fit its
memory); we read all four, streaming them into compact arrays.

netflix_individual_ratings: 1000 of those users (a seeded random choice; the reference took the
    first 1000), Geometric+Poisson(64) of their ratings each: title -> "1".."5".
netflix_individual_views: all 2000 users, Geometric+Poisson(64) of the titles they rated, drawn
    without replacement (no input).
"""
import array
import functools

import numpy as np

from tasks import Download, Example, Instance, Task
from tasks import common

URL = "https://www.kaggle.com/datasets/netflix-inc/netflix-prize-data"
RATINGS = tuple(f"netflix/combined_data_{i}.txt" for i in range(1, 5))
TITLES = "netflix/movie_titles.csv"
FILES = RATINGS + (TITLES,)
DOWNLOAD = Download(manual=(
    f"Sign in to Kaggle, download the dataset archive from {URL} (or `kaggle datasets download "
    "netflix-inc/netflix-prize-data`), and unzip combined_data_1.txt .. combined_data_4.txt and "
    "movie_titles.csv into <data_dir>/netflix/."))


def read_titles(path: str) -> dict[int, str]:
    titles = {}
    with open(path, encoding="latin-1") as f:
        for i, line in enumerate(f, 1):
            parts = line.rstrip("\r\n").split(",", 2)
            if len(parts) != 3 or not parts[0].strip().isdigit():
                if line.strip():
                    raise ValueError(f"{path} line {i}: expected 'movie id,year,title'")
                continue
            titles[int(parts[0])] = parts[2].strip()
    return titles


def read_ratings(path: str, movies, users, stars):
    """Append (movie, user, stars) of every rating line of one combined_data file."""
    movie = None
    with open(path, encoding="latin-1") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip()
            try:
                if line[-1:] == ":":
                    movie = int(line[:-1])
                elif line:
                    user, rating, _ = line.split(",", 2)
                    movies.append(movie)
                    users.append(int(user))
                    stars.append(int(rating))
            except (ValueError, OverflowError, TypeError):  # TypeError: a rating before any movie
                raise ValueError(f"{path} line {i}: expected '<movie id>:' or "
                                 "'<customer id>,<rating>,<date>'") from None


@functools.lru_cache(maxsize=1)
def sampled_users(root: str, seed: int, n_users: int = 2000, min_ratings: int = 10):
    """({user: [(title, stars)]} of n_users random users with >= min_ratings rated titles)."""
    titles = read_titles(f"{root}/{TITLES}")
    movies, users, stars = array.array("h"), array.array("i"), array.array("b")  # ids < 2^15, < 2^31
    for f in RATINGS:
        read_ratings(f"{root}/{f}", movies, users, stars)
    movies, users, stars = (np.frombuffer(a, dtype=a.typecode) for a in (movies, users, stars))
    known = np.isin(movies, np.fromiter(titles, dtype=np.int64))
    movies, users, stars = movies[known], users[known], stars[known]
    ids, counts = np.unique(users, return_counts=True)
    eligible = ids[counts >= min_ratings]
    r = common.rng(seed, "netflix")
    chosen = eligible[r.permutation(len(eligible))[:n_users]]
    out = {int(u): [] for u in chosen}
    for i in np.flatnonzero(np.isin(users, chosen)):
        out[int(users[i])].append((titles[int(movies[i])], int(stars[i])))
    return out


DESCRIPTIONS_RATINGS = ["Movie ratings (1-5 stars) for a specific user.",
                        "Movie ratings for a specific user."]
DESCRIPTIONS_VIEWS = ["Movie titles watched by a single user.",
                      "Movies a single user has seen and rated."]


def _users(name, seed, data_dir):
    root = str(common.root(data_dir, name, FILES, URL))
    return sampled_users(root, seed), common.rng(seed, name)


def ratings(seed=0, data_dir=None, max_users=1000):
    name = "netflix_individual_ratings"
    users, r = _users(name, seed, data_dir)
    ids = list(users)
    out = []
    for u in [ids[i] for i in r.permutation(len(ids))[:max_users]]:
        own = users[u]
        out.append(Instance(name, DESCRIPTIONS_RATINGS,
                            [Example(str(own[i][1]), own[i][0])
                             for i in r.permutation(len(own))[:common.gp(r, 64)]],
                            group=str(u), options=["1", "2", "3", "4", "5"]))
    return out


def views(seed=0, data_dir=None):
    name = "netflix_individual_views"
    users, r = _users(name, seed, data_dir)
    out = []
    for u, own in users.items():
        out.append(Instance(name, DESCRIPTIONS_VIEWS,
                            [Example(own[i][0]) for i in r.permutation(len(own))[:common.gp(r, 64)]],
                            group=str(u)))
    return out


TASKS = [
    Task("netflix_individual_ratings", "train", URL, instances=ratings, files=FILES,
         download=DOWNLOAD, checked="fixture"),
    Task("netflix_individual_views", "train", URL, instances=views, files=FILES, download=DOWNLOAD,
         checked="fixture"),
]
