"""Offline tasks (tasks/synthetic.py, flight.py, lists.py, diversity_offline.py).

Every Bayes predictive is checked against its task's own generative process: simulate prior ->
parameters -> draws many times, keep the runs whose first outputs equal a fixed prefix, and
compare the frequency of the next output with exp(bayes) (tolerance: 5 binomial standard
errors). Exact parts are checked against independent computations (math.comb, Fractions, a
brute-force loop over the grid), never against numbers copied from the code's own output.
"""
import itertools
import json
import math
import re
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

import tasks
from tasks import Example, common
from tasks import diversity_offline as D
from tasks import flight as F
from tasks import lists as L
from tasks import synthetic as S

MINE = [t for m in (S, F, L, D) for t in m.TASKS]
WITH_INSTANCES = [t.name for t in MINE if t.instances is not None]
_built = {}


def built(name):
    if name not in _built:
        _built[name] = tasks.get(name).instances(seed=0)
    return _built[name]


def ex(*outputs):
    return [Example(o) for o in outputs]


def check_mc(samples, logp, outcomes=(), events=(), z=5.0, min_n=1000):
    """Frequencies in `samples` vs exp(logp): the 5 commonest outcomes, the listed outcomes, and
    events (lists of outcomes, compared as a sum)."""
    n = len(samples)
    assert n >= min_n, f"only {n} accepted simulations"
    c = Counter(samples)
    for ys in [[y] for y, _ in c.most_common(5)] + [[y] for y in outcomes] + [list(e) for e in events]:
        p = sum(math.exp(logp(y)) for y in ys)
        f = sum(c[y] for y in ys) / n
        assert abs(f - p) <= z * math.sqrt(max(p * (1 - p), 1 / n) / n), (ys[:3], f, p, n)


def sum_probs(logp, support):
    return sum(math.exp(logp(y)) for y in support)


# --- registry, determinism, well-formed data ----------------------------------------------

def test_registry():
    names = [t.name for t in MINE]
    assert len(names) == len(set(names))
    for t in MINE:
        assert tasks.TASKS[t.name] is t                 # nobody else registered the same name
    split = {t.name: t.split for t in MINE}
    assert split["flight"] == split["lists_heldout"] == split["urn"] == split["dice"] == "val"
    assert all(split[n] == "train" for n in ["coinflip", "normal", "cards", "binomial", "geometric",
                                              "poisson", "negative_binomial", "categorical", "multinomial",
                                              "hypergeometric", "zipfian", "geometric_beta", "lists"])
    assert len([t for t in MINE if t.diversity is not None]) == 15


def test_deterministic_given_seed():
    for name in WITH_INSTANCES:
        a, b = built(name), tasks.get(name).instances(seed=0)
        assert [(x.descriptions, x.examples, x.group) for x in a] == \
               [(x.descriptions, x.examples, x.group) for x in b], name
        c = tasks.get(name).instances(seed=1)
        assert [x.examples for x in a] != [x.examples for x in c], name


def test_instances_well_formed():
    artifact = re.compile(r"np\.|int64|float64|SingleVariableIID|\d\.\d{7,}|e[+-]\d\d|indvidual")
    for name in WITH_INSTANCES:
        xs = built(name)
        assert xs and all(x.task == name and x.group and x.bayes for x in xs), name
        for x in xs[:50]:
            assert x.descriptions and all(isinstance(d, str) and d and not artifact.search(d)
                                          for d in x.descriptions), (name, x.descriptions)
            outs = [e.output for e in x.examples]
            assert all(isinstance(o, str) and o and not artifact.search(o) for o in outs), name
            if x.options is not None:
                assert set(outs) <= set(x.options), name
    for name in ["binomial", "geometric", "poisson", "negative_binomial", "categorical", "hypergeometric",
                 "zipfian", "geometric_beta", "coinflip", "urn", "dice"]:
        assert min(len(x.examples) for x in built(name)) >= 150, name   # enough for 1024 tokens
    assert [len(built(n)) for n in ["coinflip", "normal", "cards", "binomial", "flight"]] == [1000, 1000, 100, 500, 200]


