"""Synthetic tasks with exact Bayes-optimal predictives (no download).

Each task is a generative process: parameters from a prior, then i.i.d. draws. The examples of an
instance are those draws; the bayes function of an instance is the exact posterior predictive
given the description shown (or none) and the previous outputs. Every instances() call uses its
own np.random.Generator seeded from (seed, task name), never numpy's global state.

Design rule for "revealed" parameters: a description either prints the parameters exactly (they
are drawn on the grid they are printed with) or, where the prior is continuous, the predictive is
the exact posterior given what the printed digits say (the parameter lies in the rounding
interval of the printed value). Either way the Bayes loss can never be -inf on a real draw.

Priors (reference = the authors' generators, see reference_data.md §4):
  coinflip          p ~ U(0,1) as the reference. P(Heads) = p.
  normal            departs: the reference prior has no tractable predictive. Here, uniform over
                    a finite grid: scale s in {-1,0,1,2}; mean = A*10^(s-1), A in {-100..100};
                    std = b*10^s, b in {.1,.12,.15,.2,.25,.3,.4,.5,.6,.8,1,1.2,1.5,2,2.5,3,4,5,6,8,10};
                    decimals d in {0,1,2,3}. Draws x ~ N(mean, std) printed f"{x:.{d}f}" (a printed
                    "-0.00" becomes "0.00"), so P(y) = Phi((y+h-mean)/std) - Phi((y-h-mean)/std),
                    h = 10^-d / 2. The posterior is an exact finite sum; printed mean/std are exact.
  cards             a uniformly random order of the 52-card deck.
  binomial          departs: n ~ U{1..200}, p ~ U{.01,...,.99} (reference: n ~ 512ish, p ~ U(0,1)).
  geometric         departs: p ~ U{.01,...,.99}. Support 1,2,... (trials to first success).
  geometric_beta    p ~ U(0,1) = Beta(1,1), as the reference; predictive Beta-geometric.
  poisson           lambda ~ Gamma(shape 0.5, scale 2000), as the reference; predictive negative
                    binomial; lambda printed with 2 decimals.
  negative_binomial departs: r ~ U{0.1,...,5.0}, p ~ U{.01,...,.99} (reference r ~ U(0,1)).
                    Draws = failures before the r-th success (numpy's convention).
  categorical       departs: K ~ U{2..20}; probabilities = m/100 with m uniform over the
                    compositions of 100 into K parts (a Dirichlet(1) on the 1% grid; printed
                    exactly). Outputs "0".."K-1".
  multinomial       departs: K ~ U{2..10}, trials ~ U{1..30}, probabilities as categorical
                    (drawn independently of categorical: reference bug §6.3). Output a JSON list.
  hypergeometric    departs: N ~ U{2..60} (reference ~128); K ~ U{1..N}; n ~ U{1..N}.
  zipfian           departs: alpha ~ U{1.500, 1.501, ..., 3.000} (reference U(1, 2.5)); below 1.5
                    draws reach 10^18 and numpy's int64 truncation would make the pmf inexact.
  urn               2-5 of 9 colors, counts cap ~ U{1..10}, count ~ U{1..cap} (reference_eval §2.2);
                    draws with replacement.
  dice              (n dice, s sides) ~ U over n in {1,2,3,4} x s in {4,6,8,10,12,20}; output the sum.
"""
import json
import math
from functools import lru_cache

import numpy as np

from tasks import DistPrompt, Example, Instance, Task, common
from tasks.common import dumps, lse

NEG_INF = -math.inf


# --- numerics ------------------------------------------------------------------------------

def logconv(a, b, n=None):
    """log of the convolution of exp(a) and exp(b), in log space so nothing underflows."""
    L = len(a) + len(b) - 1 if n is None else min(n, len(a) + len(b) - 1)
    j = np.arange(L)[None, :] - np.arange(len(a))[:, None]
    ok = (j >= 0) & (j < len(b))
    return lse(np.where(ok, a[:, None] + b[np.clip(j, 0, len(b) - 1)], NEG_INF), axis=0)


LOGFACT = np.array([math.lgamma(i + 1) for i in range(4001)])


def log_comb(n, k):
    n, k = np.asarray(n), np.asarray(k)
    ok = (k >= 0) & (k <= n)
    return np.where(ok, LOGFACT[np.where(ok, n, 0)] - LOGFACT[np.where(ok, k, 0)]
                    - LOGFACT[np.where(ok, n - k, 0)], NEG_INF)


_GX, _GW = np.polynomial.legendre.leggauss(24)


def log_quad(logf, lo, hi, x0, scale):
    """log of the integral of exp(logf) over [lo, hi]. The integrand is log-concave around x0
    (its mode, clipped to [lo, hi]) with length scale `scale`; integrate 60 scales either side
    in pieces of 2 scales with 24-point Gauss-Legendre, which is exact to double precision."""
    a, b = max(lo, x0 - 60 * scale), min(hi, x0 + 60 * scale)
    pieces = int(min(512, max(1, math.ceil((b - a) / (2 * scale)))))
    e = np.linspace(a, b, pieces + 1)
    l, r = e[:-1, None], e[1:, None]
    x = (l + r) / 2 + (r - l) / 2 * _GX
    with np.errstate(divide="ignore"):
        return lse(logf(x) + np.log((r - l) / 2 * _GW))


@lru_cache(maxsize=200_000)
def log_beta_int(lo, hi, a, b):
    """log of the integral of p^a (1-p)^b over [lo, hi] (a, b >= 0)."""
    if lo == 0.0 and hi == 1.0:
        return math.lgamma(a + 1) + math.lgamma(b + 1) - math.lgamma(a + b + 2)
    x0 = min(max(a / (a + b) if a + b else (lo + hi) / 2, lo), hi)
    g1 = (a / x0 if a else 0.0) - (b / (1 - x0) if b else 0.0)
    g2 = (a / x0 ** 2 if a else 0.0) + (b / (1 - x0) ** 2 if b else 0.0)
    scale = 1.0 / max(abs(g1), math.sqrt(g2), 1.0 / (hi - lo))
    return log_quad(lambda p: a * np.log(p) + b * np.log1p(-p), lo, hi, x0, scale)


