"""Common words of a language drawn by frequency, from the word lists that ship inside the
wordfreq package (code Apache-2.0, data CC BY-SA 4.0; Speer, "rspeer/wordfreq", v3.x: Wikipedia,
subtitles, news, books, web text, Reddit, Twitter). No download. Tasks of this project.

wordfreq's "small" list of a language gives each word a frequency on a centibel grid: the words
of bucket i (0, 1, ...) have frequency 10^(-i/100), exactly wordfreq.get_frequency_dict. Tokens
with a digit (wordfreq writes every digit as 0: "00", "0000") or without a letter are dropped.
The K most frequent words are the words of the first buckets, ties within the bucket that
crosses K broken by the word (Python string order); their frequencies are renormalized.

Per language, three instances (each stores N_DRAWS draws):
  top100     the 100 most frequent words, i.i.d. in proportion to frequency
  top1000    the 1000 most frequent words, i.i.d. in proportion to frequency (the bare title
             "English words" names this one)
  uniform    the 1000 most frequent words, uniformly at random without replacement
The exact predictive is common.list_bayes over the task's processes; distribution prompts:
one per language, the top100 process (target = its renormalized frequencies).

Split: pypi_words (train) and pypi_words_heldout (val: every instance of the HELDOUT languages).
"""
from functools import lru_cache

from tasks import Task
from tasks import _pypi as P
from tasks import common

SOURCE = "pypi:wordfreq https://pypi.org/project/wordfreq/"
HELDOUT = ("fil", "he", "ko", "nl", "pl", "sl", "ta", "ur")


def need(task):
    P.need("wordfreq", "wordfreq", task)
    P.need("pycountry", "pycountry", task)


def is_word(token: str) -> bool:
    return any(ch.isalpha() for ch in token) and not any(ch.isdigit() for ch in token)


def top_words(buckets: list[list[str]], k: int) -> dict[str, float]:
    """{word: renormalized frequency} of the k most frequent words (see the docstring)."""
    freq = {}
    for i, bucket in enumerate(buckets):
        if len(freq) >= k:
            break
        for w in bucket:
            if is_word(w):
                freq[w] = 10 ** (-i / 100)
    return P.top(freq, k)


def language_specs(code: str, buckets) -> list:
    lang = P.language_name(code)
    top100, top1000 = top_words(buckets, 100), top_words(buckets, 1000)
    return [
        (f"{code}/top100", [f"One of the 100 most frequent {lang} words, drawn in proportion to how "
                            f"often it is used.",
                            f"The 100 most common words of {lang} text, drawn with replacement by frequency."],
         common.with_probs(top100)),
        (f"{code}/top1000", [f"{lang} words",
                             f"One of the 1000 most frequent {lang} words, drawn in proportion to how "
                             f"often it is used.",
                             f"Words of {lang} text (the 1000 most common), drawn with replacement by frequency."],
         common.with_probs(top1000)),
        (f"{code}/uniform", [f"One of the 1000 most frequent {lang} words, uniformly at random, "
                             f"without replacement.",
                             f"Common {lang} words (the 1000 most frequent), each equally likely, none repeated."],
         common.without(list(top1000))),
    ]


@lru_cache(maxsize=None)
def all_specs() -> tuple[list, list]:
    import wordfreq
    train, heldout = [], []
    for code in sorted(wordfreq.available_languages("small")):
        out = heldout if code in HELDOUT else train
        out += language_specs(code, wordfreq.get_frequency_list(code, "small"))
    return train, heldout




def task(name, split, which):
    return Task(name, split, SOURCE, ours=True, **P.loaders(
        name, need, lambda: all_specs()[which], keep=lambda spec: spec[0].endswith("/top100")))


TASKS = [task("pypi_words", "train", 0), task("pypi_words_heldout", "val", 1)]