def test_bayes_finite_on_own_draws():
    """A real draw can never be impossible under its own predictive, whatever is shown."""
    for name in WITH_INSTANCES:
        for x in built(name)[:6]:
            for desc in [None] + x.descriptions[:4]:
                for j in range(min(12, len(x.examples))):
                    lp = x.bayes(desc, x.examples[:j], x.examples[j])
                    assert -math.inf < lp <= 1e-12, (name, desc, j, lp)


# --- coinflip -------------------------------------------------------------------------------

def test_coinflip_mc():
    rng = np.random.default_rng(1)
    P = S.coinflip_prior(rng, 200_000)
    H = S.coinflip_draw(rng, P, 4)
    hit = H[:, 0] & H[:, 1] & ~H[:, 2]                 # prefix Heads, Heads, Tails
    nxt = np.where(H[hit, 3], "Heads", "Tails")
    descs = S.coinflip_descriptions(0.7)
    bayes = S.coinflip_bayes(descs)
    prefix = ex("Heads", "Heads", "Tails")
    check_mc(list(nxt), lambda y: bayes(None, prefix, Example(y)))
    assert math.exp(bayes(None, prefix, Example("Heads"))) == pytest.approx(3 / 5, rel=1e-12)
    # "Heads is more likely than Tails" is shown exactly when p > 1/2
    more = [d for d, _ in descs if "Heads is more likely" in d][0]
    sel = hit & (P["p"] > 0.5)
    assert all(more in [d for d, _ in S.coinflip_descriptions(p)] for p in P["p"][sel][:200])
    check_mc(list(np.where(H[sel, 3], "Heads", "Tails")), lambda y: bayes(more, prefix, Example(y)))
    for d in [None] + [d for d, _ in descs]:
        assert sum_probs(lambda y: bayes(d, prefix, Example(y)), ["Heads", "Tails"]) == pytest.approx(1, abs=1e-12)


def test_coinflip_revealed_and_quadrature():
    """Revealed p: the posterior given the printed digits; the truncated-Beta quadrature agrees
    with a brute-force Riemann sum."""
    descs = S.coinflip_descriptions(0.61234)
    bayes = S.coinflip_bayes(descs)
    shown = [d for d, _ in descs if "0.612" in d or "61.2%" in d]
    assert len(shown) == 4 and all("61.199" not in d for d in shown)
    for d in shown:
        assert math.exp(bayes(d, ex("Tails") * 30, Example("Heads"))) == pytest.approx(0.612, abs=5e-4)
    for lo, hi, k, n in [(0.5, 1.0, 40, 200), (0.0, 0.5, 3, 3), (0.6115, 0.6125, 120, 200), (0.5, 1.0, 0, 300)]:
        p = lo + (np.arange(400_000) + 0.5) * (hi - lo) / 400_000         # midpoint rule
        w = np.exp(k * np.log(p) + (n - k) * np.log1p(-p) - (k * np.log(p) + (n - k) * np.log1p(-p)).max())
        assert S.coin_heads(lo, hi, k, n) == pytest.approx((w * p).sum() / w.sum(), rel=1e-6)


# --- normal ---------------------------------------------------------------------------------

def test_normal_mc():
    rng = np.random.default_rng(2)
    P = S.normal_prior(rng, 400_000)
    X = S.normal_draw(rng, P, 2)
    d = np.asarray(S.NORMAL_D)[P["d"]]
    cand = np.flatnonzero((d == 0) & (np.abs(X[:, 0]) < 0.6))
    hit = [i for i in cand if S.render_normal(X[i, 0], 0) == "0"]
    nxt = [S.render_normal(X[i, 1], 0) for i in hit]
    descs = S.normal_descriptions(1.0, 1.0, 0, 0)
    d0 = [t for t, ms, dd in descs if dd and not ms][0]                # reveals only d = 0
    bayes = S.normal_bayes(1.0, 1.0, 0, descs)
    for desc in (None, d0):
        check_mc(nxt, lambda y: bayes(desc, ex("0"), Example(y)), outcomes=["1", "-1", "3"])