@lru_cache(maxsize=200_000)
def log_gamma_int(lo, hi, c, rate):
    """log of the integral of lam^c exp(-rate lam) over [lo, hi] (c > -1), computed in t = sqrt(lam)
    so that lam^-1/2 at 0 (the Gamma(0.5) prior) is smooth: integrand 2 t^(2c+1) exp(-rate t^2)."""
    e = 2 * c + 1
    tlo, thi = math.sqrt(lo), math.sqrt(hi)
    t0 = min(max(math.sqrt(e / (2 * rate)), tlo), thi)
    g1 = (e / t0 if e else 0.0) - 2 * rate * t0
    g2 = (e / t0 ** 2 if e else 0.0) + 2 * rate
    scale = 1.0 / max(abs(g1), math.sqrt(g2), 1.0 / (thi - tlo))
    return math.log(2) + log_quad(lambda t: e * np.log(t) - rate * t * t, tlo, thi, t0, scale)


_SX, _SW = np.polynomial.legendre.leggauss(16)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def log_phi_interval(lo, hi):
    """log(Phi(hi) - Phi(lo)) for arrays lo < hi, accurate far into the tails. Narrow intervals
    integrate the density directly (no cancellation); wide ones use erfc on the tail side."""
    out = np.empty(lo.shape)
    small = hi - lo < 0.1
    if small.any():
        a, b = lo[small, None], hi[small, None]
        x = (a + b) / 2 + (b - a) / 2 * _SX
        out[small] = (np.log((b - a)[:, 0] / 2) + lse(np.log(_SW) - x * x / 2, axis=1)
                      - 0.5 * math.log(2 * math.pi))
    big = ~small
    if big.any():
        l, h = lo[big], hi[big]
        q = lambda z: 0.5 * _erfc(z / math.sqrt(2)).astype(float)  # upper tail, no cancellation
        v = np.where(l > 0, 0.0, np.where(h < 0, 0.0, 1.0))
        up, down, mid = l > 0, h < 0, (l <= 0) & (h >= 0)
        v[up] = q(l[up]) - q(h[up])
        v[down] = q(-h[down]) - q(-l[down])
        v[mid] = 1 - q(h[mid]) - q(-l[mid])
        with np.errstate(divide="ignore"):
            out[big] = np.log(v)
    return out


def grid_predictive(logprior, loglik, prune=40.0):
    """Posterior predictive P(y | ys) for a prior on a finite grid of parameter values.
    loglik(idx, y) is log p(y | grid[idx]) for an index array. The posterior of every prefix is
    cached, so scoring a sequence left to right costs one likelihood update per output; grid
    points e^-prune below the best are dropped (they cannot move any probability)."""
    root = (np.arange(len(logprior)), np.asarray(logprior, float))
    cache, stored = {(): root}, [0]

    def state(ys):
        j = len(ys)
        while ys[:j] not in cache:
            j -= 1
        idx, lw = cache[ys[:j]]
        for i in range(j, len(ys)):
            if len(idx):
                lw = lw + loglik(idx, ys[i])
                keep = lw > lw.max() - prune
                idx, lw = idx[keep], lw[keep]
            if stored[0] > 4_000_000:                  # bound memory (~64 MB) however it is called
                cache.clear()
                cache[()], stored[0] = root, 0
            cache[ys[:i + 1]] = (idx, lw)
            stored[0] += len(idx) + 1
        return idx, lw

    def predict(ys, y):
        idx, lw = state(tuple(ys))
        return lse(lw + loglik(idx, y)) - lse(lw) if len(idx) else NEG_INF
    return predict


def as_int(y):
    """The integer a canonical decimal output stands for, or None ("07", "+7", "7.0" are not)."""
    if y.isascii() and y.isdigit() and (y == "0" or y[0] != "0"):
        return int(y)
    return None


def num(x, decimals):
    """A clean decimal: rounded to `decimals`, trailing zeros dropped ("0.3", "12", "1.25")."""
    s = f"{x:.{decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def to_examples(strings, pool):
    """Example objects, one per distinct string (they are immutable; sharing saves time and memory)."""
    out = []
    for s in strings:
        e = pool.get(s)
        if e is None:
            e = pool[s] = Example(s)
        out.append(e)
    return out


def described_bayes(revealed, known, unknown):
    """bayes for tasks whose descriptions either reveal the parameters or not.
    revealed: {description: bool}; known(ys, y) / unknown(ys, y): log predictive of output y
    after outputs ys, with the parameters described / under the prior."""
    def bayes(desc, prior, ex):
        if desc is not None and desc not in revealed:
            raise ValueError(f"description not among this instance's variants: {desc!r}")
        ys = tuple(e.output for e in prior)
        return known(ys, ex.output) if desc is not None and revealed[desc] else unknown(ys, ex.output)
    return bayes


# --- coinflip ------------------------------------------------------------------------------

def coin_heads(lo, hi, k, n):
    """P(next is Heads) after k heads in n flips, with p ~ U(lo, hi) (the prior restricted to what
    the description says): a ratio of truncated Beta integrals; (k+1)/(n+2) when [lo, hi] = [0, 1]."""
    return math.exp(log_beta_int(lo, hi, k + 1, n - k) - log_beta_int(lo, hi, k, n - k))


