"""flight: synthetic flight preferences of one individual (held out, split "val").

As the reference (reference_data.md §4.5): 200 individuals, each a linear preference profile
w in {-1, -.5, 0, .5}^4 minus the zero vector (255 equally likely profiles) over
[departure time, duration, price, stops], each feature scaled to [0, 1]; 20 examples of 3 flights;
the label is the argmax of the utility (ties to the lower index), output "1"/"2"/"3".

Fixes: prices span $50-$1500 (the reference's operator precedence gave $500-$1950), the typo
"indvidual". Features live on grids whose rendering is exact, so the text and the utility agree:
departure 05:00 + 10 min * k (k < 115, up to midnight), duration 45 min + 5 min * k (k < 184, up
to 16 hr 0 min), price $50 + $10 * k (k < 146), stops 0/1/2; feature = k / max k. Utilities are
compared in integers, so ties are exact ties.

Bayes: uniform prior over the 255 profiles; keep those consistent with every previous
(flights, choice) pair; predictive = fraction of consistent profiles choosing each option.
"""
import math
from functools import reduce

import numpy as np

from tasks import Example, Instance, Task
from tasks import common

DESCRIPTION = ("The following express flight preferences for the same individual among a set of "
               "flights. Predict which flight the individual prefers.")
LEVELS = np.array([115, 184, 146, 3])                  # number of values of each feature
DENOM = LEVELS - 1                                     # feature = k / DENOM
LCM = reduce(math.lcm, DENOM.tolist())
# all 255 profiles, as integers W = 2w in {-2,-1,0,1}
PROFILES = np.array([p for p in np.ndindex(4, 4, 4, 4) if any(v != 2 for v in p)]) - 2


def utilities(K, W):
    """2*LCM*(features @ w) exactly, for level indices K (..., 4) and integer profiles W (P, 4)."""
    return (K * (LCM // DENOM)) @ W.T


def choice(K, W):
    """Chosen flight (0-based) for flights K (3, 4) under each profile in W (P, 4): argmax, ties low."""
    return np.argmax(utilities(K, W), axis=0)


def render(K):
    lines = []
    for j, (dep, dur, price, stops) in enumerate(K.tolist()):
        minutes = 5 * 60 + 10 * dep
        h, m = (minutes // 60) % 24, minutes % 60
        dur = 45 + 5 * dur
        lines.append(f"Flight {j + 1}:\nDeparture Time: {(h - 1) % 12 + 1:02d}:{m:02d} {'AM' if h < 12 else 'PM'}, "
                     f"Duration: {dur // 60} hr {dur % 60} min, Number of Stops: {stops}, "
                     f"Price: ${50 + 10 * price}.00")
    return "\n".join(lines)


def flight_bayes(features):
    """features: {input text: level indices (3, 4)} of this individual's examples."""
    cache = {}

    def consistent(pairs):
        if pairs not in cache:
            mask = np.ones(len(PROFILES), bool)
            for x, y in pairs:
                if y not in ("1", "2", "3") or x not in features:
                    return np.zeros(len(PROFILES), bool)
                mask &= choice(features[x], PROFILES) == int(y) - 1
            cache[pairs] = mask
        return cache[pairs]

    def bayes(desc, prior, ex):
        if desc not in (None, DESCRIPTION):
            raise ValueError(f"description not among this instance's variants: {desc!r}")
        if ex.output not in ("1", "2", "3") or ex.input not in features:
            return -math.inf
        mask = consistent(tuple((e.input, e.output) for e in prior))
        if not mask.any():
            return -math.inf
        hits = np.sum(choice(features[ex.input], PROFILES[mask]) == int(ex.output) - 1)
        return math.log(hits / mask.sum()) if hits else -math.inf
    return bayes


def flight_instances(seed=0, data_dir=None, n=200, k=20):
    out = []
    for i in range(n):
        rng = common.rng(seed, f"flight-{i}")            # one generator per individual, as the reference
        W = rng.integers(-2, 2, size=4)
        while not W.any():
            W = rng.integers(-2, 2, size=4)
        features, examples = {}, []
        for _ in range(k):
            K = rng.integers(0, LEVELS, size=(3, 4))
            text = render(K)
            features[text] = K
            examples.append(Example(str(choice(K, W[None])[0] + 1), text))
        out.append(Instance("flight", [DESCRIPTION], examples, group=f"individual-{i}",
                            options=["1", "2", "3"], bayes=flight_bayes(features)))
    return out


TASKS = [Task("flight", "val", "synthetic", instances=flight_instances)]
