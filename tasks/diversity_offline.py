"""Diversity/validity tasks with a fixed valid set or a rule (reference_eval §3.3, the rows that
need no data file). Descriptions, examples and validity rules follow the reference; the three
example outputs of the email and phone tasks are ours (the reference's are not recorded).

Normalization policy (reference_eval §6 item 22), one rule for every task: a generation is
stripped of surrounding whitespace, then judged valid, and counted unique, as that stripped
string; case matters exactly where the reference made it matter (case-sensitive sets for
states, abbreviations and weekdays, which list their accepted case variants explicitly).
`size` is the number of distinct valid stripped strings where that is finite.
`max_new_tokens` as the reference, except random_seed (4 -> 12: a 10-digit seed must fit).
"""
import re

from tasks import DiversityTask, Task
from tasks.lists import load

STATES = frozenset(load("us_states"))
ABBREVIATIONS = frozenset(load("us_state_abbreviations"))
DAYS = load("weekdays")
DAYS_FULL = frozenset(v for d in DAYS for v in (d, d.upper(), d.lower()))
DAYS_SHORT = frozenset(v for d in DAYS for v in (d[:3], d[:3] + ".", d[:3].upper()))
DAYS_LETTERS = frozenset(["M", "T", "W", "Th", "F", "Sa", "Su"])


def canonical_int(s):
    """int of a plain decimal without sign or leading zeros, else None."""
    s = s.strip()
    return int(s) if re.fullmatch(r"0|[1-9][0-9]*", s) else None


def is_prime(n):
    """Deterministic Miller-Rabin: exact for n < 3.3e24 (far beyond what 10 tokens can write)."""
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    if n in bases:
        return True
    if any(n % p == 0 for p in bases):
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


EMAIL = re.compile(r"(?P<local>[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*)@"
                   r"(?P<domain>([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})")


def is_email(s):
    m = EMAIL.fullmatch(s.strip())
    return bool(m) and len(m["local"]) <= 64 and len(s.strip()) <= 254


def is_professional_email(s):
    return is_email(s) and s.strip().lower().endswith((".com", ".org", ".edu", ".gov"))


US_PHONE = re.compile(r"[0-9]{3}-[0-9]{3}-[0-9]{4}|\([0-9]{3}\) [0-9]{3}-[0-9]{4}|[0-9]{3} [0-9]{3} [0-9]{4}")


def is_international_phone(s):
    s = s.strip()
    rest = s[1:]
    if not s.startswith("+") or not rest or not rest[0].isascii() or not rest[0].isdigit() or not rest[-1].isdigit():
        return False
    if any(c not in "0123456789 -.()" for c in rest):
        return False
    digits = sum(c.isdigit() for c in rest)
    return 7 <= digits <= 15 and len(rest) - digits <= 6


def member(valid_set):
    return lambda s: s.strip() in valid_set


def in_range(lo, hi):
    return lambda s: (v := canonical_int(s)) is not None and lo <= v <= hi


SMALL_PRIMES = frozenset(str(p) for p in range(100) if is_prime(p))

DIVERSITY = [
    DiversityTask("us_states_full_names", "Name a US state", ["Kentucky", "Utah", "Oregon"],
                  member(STATES), 15, len(STATES)),
    DiversityTask("us_states_abbreviations", "US state abbreviation", ["KY", "UT", "OR"],
                  member(ABBREVIATIONS), 5, len(ABBREVIATIONS)),
    DiversityTask("us_states_any_format", "US state name or abbreviation", ["Kentucky", "UT", "Oregon"],
                  member(STATES | ABBREVIATIONS), 15, len(STATES | ABBREVIATIONS)),
    DiversityTask("weekdays_full", "Name a day of the week", ["Thursday", "Wednesday", "Sunday"],
                  member(DAYS_FULL), 10, len(DAYS_FULL)),
    DiversityTask("weekdays_abbreviated", "Day of the week abbreviation", ["Thu", "Wed.", "SUN"],
                  member(DAYS_SHORT), 5, len(DAYS_SHORT)),
    DiversityTask("weekdays_any_format", "Day of the week (full name or abbreviation)", ["Monday", "Tue", "SUN"],
                  member(DAYS_FULL | DAYS_SHORT | DAYS_LETTERS), 10, len(DAYS_FULL | DAYS_SHORT | DAYS_LETTERS)),
    DiversityTask("rng_1_10", "Generate a number between 1 and 10.", ["3", "7", "10"], in_range(1, 10), 4, 10),
    DiversityTask("rng_1_100", "Generate a number between 1 and 100.", ["35", "94", "71"], in_range(1, 100), 4, 100),
    DiversityTask("small_prime_numbers", "Generate a prime number less than 100", ["29", "5", "97"],
                  member(SMALL_PRIMES), 5, len(SMALL_PRIMES)),
    DiversityTask("prime_numbers", "Generate a prime number", ["617", "13", "47"],
                  lambda s: (v := canonical_int(s)) is not None and is_prime(v), 10, None),
    DiversityTask("random_seed", "Generate a number to use for a random seed.", ["15", "420", "8392013"],
                  in_range(0, 2 ** 32 - 1), 12, 2 ** 32),
    DiversityTask("basic_emails", "Email address",
                  ["john.smith@gmail.com", "maria_garcia84@yahoo.com", "k.tanaka@outlook.jp"], is_email, 40, None),
    DiversityTask("professional_emails", "Generate a professional email address.",
                  ["sarah.johnson@acmecorp.com", "d.nguyen@stanford.edu", "info@redcross.org"],
                  is_professional_email, 40, None),
    DiversityTask("us_phone_numbers", "US phone number", ["415-555-0132", "(212) 555-0198", "312 555 0147"],
                  lambda s: bool(US_PHONE.fullmatch(s.strip())), 20, 3 * 10 ** 10),
    DiversityTask("international_phone_numbers", "International phone number with country code.",
                  ["+44 20 7946 0958", "+81 3-1234-5678", "+49 30 12345678"], is_international_phone, 25, None),
]

TASKS = [Task(d.name, "val", "synthetic", diversity=d) for d in DIVERSITY]