def coinflip_descriptions(p):
    """[(description, (lo, hi))]: the interval the description confines p to."""
    m = round(p * 1000)                              # P printed with 3 decimals, from integers
    iv = (max(0.0, (m - 0.5) / 1000), min(1.0, (m + 0.5) / 1000))
    probs = dumps({"Heads": m / 1000, "Tails": (1000 - m) / 1000})
    pct = dumps({"Heads": f"{m / 10:g}%", "Tails": f"{(1000 - m) / 10:g}%"})
    names = dumps(["Heads", "Tails"])
    more = "Heads is more likely than Tails." if p > 0.5 else "Tails is more likely than Heads."
    return [(names, (0.0, 1.0)), (probs, iv), (f"Bernoulli({probs})", iv), (pct, iv),
            (f"Bernoulli({pct})", iv),
            (f"Options: {names}\n{more}", (0.5, 1.0) if p > 0.5 else (0.0, 0.5)),
            ("Coin flip with Heads and Tails. It is potentially biased.", (0.0, 1.0))]


def coinflip_bayes(descs):
    interval = dict(descs)

    def bayes(desc, prior, ex):
        if desc is not None and desc not in interval:
            raise ValueError(f"description not among this instance's variants: {desc!r}")
        if ex.output not in ("Heads", "Tails"):
            return NEG_INF
        lo, hi = interval[desc] if desc is not None else (0.0, 1.0)
        k = sum(e.output == "Heads" for e in prior)
        if k + sum(e.output == "Tails" for e in prior) < len(prior):
            return NEG_INF
        ph = coin_heads(lo, hi, k, len(prior))
        p = ph if ex.output == "Heads" else 1 - ph
        return math.log(p) if p > 0 else NEG_INF
    return bayes


def coinflip_prior(rng, size):
    return {"p": rng.random(size)}


def coinflip_draw(rng, P, k):
    """True = Heads, which has probability p."""
    return rng.random((len(P["p"]), k)) < P["p"][:, None]


def coinflip_instances(seed=0, data_dir=None, n=1000, k=200):
    rng = common.rng(seed, "coinflip")
    p = coinflip_prior(rng, n)["p"]
    heads = coinflip_draw(rng, {"p": p}, k)
    H, T = Example("Heads"), Example("Tails")
    out = []
    for i in range(n):
        descs = coinflip_descriptions(p[i])
        out.append(Instance("coinflip", [d for d, _ in descs], [H if h else T for h in heads[i]],
                            group=f"coinflip-{i}", options=["Heads", "Tails"],
                            bayes=coinflip_bayes(descs)))
    return out


# --- normal (rounded) ------------------------------------------------------------------------