def test_normal_exact_against_brute_force():
    """The pruned, cached grid posterior equals a plain loop over every grid point with math.erfc."""
    prefix, y, d = ["2.5", "3.1"], "2.8", 1
    Phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))
    num = den = 0.0
    for s in S.NORMAL_S:
        for a in S.NORMAL_A:
            for b in S.NORMAL_B:
                mu, sd = float(a) * 10.0 ** (s - 1), b * 10.0 ** s
                lik = 1.0
                for v in prefix:
                    lik *= Phi((float(v) + 0.05 - mu) / sd) - Phi((float(v) - 0.05 - mu) / sd)
                den += lik
                num += lik * (Phi((float(y) + 0.05 - mu) / sd) - Phi((float(y) - 0.05 - mu) / sd))
    got = S.normal_posterior(d)(tuple(prefix), y)
    assert math.exp(got) == pytest.approx(num / den, rel=1e-8)


def test_normal_described_and_sums():
    descs = S.normal_descriptions(1.5, 0.3, 0, 1)
    bayes = S.normal_bayes(1.5, 0.3, 1, descs)
    full = [t for t, ms, dd in descs if ms and dd][0]
    assert "mean 1.5 and std 0.3" in full
    rng = np.random.default_rng(3)
    xs = [S.render_normal(v, 1) for v in rng.normal(1.5, 0.3, 50_000)]
    check_mc(xs, lambda y: bayes(full, [], Example(y)))
    grid = [S.render_normal(v / 10, 1) for v in range(-20, 51)]
    assert sum_probs(lambda y: bayes(full, ex("1.4"), Example(y)), grid) == pytest.approx(1, abs=1e-9)
    prefix = ex("1.2", "1.5", "1.9", "1.4", "1.6", "1.1", "1.7", "1.5")
    grid = [S.render_normal(v / 10, 1) for v in range(-30, 61)]
    assert sum_probs(lambda y: bayes(None, prefix, Example(y)), grid) == pytest.approx(1, abs=1e-6)
    assert bayes(None, prefix, Example("1.50")) == -math.inf          # d is revealed by the prefix
    assert bayes(None, [], Example("-0.0")) == -math.inf              # never rendered
    # no description, no example: d is a uniform draw over the 4 precisions
    d1 = next(t for t, ms, dd in descs if dd and not ms)               # reveals d = 1 only
    assert math.exp(bayes(None, [], Example("0.3"))) == pytest.approx(math.exp(bayes(d1, [], Example("0.3"))) / 4)


# --- cards ----------------------------------------------------------------------------------

def test_cards():
    assert len(S.DECK) == len(set(S.DECK)) == 52 and {"10♥", "A♠", "2♣", "Q♦"} <= set(S.DECK)
    xs = S.cards_instances(seed=3, n=20_000)
    spade_first = [x.examples[1].output for x in xs if x.examples[0].output.endswith("♠")]
    spades = [c for c in S.DECK if c.endswith("♠")]
    prefix = ex("A♠")
    logp = lambda y: S.cards_bayes(None, prefix, Example(y))
    check_mc(spade_first, logp, events=[spades])
    assert sum_probs(logp, S.DECK) == pytest.approx(1)
    assert logp("A♠") == -math.inf and logp("K♥") == pytest.approx(-math.log(51))


# --- the discrete family --------------------------------------------------------------------

MC = {  # family: (prefix, simulations)
    "binomial": (["0"], 400_000), "geometric": (["1", "2"], 100_000),
    "geometric_beta": (["1", "2"], 100_000), "poisson": (["0"], 400_000),
    "negative_binomial": (["0"], 100_000), "categorical": (["0", "0"], 200_000),
    "hypergeometric": (["1"], 200_000), "zipfian": (["1"], 100_000),
}


@pytest.mark.parametrize("name", list(MC))
def test_discrete_family_mc(name):
    prefix, N = MC[name]
    f = S.FAMILIES[name]
    rng = np.random.default_rng(4)
    X = f["draw"](rng, f["prior"](rng, N), len(prefix) + 1)
    hit = np.all(X[:, :len(prefix)] == np.array([int(v) for v in prefix]), axis=1)
    small = [str(v) for v in range(10)]
    check_mc(list(map(str, X[hit, -1].tolist())), lambda y: f["unknown"](tuple(prefix), y),
             outcomes=["0", "1", "2", "5"], events=[small])
    # the first output: the prior predictive (what a bare name or nothing says)
    check_mc(list(map(str, X[:100_000, 0].tolist())), lambda y: f["unknown"]((), y),
             outcomes=["0", "1", "2", "5"], events=[small, [str(v) for v in range(100)]])