NORMAL_S = (-1, 0, 1, 2)
NORMAL_A = np.arange(-100, 101)
NORMAL_B = (0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
NORMAL_D = (0, 1, 2, 3)


def normal_params(si, a, bi):
    """Mean and std from grid indices: the same float arithmetic for sampling and for the grid."""
    s = np.asarray(NORMAL_S)[si]
    return a * 10.0 ** (s - 1), np.asarray(NORMAL_B)[bi] * 10.0 ** s


def normal_prior(rng, size):
    si = rng.integers(0, len(NORMAL_S), size)
    a = rng.integers(NORMAL_A[0], NORMAL_A[-1] + 1, size)
    bi = rng.integers(0, len(NORMAL_B), size)
    mu, sd = normal_params(si, a, bi)
    return {"s": si, "A": a, "b": bi, "mu": mu, "sd": sd, "d": rng.integers(0, len(NORMAL_D), size)}


def normal_draw(rng, P, k):
    """Unrounded draws (size, k); output j of instance i is render_normal(x[i, j], d[i])."""
    return rng.normal(P["mu"][:, None], P["sd"][:, None], (len(P["mu"]), k))


def render_normal(x, d):
    s = f"{x:.{d}f}"
    return s[1:] if s[0] == "-" and float(s) == 0 else s   # no "-0.00": it is the bin around 0


def decimals(y):
    """d if y is exactly how some x renders with d decimals (d in NORMAL_D), else None."""
    d = len(y) - y.index(".") - 1 if "." in y else 0
    try:
        ok = d in NORMAL_D and render_normal(float(y), d) == y
    except ValueError:
        return None
    return d if ok else None


def normal_loglik(y, d, mu, sd):
    """log P(rendered output == y | mean, std, d) for arrays mu, sd."""
    if decimals(y) != d:
        return np.full(np.shape(mu), NEG_INF)
    v, h = float(y), 0.5 * 10.0 ** -d
    lo, hi = (v - h - mu) / sd, (v + h - mu) / sd
    out = np.full(np.shape(mu), NEG_INF)
    near = (hi > -40) & (lo < 40)                     # beyond 40 sd the mass is below 1e-300
    out[near] = log_phi_interval(np.atleast_1d(lo)[near], np.atleast_1d(hi)[near])
    return out


@lru_cache(maxsize=None)
def normal_posterior(d):
    """The shared posterior predictive for outputs with d decimals (uniform prior on the grid)."""
    si, a, bi = (g.ravel() for g in np.meshgrid(np.arange(len(NORMAL_S)), NORMAL_A,
                                                np.arange(len(NORMAL_B)), indexing="ij"))
    mu, sd = normal_params(si, a, bi)
    return grid_predictive(np.zeros(len(mu)), lambda idx, y: normal_loglik(y, d, mu[idx], sd[idx]))


def normal_descriptions(mu, sd, s, d):
    """[(description, reveals mean/std, reveals d)]."""
    m, sdv = num(mu, max(0, 1 - s)), num(sd, max(0, 2 - s))
    reveal = [f"Normal distribution with mean {m} and std {sdv}.",
              f"The following are draws from a normal distribution with mean {m} and standard deviation {sdv}.",
              f"x ~ Normal(mean={m}, std={sdv})"]
    plain = ["Normal distribution", "Floating point numbers", "Decimal numbers", "Numbers"]
    place = "decimal place" if d == 1 else "decimal places"
    out = []
    for start in reveal + plain:
        for suffix in (f"Precision: {d}", f"{d} {place}", ""):
            out.append((f"{start}\n{suffix}" if suffix else start, start in reveal, bool(suffix)))
    return out


def normal_bayes(mu, sd, d, descs):
    modes = {text: (ms, dd) for text, ms, dd in descs}
    modes[None] = (False, False)

    def bayes(desc, prior, ex):
        if desc not in modes:
            raise ValueError(f"description not among this instance's variants: {desc!r}")
        known_ms, known_d = modes[desc]
        ys, y = tuple(e.output for e in prior), ex.output
        dy, lp = decimals(y), 0.0
        if dy is None:
            return NEG_INF
        if not known_d and not ys:                    # d is a draw of the prior: uniform
            lp = -math.log(len(NORMAL_D))
        elif dy != (d if known_d else decimals(ys[0])):
            return NEG_INF
        if known_ms:
            if any(decimals(v) != dy for v in ys):
                return NEG_INF
            return lp + float(normal_loglik(y, dy, np.array([mu]), np.array([sd]))[0])
        return lp + normal_posterior(dy)(ys, y)
    return bayes


def normal_instances(seed=0, data_dir=None, n=1000, k=150):
    rng = common.rng(seed, "normal")
    P = normal_prior(rng, n)
    x = normal_draw(rng, P, k)
    out, pool = [], {}
    for i in range(n):
        mu, sd, s, d = P["mu"][i], P["sd"][i], NORMAL_S[P["s"][i]], NORMAL_D[P["d"][i]]
        descs = normal_descriptions(mu, sd, s, d)
        out.append(Instance("normal", [t for t, _, _ in descs],
                            to_examples([render_normal(v, d) for v in x[i]], pool),
                            group=f"normal-{i}", bayes=normal_bayes(mu, sd, d, descs)))
    return out


# --- cards -----------------------------------------------------------------------------------

DECK = [f"{r}{s}" for s in "♣♦♥♠" for r in [*map(str, range(2, 11)), "J", "Q", "K", "A"]]
DECK_SET = frozenset(DECK)
CARDS_DESCRIPTION = ("Draw cards at random from a standard 52-card deck without replacement. The deck "
                     "contains all standard playing cards (2-10, J, Q, K, A) in four suits (♣, ♦, ♥, ♠).")


def cards_bayes(desc, prior, ex):
    if desc not in (None, CARDS_DESCRIPTION):
        raise ValueError(f"description not among this instance's variants: {desc!r}")
    seen = {e.output for e in prior}
    if len(seen) < len(prior) or not seen <= DECK_SET or ex.output not in DECK_SET or ex.output in seen:
        return NEG_INF
    return -math.log(52 - len(seen))


def cards_instances(seed=0, data_dir=None, n=100):
    rng = common.rng(seed, "cards")
    deck = [Example(c) for c in DECK]
    return [Instance("cards", [CARDS_DESCRIPTION], [deck[j] for j in rng.permutation(52)],
                     group="deck52", options=list(DECK), bayes=cards_bayes) for _ in range(n)]


# --- the discrete family -------------------------------------------------------------------
# Each family: prior(rng, size) -> dict of parameter arrays; draw(rng, P, k) -> (size, k) values;
# describe(params) -> [(description, reveals parameters)]; known(params) -> f(ys, y) the predictive
# with described parameters; unknown -> f(ys, y) the posterior predictive under the prior.

P_GRID = np.arange(1, 100) / 100


def int_loglik(f):
    """Wrap loglik(idx, x) on integers into loglik(idx, y) on output strings."""
    def g(idx, y):
        x = as_int(y)
        return f(idx, x) if x is not None else np.full(len(idx), NEG_INF)
    return g


def grid_family(grid, loglik, logprior=None):
    """known/unknown predictives for a family whose prior lives on a finite grid (dict of
    equal-length arrays; uniform unless logprior); loglik(params, x) is vectorized over params."""
    ll = int_loglik(lambda idx, x: loglik({k: v[idx] for k, v in grid.items()}, x))
    size = len(next(iter(grid.values())))
    unknown = grid_predictive(np.zeros(size) if logprior is None else logprior, ll)

    def known(params):
        one = {k: np.array([v]) for k, v in params.items()}
        return lambda ys, y: float(int_loglik(lambda idx, x: loglik(one, x))(np.zeros(1, int), y)[0])
    return known, unknown


def binomial_loglik(P, x):
    n, p = P["n"], P["p"]
    if x > n.max():
        return np.full(len(n), NEG_INF)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x <= n, LOGFACT[n] - LOGFACT[x] - LOGFACT[np.maximum(n - x, 0)]
                        + x * np.log(p) + (n - x) * np.log1p(-p), NEG_INF)


def geometric_loglik(P, x):
    p = P["p"]
    return np.log(p) + (x - 1) * np.log1p(-p) if x >= 1 else np.full(len(p), NEG_INF)


NB_R = np.arange(1, 51) / 10


def negbin_loglik(P, x):
    r, p = P["r"], P["p"]
    lg = np.array([math.lgamma(x + v) - math.lgamma(v) for v in NB_R])   # 50 values, indexed below
    return lg[np.rint(r * 10).astype(int) - 1] - math.lgamma(x + 1) + r * np.log(p) + x * np.log1p(-p)


def hypergeometric_loglik(P, x):
    N, K, n = P["N"], P["K"], P["n"]
    if x > N.max():
        return np.full(len(N), NEG_INF)
    return log_comb(K, x) + log_comb(N - K, n - x) - log_comb(N, n)


ZIPF_A = np.arange(1500, 3001) / 1000


def zeta(s):
    """Riemann zeta for s > 1 (array): 49 terms plus the Euler-Maclaurin tail, error < 1e-15."""
    s = np.asarray(s, float)
    n, N = np.arange(1, 50)[:, None], 50.0
    return ((n ** -s).sum(0) + N ** (1 - s) / (s - 1) + N ** -s / 2 + s * N ** (-s - 1) / 12
            - s * (s + 1) * (s + 2) * N ** (-s - 3) / 720
            + s * (s + 1) * (s + 2) * (s + 3) * (s + 4) * N ** (-s - 5) / 30240)


LOG_ZETA = np.log(zeta(ZIPF_A))


def zipf_loglik(P, x):
    a = P["a"]
    return -a * math.log(x) - LOG_ZETA[np.rint(a * 1000).astype(int) - 1500] if x >= 1 else np.full(len(a), NEG_INF)


def meshgrid(**axes):
    gs = np.meshgrid(*axes.values(), indexing="ij")
    return {k: g.ravel() for k, g in zip(axes, gs)}


def hypergeometric_grid():
    rows = [(N, K, n) for N in range(2, 61) for K in range(1, N + 1) for n in range(1, N + 1)]
    N, K, n = np.array(rows).T
    return {"N": N, "K": K, "n": n}, hypergeometric_loglik, -np.log(59) - 2 * np.log(N)  # N ~ U{2..60}, K, n ~ U{1..N}


def poisson_family():
    """lambda ~ Gamma(0.5, rate 1/2000). Undescribed: the negative binomial predictive. Described:
    lambda is known to lie in the rounding interval of its 2-decimal print."""
    a, b = 0.5, 1 / 2000

    def post(lo, hi, ys, y):
        x = as_int(y)
        xs = [as_int(v) for v in ys]
        if x is None or None in xs:
            return NEG_INF
        k, S = len(xs), sum(xs)
        if hi is None:                                  # Gamma(a+S, b+k) -> negative binomial
            return (math.lgamma(a + S + x) - math.lgamma(a + S) - math.lgamma(x + 1)
                    + (a + S) * math.log(b + k) - (a + S + x) * math.log(b + k + 1))
        return (log_gamma_int(lo, hi, a - 1 + S + x, b + k + 1) - math.lgamma(x + 1)
                - log_gamma_int(lo, hi, a - 1 + S, b + k))

    def known(P):
        lam = float(f"{P['lam']:.2f}")
        lo, hi = max(0.0, lam - 0.005), lam + 0.005
        return lambda ys, y: post(lo, hi, ys, y)
    return known, lambda ys, y: post(None, None, ys, y)


def geometric_beta_family():
    """p ~ Beta(1,1). Undescribed: Beta-geometric. Described: p in the interval of its 3-decimal print."""
    def post(lo, hi, ys, y):
        x = as_int(y)
        xs = [as_int(v) for v in ys]
        if x is None or x < 1 or None in xs or min(xs, default=1) < 1:
            return NEG_INF
        k, S = len(xs), sum(xs)
        if lo == 0.0 and hi == 1.0:    # B(k+2, S-k+x) / B(k+1, S-k+1) as products: exact for any x
            return (math.log(k + 1) - np.log(S - k + x + np.arange(k + 2.0)).sum()
                    + np.log(S - k + 1 + np.arange(k + 1.0)).sum())
        return log_beta_int(lo, hi, k + 1, S - k + x - 1) - log_beta_int(lo, hi, k, S - k)

    def known(P):
        m = round(P["p"] * 1000)
        lo, hi = max(0.0, (m - 0.5) / 1000), min(1.0, (m + 0.5) / 1000)
        return lambda ys, y: post(lo, hi, ys, y)
    return known, lambda ys, y: post(0.0, 1.0, ys, y)


# categorical and multinomial: probabilities m/M with m uniform over compositions of M into K
# parts. The posterior sums over compositions: a convolution over categories of (m/M)^count,
# done in log space; categories never seen contribute only the number of ways to fill them.
M = 100
LOG_SHARE = np.log(np.arange(M + 1) / M, where=np.arange(M + 1) > 0, out=np.full(M + 1, NEG_INF))


def log_compositions(r, q):
    """log #ways to write r (array) as an ordered sum of q >= 0 non-negative integers."""
    r = np.asarray(r)
    if q == 0:
        return np.where(r == 0, 0.0, NEG_INF)
    return LOGFACT[r + q - 1] - LOGFACT[q - 1] - LOGFACT[r]


def share_term(c):
    return np.zeros(M + 1) if c == 0 else c * LOG_SHARE


CAT_K = range(2, 21)


@lru_cache(maxsize=100_000)
def categorical_log_evidence(counts):
    """log P(outputs | K) for K = 0..20 (order-specific likelihood), from sorted (category, count)
    pairs. Cached: the numerator of one output is the denominator of the next."""
    g = np.zeros(1)                                     # total share of seen categories: 0
    for _, c in counts:
        g = logconv(g, share_term(c), M + 1)
    t, o, top = np.arange(len(g)), len(counts), max((j for j, _ in counts), default=-1)
    return np.array([lse(g + log_compositions(M - t, K - o)) - float(log_compositions(M, K))
                     if K in CAT_K and K > top and K >= o else NEG_INF for K in range(CAT_K[-1] + 1)])


def categorical_unknown(ys, y):
    counts = {}
    for v in ys + (y,):
        j = as_int(v)
        if j is None or j >= CAT_K[-1]:
            return NEG_INF
        counts[j] = counts.get(j, 0) + 1
    before = dict(counts)
    before[as_int(y)] -= 1
    key = lambda d: tuple(sorted((j, c) for j, c in d.items() if c))
    return lse(categorical_log_evidence(key(counts))) - lse(categorical_log_evidence(key(before)))


def categorical_known(P):
    logp = np.log(P["m"][:P["K"]] / M, where=P["m"][:P["K"]] > 0, out=np.full(P["K"], NEG_INF))

    def f(ys, y):
        j = as_int(y)
        return float(logp[j]) if j is not None and j < len(logp) else NEG_INF
    return f


def compositions_prior(rng, size, K, kmax):
    """m uniform over compositions of M into K parts (Dirichlet(1) then multinomial(M)), padded to kmax."""
    e = rng.exponential(size=(size, kmax)) * (np.arange(kmax) < K[:, None])
    return rng.multinomial(M, e / e.sum(1, keepdims=True))


def categorical_draw(rng, P, k):
    cum = np.cumsum(P["m"], axis=1)
    r = rng.integers(0, M, (len(cum), k))
    return (r[:, :, None] >= cum[:, None, :]).sum(-1)