def test_multinomial_mc():
    f = S.FAMILIES["multinomial"]
    rng = np.random.default_rng(5)
    P = f["prior"](rng, 1_000_000)
    P = {k: v[P["K"] == 2] for k, v in P.items()}          # only K = 2 runs can show "[1, 0]": draw those
    X = f["draw"](rng, P, 2)
    hit = np.flatnonzero((X[:, 0, 0] == 1) & (X[:, 0, 1] == 0))                     # prefix "[1, 0]"
    nxt = [f["render"](X[i, 1], {"K": 2}) for i in hit]
    check_mc(nxt, lambda y: f["unknown"](("[1, 0]",), y), min_n=1500)
    # K and the trials are known from one example: the predictive sums to 1 over all vectors
    support = [json.dumps([a, 5 - a - b, b]) for a in range(6) for b in range(6 - a)]
    assert sum_probs(lambda y: f["unknown"](("[1, 2, 2]", "[0, 5, 0]"), y), support) == pytest.approx(1, abs=1e-12)
    assert f["unknown"](("[1, 2, 2]",), "[1, 2]") == -math.inf


@pytest.mark.parametrize("name", [n for n in S.FAMILIES])
def test_discrete_described_mc(name):
    """Described parameters: draws from an instance's true parameters match the predictive."""
    f = S.FAMILIES[name]
    x = built(name)[7]
    desc = x.descriptions[0]
    P = f["prior"](common.rng(0, name), 500)                  # the parameters the instances were built from
    Pi = {k: np.repeat(v[7:8], 40_000, axis=0) for k, v in P.items()}
    X = f["draw"](np.random.default_rng(6), Pi, 1)
    out = [f["render"](X[i, 0], {k: v[7] for k, v in P.items()}) for i in range(len(X))] if "render" in f \
        else list(map(str, X[:, 0].tolist()))
    check_mc(out, lambda y: x.bayes(desc, x.examples[:3], Example(y)))