def prob_vector(m):
    return "[" + ", ".join(num(v / M, 2) for v in m) + "]"


MULT_K, MULT_T = range(2, 11), range(1, 31)


def multinomial_vector(y):
    """The count vector a canonical output stands for, or None."""
    try:
        v = json.loads(y)
    except ValueError:
        return None
    if not isinstance(v, list) or not all(type(c) is int and c >= 0 for c in v) or dumps(v) != y:
        return None
    return v


@lru_cache(maxsize=100_000)
def multinomial_log_evidence(C):
    """log P(draws with total per-category counts C | K = len(C)), up to the multinomial coefficients."""
    g = np.zeros(1)
    for c in C:
        g = logconv(g, share_term(c), M + 1)
    return g[M] - float(log_compositions(M, len(C))) if len(g) > M else NEG_INF


def log_multinomial_coef(v):
    return math.lgamma(sum(v) + 1) - sum(math.lgamma(c + 1) for c in v)


def multinomial_unknown(ys, y):
    vs = [multinomial_vector(v) for v in ys + (y,)]
    if None in vs or len({len(v) for v in vs}) > 1 or len({sum(v) for v in vs}) > 1:
        return NEG_INF
    v, K, T = vs[-1], len(vs[-1]), sum(vs[-1])
    if K not in MULT_K or T not in MULT_T:
        return NEG_INF
    C = np.sum(vs[:-1], axis=0) if ys else np.zeros(K, int)
    lp = 0.0 if ys else -math.log(len(MULT_K)) - math.log(len(MULT_T))
    return (lp + log_multinomial_coef(v) + multinomial_log_evidence(tuple((C + np.array(v)).tolist()))
            - multinomial_log_evidence(tuple(C.tolist())))


def multinomial_known(P):
    K, T = P["K"], P["T"]
    logp = np.log(P["m"][:K] / M, where=P["m"][:K] > 0, out=np.full(K, NEG_INF))

    def f(ys, y):
        v = multinomial_vector(y)
        if v is None or len(v) != K or sum(v) != T:
            return NEG_INF
        return log_multinomial_coef(v) + sum(c * logp[j] for j, c in enumerate(v) if c)
    return f


def discrete_families():
    """name -> dict(prior, draw, describe, known, unknown, k, render, options)."""
    fam = {}

    known, unknown = grid_family(meshgrid(n=np.arange(1, 201), p=P_GRID), binomial_loglik)
    fam["binomial"] = dict(
        prior=lambda rng, size: {"n": rng.integers(1, 201, size), "p": rng.integers(1, 100, size) / 100},
        draw=lambda rng, P, k: rng.binomial(P["n"][:, None], P["p"][:, None], (len(P["n"]), k)),
        describe=lambda P: [(f"Draws from a binomial distribution with parameters n={P['n']} and p={num(P['p'], 2)}.", True),
                            ("Binomial distribution", False), (f"Binomial({P['n']}, {num(P['p'], 2)})", True)],
        known=known, unknown=unknown)

    known, unknown = grid_family({"p": P_GRID}, geometric_loglik)
    fam["geometric"] = dict(
        prior=lambda rng, size: {"p": rng.integers(1, 100, size) / 100},
        draw=lambda rng, P, k: rng.geometric(P["p"][:, None], (len(P["p"]), k)),
        describe=lambda P: [(f"Draws from a geometric distribution with parameter {num(P['p'], 2)}.", True),
                            ("Geometric distribution", False), (f"Geometric({num(P['p'], 2)})", True)],
        known=known, unknown=unknown)

    known, unknown = geometric_beta_family()
    fam["geometric_beta"] = dict(
        prior=lambda rng, size: {"p": rng.random(size)},
        # p = 0 has probability 0, but guard numpy's geometric against it
        draw=lambda rng, P, k: rng.geometric(np.maximum(P["p"], 1e-300)[:, None], (len(P["p"]), k)),
        describe=lambda P: [(f"Draws from a geometric distribution with success probability p={P['p']:.3f}.", True),
                            ("Geometric distribution", False)],
        known=known, unknown=unknown)

    known, unknown = poisson_family()
    fam["poisson"] = dict(
        prior=lambda rng, size: {"lam": rng.gamma(0.5, 2000, size)},
        draw=lambda rng, P, k: rng.poisson(P["lam"][:, None], (len(P["lam"]), k)),
        describe=lambda P: [(f"Draws from a Poisson distribution with parameter {P['lam']:.2f}.", True),
                            ("Poisson distribution", False), (f"Poisson({P['lam']:.2f})", True)],
        known=known, unknown=unknown)

    known, unknown = grid_family(meshgrid(r=NB_R, p=P_GRID), negbin_loglik)
    fam["negative_binomial"] = dict(
        prior=lambda rng, size: {"r": rng.integers(1, 51, size) / 10, "p": rng.integers(1, 100, size) / 100},
        draw=lambda rng, P, k: rng.negative_binomial(P["r"][:, None], P["p"][:, None], (len(P["r"]), k)),
        describe=lambda P: [(f"Draws from a negative binomial distribution with parameters r={num(P['r'], 1)} and p={num(P['p'], 2)}.", True),
                            ("Negative binomial distribution", False),
                            (f"NegativeBinomial({num(P['r'], 1)}, {num(P['p'], 2)})", True)],
        known=known, unknown=unknown)

    def cat_prior(rng, size):
        K = rng.integers(2, 21, size)
        return {"K": K, "m": compositions_prior(rng, size, K, 20)}
    fam["categorical"] = dict(
        prior=cat_prior, draw=categorical_draw,
        describe=lambda P: [(f"Draws from a categorical distribution with {P['K']} categories and probability vector {prob_vector(P['m'][:P['K']])}.", True),
                            ("Categorical distribution", False),
                            (f"Categorical({P['K']}, {prob_vector(P['m'][:P['K']])})", True)],
        known=categorical_known, unknown=categorical_unknown,
        options=lambda P: [str(j) for j in range(P["K"])])

    def mult_prior(rng, size):
        K = rng.integers(2, 11, size)
        return {"K": K, "T": rng.integers(1, 31, size), "m": compositions_prior(rng, size, K, 10)}
    fam["multinomial"] = dict(
        prior=mult_prior,
        draw=lambda rng, P, k: rng.multinomial(P["T"][:, None], (P["m"] / M)[:, None, :], (len(P["T"]), k)),
        render=lambda v, P: dumps([int(c) for c in v[:P["K"]]]),
        describe=lambda P: [(f"Draws from a multinomial distribution with {P['K']} categories, {P['T']} total draws, and probability vector {prob_vector(P['m'][:P['K']])}.", True),
                            ("Multinomial distribution", False),
                            (f"Multinomial({P['K']}, {P['T']}, {prob_vector(P['m'][:P['K']])})", True)],
        known=multinomial_known, unknown=multinomial_unknown, k=80)

    known, unknown = grid_family(*hypergeometric_grid())

    def hyper_prior(rng, size):
        N = rng.integers(2, 61, size)
        return {"N": N, "K": rng.integers(1, N + 1), "n": rng.integers(1, N + 1)}
    fam["hypergeometric"] = dict(
        prior=hyper_prior,
        draw=lambda rng, P, k: rng.hypergeometric(P["K"][:, None], (P["N"] - P["K"])[:, None], P["n"][:, None], (len(P["N"]), k)),
        describe=lambda P: [(f"Draws from a hypergeometric distribution with population size N={P['N']}, "
                             f"number of successes in the population K={P['K']}, number of draws n={P['n']}.", True),
                            ("Hypergeometric distribution", False)],
        known=known, unknown=unknown)

    known, unknown = grid_family({"a": ZIPF_A}, zipf_loglik)
    fam["zipfian"] = dict(
        prior=lambda rng, size: {"a": rng.integers(1500, 3001, size) / 1000},
        draw=lambda rng, P, k: rng.zipf(P["a"][:, None], (len(P["a"]), k)),
        describe=lambda P: [(f"Draws from a Zipfian distribution with alpha={P['a']:.3f}.", True),
                            ("Zipfian distribution", False)],
        known=known, unknown=unknown)
    return fam