def test_described_pmfs_use_printed_values():
    """Grid families print their parameters exactly: the predictive is the textbook pmf at the
    printed numbers (computed here with math.comb), whatever came before."""
    for x in built("binomial")[:20]:
        n, p = re.search(r"n=(\d+) and p=([\d.]+)\.", x.descriptions[0]).groups()
        n, p = int(n), float(p)
        for y in [0, 1, n // 2, n]:
            want = math.comb(n, y) * p ** y * (1 - p) ** (n - y)
            assert math.exp(x.bayes(x.descriptions[2], x.examples[:5], Example(str(y)))) == pytest.approx(want, rel=1e-9)
    for x in built("hypergeometric")[:20]:
        N, K, n = map(int, re.search(r"N=(\d+), .* K=(\d+), .* n=(\d+)\.", x.descriptions[0]).groups())
        for y in range(n + 1):
            want = math.comb(K, y) * math.comb(N - K, n - y) / math.comb(N, n)
            got = math.exp(x.bayes(x.descriptions[0], [], Example(str(y))))
            assert got == pytest.approx(want, rel=1e-9, abs=1e-300)
    for x in built("negative_binomial")[:20]:
        r, p = map(float, re.search(r"r=([\d.]+) and p=([\d.]+)\.", x.descriptions[0]).groups())
        for y in [0, 1, 7]:
            want = math.exp(math.lgamma(y + r) - math.lgamma(r) - math.lgamma(y + 1)) * p ** r * (1 - p) ** y
            assert math.exp(x.bayes(x.descriptions[0], [], Example(str(y)))) == pytest.approx(want, rel=1e-9)
    for x in built("categorical")[:20]:
        probs = json.loads(re.search(r"vector (\[.*\])\.", x.descriptions[0]).group(1))
        assert sum(probs) == pytest.approx(1, abs=1e-12)
        for j, q in enumerate(probs):
            assert math.exp(x.bayes(x.descriptions[0], x.examples[:4], Example(str(j)))) == pytest.approx(q, abs=1e-15)
    for x in built("zipfian")[:10]:
        a = float(re.search(r"alpha=([\d.]+)\.", x.descriptions[0]).group(1))
        zeta = (np.arange(1, 200_000, dtype=float) ** -a).sum() + 200_000 ** (1 - a) / (a - 1) + 200_000 ** -a / 2
        assert math.exp(x.bayes(x.descriptions[0], [], Example("3"))) == pytest.approx(3 ** -a / zeta, rel=1e-9)
    for x in built("poisson")[:20]:      # continuous prior: posterior given the printed 2 decimals
        lam = float(re.search(r"parameter ([\d.]+)\.", x.descriptions[0]).group(1))
        for y in [0, int(lam), int(lam) + 3]:
            want = math.exp(y * math.log(max(lam, 1e-300)) - lam - math.lgamma(y + 1)) if lam else float(y == 0)
            got = math.exp(x.bayes(x.descriptions[0], x.examples[:20], Example(str(y))))
            assert got == pytest.approx(want, rel=0.02, abs=3e-3)
    for x in built("geometric_beta")[:20]:
        p = float(re.search(r"p=([\d.]+)\.", x.descriptions[0]).group(1))
        got = math.exp(x.bayes(x.descriptions[0], x.examples[:20], Example("1")))
        assert got == pytest.approx(p, abs=6e-4)


def test_continuous_priors_given_printed_digits():
    """Poisson and geometric_beta: a printed value confines the parameter to its rounding
    interval (+-0.005 / +-0.0005), so the predictive is the pmf at the printed value to within
    that width."""
    def mean(f, w, lo, hi):                                           # E[f] under density w on [lo, hi]
        x = lo + (np.arange(200_000) + 0.5) * (hi - lo) / 200_000
        return (f(x) * w(x)).sum() / w(x).sum()
    known = S.FAMILIES["poisson"]["known"]({"lam": 0.5})                # prints as 0.50
    prior = lambda lam: lam ** -0.5 * np.exp(-lam / 2000)               # Gamma(0.5, scale 2000)
    assert math.exp(known((), "0")) == pytest.approx(mean(lambda l: np.exp(-l), prior, 0.495, 0.505), rel=1e-9)
    post = lambda lam: prior(lam) * np.exp(-50 * lam)                   # after 50 zeros
    assert math.exp(known(("0",) * 50, "2")) == pytest.approx(
        mean(lambda l: l * l / 2 * np.exp(-l), post, 0.495, 0.505), rel=1e-9)
    assert math.exp(known((), "0")) == pytest.approx(math.exp(-0.5), rel=3e-5)
    known = S.FAMILIES["geometric_beta"]["known"]({"p": 0.25})          # p in [0.2495, 0.2505]
    post = lambda p: p ** 30 * (1 - p) ** 60                            # after 30 threes
    assert math.exp(known(("3",) * 30, "1")) == pytest.approx(mean(lambda p: p, post, 0.2495, 0.2505), rel=1e-9)
    assert math.exp(known((), "3")) == pytest.approx(0.25 * 0.75 ** 2, rel=1e-5)


def test_categorical_prior_predictive():
    """K ~ U{2..20}, shares uniform over compositions: P(first = j) = (1/19) sum_{K > j} 1/K."""
    for j in [0, 1, 7, 19]:
        want = sum(1 / K for K in range(max(2, j + 1), 21)) / 19
        assert math.exp(S.FAMILIES["categorical"]["unknown"]((), str(j))) == pytest.approx(want, rel=1e-12)
    assert S.FAMILIES["categorical"]["unknown"]((), "20") == -math.inf


def test_normal_descriptions_print_exact_parameters():
    P = S.normal_prior(common.rng(0, "normal"), 1000)                 # what the instances were built from
    for i, x in enumerate(built("normal")):
        m, sd = map(float, re.search(r"mean (-?[\d.]+) and std ([\d.]+)\.", x.descriptions[0]).groups())
        assert m == pytest.approx(P["mu"][i], rel=1e-12, abs=1e-12) and sd == pytest.approx(P["sd"][i], rel=1e-12)
        d = int(re.search(r"Precision: (\d)", x.descriptions[0]).group(1))
        assert all(S.decimals(e.output) == d for e in x.examples[:20])


def test_discrete_sums_to_one():
    F_ = S.FAMILIES
    checks = [("binomial", ("3", "5"), range(201)), ("geometric", ("1", "2"), range(1, 5000)),
              ("geometric_beta", ("1", "2", "1"), range(1, 20_000)), ("poisson", ("0", "3"), range(200)),
              ("negative_binomial", ("0", "0", "0"), range(3000)), ("categorical", ("3", "0"), range(25)),
              ("categorical", (), range(25)), ("hypergeometric", ("2",), range(61)), ("zipfian", ("1",) * 20, range(1, 3000))]
    for name, prefix, support in checks:
        s = sum_probs(lambda y: F_[name]["unknown"](prefix, y), map(str, support))
        assert s == pytest.approx(1, abs=2e-6), (name, s)
    for name in ["binomial", "hypergeometric", "categorical"]:
        x = built(name)[3]
        s = sum_probs(lambda y: x.bayes(x.descriptions[0], [], Example(y)), map(str, range(201)))
        assert s == pytest.approx(1, abs=1e-9), name


# --- urn, dice, states ---------------------------------------------------------------------

def test_urn_mc():
    rng = np.random.default_rng(7)
    X = S.urn_draw(rng, S.urn_prior(rng, 300_000), 3)
    hit = (X[:, 0] == 0) & (X[:, 1] == 0)                            # red, red
    nxt = [S.COLORS[c] for c in X[hit, 2]]
    prefix = ex("red", "red")
    logp = lambda y: S.urn_unknown(tuple(e.output for e in prefix), y)
    check_mc(nxt, logp, outcomes=["red", "blue"], events=[S.COLORS[1:]])
    assert sum_probs(logp, S.COLORS) == pytest.approx(1, abs=1e-12)
    assert sum_probs(lambda y: S.urn_unknown((), y), S.COLORS) == pytest.approx(1, abs=1e-12)
    assert math.exp(S.urn_unknown((), "white")) == pytest.approx(1 / 9)
    full = ("red", "blue", "green", "yellow", "purple")                 # 5 colors seen: the urn is full
    assert S.urn_unknown(full, "white") == -math.inf


def test_urn_described_and_prompts():
    x = built("urn")[0]
    desc = x.descriptions[0]
    counts = {c: int(n) for n, c in re.findall(r"(\d+) (\w+) balls?", desc)}
    assert desc.startswith("There is an urn with the following balls shuffled together: ") and " and " in desc
    for c in S.COLORS:
        want = counts.get(c, 0) / sum(counts.values())
        assert math.exp(x.bayes(desc, x.examples[:9], Example(c))) == pytest.approx(want)
    prompts = S.urn_dist_prompts()
    assert len(prompts) == 200
    for p in prompts:
        assert p.messages[1] == {"role": "input", "content": "Draw a ball at random, and tell me the color (lowercase)."}
        counts = {c: int(n) for n, c in re.findall(r"(\d+) (\w+) balls?", p.messages[0]["content"])}
        assert 2 <= len(counts) <= 5 and all(1 <= n <= 10 for n in counts.values())
        assert p.target == pytest.approx({c: n / sum(counts.values()) for c, n in counts.items()})
    assert "1 blue ball" in S.urn_description([1, 0], [1, 2]) and "2 red balls" in S.urn_description([1, 0], [1, 2])


def test_dice():
    rng = np.random.default_rng(8)
    cfg = rng.integers(0, len(S.DICE), 300_000)
    X = np.zeros((len(cfg), 2), int)
    for i in range(len(S.DICE)):
        X[cfg == i] = S.dice_draw(rng, i, 2 * int((cfg == i).sum())).reshape(-1, 2)
    nxt = list(map(str, X[X[:, 0] == 7, 1].tolist()))
    logp = lambda y: S.DICE_UNKNOWN(("7",), y)
    check_mc(nxt, logp, outcomes=["2", "7", "12", "20"])
    assert sum_probs(logp, map(str, range(81))) == pytest.approx(1, abs=1e-12)
    card = S.dice_dist_prompts()[0]
    assert card.messages == [{"role": "description", "content": "Roll two six-sided dice. What is the sum of their values?"}]
    assert card.target == pytest.approx({str(t): (6 - abs(t - 7)) / 36 for t in range(2, 13)})
    for p in S.dice_dist_prompts():
        assert sum(p.target.values()) == pytest.approx(1)
    x = [x for x in built("dice") if x.group == "2d6"][0]
    assert math.exp(x.bayes(x.descriptions[1], x.examples[:5], Example("7"))) == pytest.approx(1 / 6)


def test_states_prompts():
    ps = tasks.get("states").dist_prompts()
    assert [p.messages for p in ps] == [
        [{"role": "input", "content": "Name a U.S. state uniformly at random."}],
        [{"role": "description", "content": "Pick a U.S. state uniformly at random."}]]
    for p in ps:
        assert len(p.target) == 50 and set(p.target.values()) == {1 / 50}
        assert {"New York", "Wyoming", "Hawaii"} <= set(p.target)


# --- flight ---------------------------------------------------------------------------------

FLIGHT = re.compile(r"Flight (\d):\nDeparture Time: (\d\d):(\d\d) (AM|PM), Duration: (\d+) hr (\d+) min, "
                    r"Number of Stops: (\d), Price: \$(\d+)\.00")


def parse_flights(text):
    out = []
    for j, (num, hh, mm, ampm, dh, dm, stops, price) in enumerate(FLIGHT.findall(text)):
        assert int(num) == j + 1
        minutes = (int(hh) % 12 + 12 * (ampm == "PM")) * 60 + int(mm)
        minutes += 1440 * (minutes < 300)                             # 12:00 AM is the end of the day
        dur, price = int(dh) * 60 + int(dm), int(price)
        assert 300 <= minutes <= 1440 and 45 <= dur <= 960 and 50 <= price <= 1500 and int(dm) < 60
        out.append([Fraction(minutes - 300, 1140), Fraction(dur - 45, 915), Fraction(price - 50, 1450),
                    Fraction(int(stops), 2)])
    assert len(out) == 3 and "\n".join(m.group(0) for m in FLIGHT.finditer(text)) == text
    return out


def test_flight_bayes_is_brute_force_count():
    profiles = [w for w in itertools.product([-1, Fraction(-1, 2), 0, Fraction(1, 2)], repeat=4) if any(w)]
    assert len(profiles) == 255

    def pick(flights, w):
        u = [sum(a * b for a, b in zip(f, w)) for f in flights]
        return u.index(max(u))                                        # ties: lower index
    xs = built("flight")
    assert xs[0].descriptions == ["The following express flight preferences for the same individual among a "
                                  "set of flights. Predict which flight the individual prefers."]
    labels = Counter()
    for x in xs[:8]:
        flights = [parse_flights(e.input) for e in x.examples]
        labels.update(e.output for e in x.examples)
        alive = profiles
        for j, e in enumerate(x.examples[:10]):
            for y in "123":
                want = sum(pick(flights[j], w) == int(y) - 1 for w in alive) / len(alive)
                got = math.exp(x.bayes(x.descriptions[0] if j % 2 else None, x.examples[:j], Example(y, e.input)))
                assert got == pytest.approx(want, rel=1e-12, abs=1e-300)
            alive = [w for w in alive if pick(flights[j], w) == int(e.output) - 1]
        assert alive
    assert set(labels) == {"1", "2", "3"}


# --- lists ----------------------------------------------------------------------------------

def test_list_files():
    assert len(L.TRAIN) + len(L.HELDOUT) >= 15
    sizes = {n: len(L.load(n)) for n in L.LISTS}
    assert sizes["us_states"] == 50 and sizes["countries"] == 193 and sizes["chemical_elements"] == 118
    assert sizes["planets"] == 8 and sizes["months"] == 12 and sizes["weekdays"] == 7
    assert sizes["css_colors"] == 148 and sizes["greek_letters"] == 24 and sizes["zodiac_signs"] == 12
    assert sizes["board_games"] >= 90 and sizes["card_games"] >= 50
    for n in L.LISTS:
        items = L.load(n)
        assert len(items) == len(set(items)), n
        assert all(i == i.strip() and "\t" not in i for i in items), n
    assert {"board_games", "card_games"} <= set(L.HELDOUT) and not set(L.HELDOUT) & set(L.TRAIN)
    descs = [d for n in L.LISTS for d in L.descriptions(n)]
    assert len(descs) == len(set(descs)) and "Board games" in descs and "Card games" in descs


def test_lists_mixture_mc():
    rng = np.random.default_rng(9)
    names = L.TRAIN
    items = [L.load(n) for n in names]
    sizes = np.array([len(i) for i in items])
    N = 600_000
    which = rng.integers(0, len(names), N)
    first = (rng.random(N) * sizes[which]).astype(int)
    second = (rng.random(N) * (sizes[which] - 1)).astype(int)
    second += second >= first                                     # a uniform ordered pair of distinct items
    merc = np.array([i.index("Mercury") if "Mercury" in i else -1 for i in items])
    hit = np.flatnonzero(first == merc[which])
    nxt = [items[which[i]][second[i]] for i in hit]
    x = [x for x in built("lists") if x.group == "planets"][0]
    logp = lambda y: x.bayes(None, ex("Mercury"), Example(y))
    elements = [e for e in L.load("chemical_elements") if e != "Mercury"]
    check_mc(nxt, logp, outcomes=["Venus", "Helium"], events=[elements])
    union = {v for n in names for v in L.load(n)}
    assert sum_probs(logp, union) == pytest.approx(1, abs=1e-12)
    # with a description: uniform over the list's unseen items
    lp = lambda y: x.bayes("Planets of the solar system", ex("Mercury", "Mars"), Example(y))
    assert math.exp(lp("Venus")) == pytest.approx(1 / 6) and lp("Mars") == -math.inf and lp("Helium") == -math.inf
    # the held-out task mixes only its own lists
    h = built("lists_heldout")[0]
    union = {v for n in L.HELDOUT for v in L.load(n)}
    assert sum_probs(lambda y: h.bayes(None, ex("Chess"), Example(y)), union) == pytest.approx(1, abs=1e-12)
    assert math.exp(h.bayes(None, ex("Chess"), Example("Risk"))) == pytest.approx(1 / (len(L.load("board_games")) - 1))


# --- diversity ------------------------------------------------------------------------------

def test_diversity_validity():
    d = {t.name: t.diversity for t in D.TASKS}
    assert all(len(t.examples) == 3 and all(t.valid(e) for e in t.examples) for t in d.values())
    cases = {
        "us_states_full_names": (["Kentucky", " New York\n", "West Virginia"], ["kentucky", "KY", "Virginia West", "Puerto Rico"]),
        "us_states_abbreviations": (["KY", "WY", "DE"], ["ky", "Kentucky", "DC", "XX"]),
        "us_states_any_format": (["Utah", "UT"], ["utah", "U.T."]),
        "weekdays_full": (["Monday", "MONDAY", "sunday"], ["MonDay", "Mon", "Funday"]),
        "weekdays_abbreviated": (["Thu", "Wed.", "SUN"], ["Thursday", "thu", "Thurs", "SUN."]),
        "weekdays_any_format": (["Monday", "Tue", "Th", "Su", "WED"], ["Tu", "Thur", "mon."]),
        "rng_1_10": (["1", "10", " 7 "], ["0", "11", "07", "7.0", "seven"]),
        "rng_1_100": (["1", "100", "35"], ["0", "101", "035", "-5"]),
        "small_prime_numbers": (["2", "97", "29"], ["1", "91", "101", "02"]),
        "prime_numbers": (["2", "617", "7919", "2147483647"], ["1", "0", "561", "7917", "-7", "1e3"]),
        "random_seed": (["0", "42", "4294967295"], ["4294967296", "-1", "0042", "12a"]),
        "basic_emails": (["a.b@example.com", "x_y+z@mail.co.uk"], ["a..b@x.com", ".a@x.com", "a@x", "a@-x.com", "a b@x.com", "@x.com"]),
        "professional_emails": (["jane.doe@acme.com", "info@who.org"], ["jane@acme.io", "jane@acme"]),
        "us_phone_numbers": (["415-555-0132", "(212) 555-0198", "312 555 0147"], ["4155550132", "415-555-013", "(212)555-0198", "+1 415-555-0132"]),
        "international_phone_numbers": (["+44 20 7946 0958", "+1 (415) 555-0132", "+4930123456"],
                                        ["44 20 7946 0958", "+12345", "+1-2-3-4-5-6-7-8", "+44 20 7946 095x", "+"]),
    }
    assert set(cases) == set(d)
    for name, (good, bad) in cases.items():
        for s in good:
            assert d[name].valid(s), (name, s)
        for s in bad:
            assert not d[name].valid(s), (name, s)
    assert [d[n].size for n in ["us_states_full_names", "us_states_any_format", "weekdays_full",
                                "weekdays_abbreviated", "weekdays_any_format", "small_prime_numbers"]] == [50, 100, 21, 21, 49, 25]
    assert d["prime_numbers"].size is None and d["random_seed"].max_new_tokens >= 10