FAMILIES = discrete_families()


def family_instances(name, n=500):
    f = FAMILIES[name]

    def instances(seed=0, data_dir=None):
        rng = common.rng(seed, name)
        P = f["prior"](rng, n)
        X = f["draw"](rng, P, f.get("k", 200))
        out, pool = [], {}
        for i in range(n):
            p = {key: (v[i].item() if v.ndim == 1 else v[i]) for key, v in P.items()}
            descs = f["describe"](p)
            strs = ([f["render"](v, p) for v in X[i]] if "render" in f else list(map(str, X[i].tolist())))
            out.append(Instance(name, [d for d, _ in descs], to_examples(strs, pool), group=f"{name}-{i}",
                                options=f["options"](p) if "options" in f else None,
                                bayes=described_bayes(dict(descs), f["known"](p), f["unknown"])))
        return out
    return instances


# --- urn -----------------------------------------------------------------------------------

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "brown", "black", "white"]
URN_INPUT = "Draw a ball at random, and tell me the color (lowercase)."
# P(count = m) when cap ~ U{1..10} and count ~ U{1..cap}
URN_LOGP = np.log([0.0] + [sum(1 / (10 * c) for c in range(m, 11)) for m in range(1, 11)],
                  where=np.arange(11) > 0, out=np.full(11, NEG_INF))
URN_H = [np.zeros(1)]                                   # log P(total of u unseen colors = t)
for _ in range(5):
    URN_H.append(logconv(URN_H[-1], URN_LOGP))


def urn_prior(rng, size):
    """colors: (size, 5) color indices (first c used), counts: (size, 5) with 0 past c."""
    c = rng.integers(2, 6, size)
    colors = np.argsort(rng.random((size, 9)), axis=1)[:, :5]
    counts = rng.integers(1, rng.integers(1, 11, (size, 5)) + 1) * (np.arange(5) < c[:, None])
    return {"c": c, "colors": colors, "counts": counts}


def urn_draw(rng, P, k):
    cum = np.cumsum(P["counts"], axis=1)
    r = rng.integers(0, cum[:, -1:], (len(cum), k))
    pick = (r[:, :, None] >= cum[:, None, :]).sum(-1)
    return np.take_along_axis(P["colors"], pick, axis=1)


def urn_description(colors, counts):
    parts = [f"{n} {COLORS[c]} ball{'s' if n != 1 else ''}" for c, n in zip(colors, counts) if n]
    return ("There is an urn with the following balls shuffled together: "
            + ", ".join(parts[:-1]) + " and " + parts[-1] + ".")


@lru_cache(maxsize=100_000)
def urn_log_evidence(counts, extra_unseen=False):
    """log P(sequence of draws with these per-color counts) under the urn prior, summing over the
    number of colors, which unseen colors are in the urn, and every ball count. With
    extra_unseen, one more draw of one particular color not yet seen."""
    o, n = len(counts), sum(counts) + extra_unseen
    g = np.zeros(1)
    for c in counts:                                   # seen colors: prior x count^(draws)
        g = logconv(g, URN_LOGP + c * np.log(np.arange(11), where=np.arange(11) > 0,
                                                 out=np.full(11, NEG_INF)))
    terms = []
    for c in range(max(2, o), 6):
        u = c - o
        if extra_unseen and u == 0:
            continue
        t1, t2 = np.arange(len(g))[:, None], np.arange(len(URN_H[u]))[None, :]
        tot = t1 + t2
        with np.errstate(divide="ignore"):
            x = np.where(tot > 0, g[:, None] + URN_H[u][None, :] - n * np.log(np.maximum(tot, 1)), NEG_INF)
            if extra_unseen:                            # the unseen mass t2, split evenly
                x = x + np.log(t2) - math.log(9 - o)
        terms.append(-math.log(4) - float(log_comb(9, c)) + float(log_comb(9 - o, u)) + lse(x))
    return lse(terms)


def urn_unknown(ys, y):
    if y not in COLORS or any(v not in COLORS for v in ys):
        return NEG_INF
    counts = {}
    for v in ys:
        counts[v] = counts.get(v, 0) + 1
    key = lambda d: tuple(sorted(d.values()))
    if y in counts:
        after = dict(counts)
        after[y] += 1
        return urn_log_evidence(key(after)) - urn_log_evidence(key(counts))
    return urn_log_evidence(key(counts), True) - urn_log_evidence(key(counts))


def urn_known(colors, counts):
    total = sum(counts)
    logp = {COLORS[c]: math.log(n / total) for c, n in zip(colors, counts) if n}
    return lambda ys, y: logp.get(y, NEG_INF)


def urn_instances(seed=0, data_dir=None, n=500, k=200):
    rng = common.rng(seed, "urn")
    P = urn_prior(rng, n)
    X = urn_draw(rng, P, k)
    ex = [Example(c) for c in COLORS]
    out = []
    for i in range(n):
        desc = urn_description(P["colors"][i], P["counts"][i])
        out.append(Instance("urn", [desc], [ex[j] for j in X[i]], group=f"urn-{i}", options=list(COLORS),
                            bayes=described_bayes({desc: True}, urn_known(P["colors"][i], P["counts"][i]),
                                                  urn_unknown)))
    return out


def urn_dist_prompts(seed=0, data_dir=None, n=200):
    """The reference's urn alignment eval: the model answers one draw; target = the proportions
    over the colors in the urn. Seeded apart from the training urns."""
    rng = common.rng(seed, "urn-dist")
    P = urn_prior(rng, n)
    out = []
    for i in range(n):
        cs, ns = P["colors"][i], P["counts"][i]
        target = {COLORS[c]: float(m / ns.sum()) for c, m in zip(cs, ns) if m}
        out.append(DistPrompt("urn", [{"role": "description", "content": urn_description(cs, ns)},
                                      {"role": "input", "content": URN_INPUT}], target))
    return out


# --- dice ----------------------------------------------------------------------------------

DICE = [(n, s) for n in (1, 2, 3, 4) for s in (4, 6, 8, 10, 12, 20)]
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 6: "six", 8: "eight", 10: "ten", 12: "twelve", 20: "twenty"}


def dice_pmf(n, s):
    """P(sum = t) for t = 0..n*s (zero below n): the n-fold convolution of a fair die."""
    p = np.array([1.0])
    for _ in range(n):
        p = np.convolve(p, np.r_[0.0, np.full(s, 1 / s)])
    return p


DICE_LOGPMF = np.full((len(DICE), 81), NEG_INF)
for _i, (_n, _s) in enumerate(DICE):
    _p = dice_pmf(_n, _s)
    DICE_LOGPMF[_i, :len(_p)] = np.log(_p, where=_p > 0, out=np.full(len(_p), NEG_INF))


def dice_descriptions(n, s):
    if n == 1:
        return [f"Roll one {WORDS[s]}-sided die. What is its value?", f"1d{s}",
                f"The value of a fair {WORDS[s]}-sided die."]
    return [f"Roll {WORDS[n]} {WORDS[s]}-sided dice. What is the sum of their values?", f"{n}d{s}",
            f"The sum of {WORDS[n]} fair {WORDS[s]}-sided dice."]


def dice_loglik(idx, y):
    t = as_int(y)
    return DICE_LOGPMF[idx, t] if t is not None and t <= 80 else np.full(len(idx), NEG_INF)


DICE_UNKNOWN = grid_predictive(np.zeros(len(DICE)), dice_loglik)


def dice_draw(rng, i, k):
    """k sums of configuration DICE[i]."""
    n, s = DICE[i]
    return rng.integers(1, s + 1, (k, n)).sum(1)


def dice_instances(seed=0, data_dir=None, per=10, k=200):
    """`per` instances of every configuration (the prior is uniform over configurations)."""
    rng = common.rng(seed, "dice")
    out, pool = [], {}
    for i, (n, s) in enumerate(DICE):
        for _ in range(per):
            x = dice_draw(rng, i, k)
            descs = dice_descriptions(n, s)
            out.append(Instance("dice", descs, to_examples(map(str, x.tolist()), pool), group=f"{n}d{s}",
                                options=[str(t) for t in range(n, n * s + 1)],
                                bayes=described_bayes(dict.fromkeys(descs, True),
                                                      lambda ys, y, i=i: float(dice_loglik(np.array([i]), y)[0]),
                                                      DICE_UNKNOWN)))
    return out


def dice_dist_prompts(seed=0, data_dir=None):
    """The model card's two-dice prompt (exact text) and a few other configurations."""
    out = []
    for n, s in [(2, 6), (1, 6), (3, 6), (2, 4), (1, 20), (2, 10)]:
        p = dice_pmf(n, s)
        out.append(DistPrompt("dice", [{"role": "description", "content": dice_descriptions(n, s)[0]}],
                              {str(t): float(p[t]) for t in range(n, n * s + 1)}))
    return out


# --- registry ------------------------------------------------------------------------------

TASKS = [
    Task("coinflip", "train", "synthetic", instances=coinflip_instances),
    Task("normal", "train", "synthetic", instances=normal_instances),
    Task("cards", "train", "synthetic", instances=cards_instances),
    *[Task(name, "train", "synthetic", instances=family_instances(name)) for name in FAMILIES],
    # urn and dice are held out: they are the distributional-alignment eval (the paper never trains
    # on its urns), so their targets measure generalization, not memorization.
    Task("urn", "val", "synthetic", instances=urn_instances, dist_prompts=urn_dist_prompts),
    Task("dice", "val", "synthetic", instances=dice_instances, dist_prompts=dice_dist_prompts, ours=True),
]
