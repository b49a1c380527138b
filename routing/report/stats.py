"""The two statistics the routing report rests on: percentiles of durations from a histogram whose
counts add up, and the Wilson score interval of a proportion.

Durations go into logarithmic buckets, each (1 + a) / (1 - a) times as wide as the one before it
with a = `RELATIVE_ACCURACY`: the idea of DDSketch (Masson, Rim and Lee, VLDB 2019), without its
package. A percentile read from the buckets is within 1% of the true one, whatever the spread of
the durations, and a histogram is a plain `{bucket: count}`: two of them merge by adding counts,
and a database can build one with `GROUP BY` on a bucket number stored with the row (`bucket_of`),
so a million leads never have to reach Python to give a p90. A t-digest is smaller but its merge
depends on the order of merging; exact lists merge exactly but grow with the leads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
# Durations under a millisecond (and negative ones: a first touch logged in the CRM before the
# lead reached us) count as zero. Time to card is a few milliseconds; nothing here is shorter.
SMALLEST = 0.001
ZERO_BUCKET = 0

Z_95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration: 0 for zero, else n >= 1 for durations in
    (SMALLEST * g**(n-2), SMALLEST * g**(n-1)], g the buckets' growth factor."""
    if seconds < SMALLEST:
        return ZERO_BUCKET
    return max(1, math.ceil(math.log(seconds / SMALLEST) / _LOG_GAMMA) + 1)


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: within RELATIVE_ACCURACY of every duration in it."""
    if bucket <= ZERO_BUCKET:
        return 0.0
    return 2 * SMALLEST * _GAMMA ** (bucket - 1) / (_GAMMA + 1)


def histogram(durations: Iterable[float]) -> Counter[int]:
    """The bucket counts of some durations, in seconds."""
    return Counter(bucket_of(seconds) for seconds in durations)


def percentile(buckets: Mapping[int, int], fraction: float) -> float | None:
    """The `fraction` (0 < fraction <= 1) percentile of the durations counted in `buckets`,
    within RELATIVE_ACCURACY; None when there are none.

    Nearest rank: the smallest duration that at least `fraction` of them do not exceed, so the
    median of 10 s and 20 s is 10 s, and every answer is (close to) a duration that happened
    rather than a number between two of them."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a percentile is a fraction in (0, 1], not {fraction}")
    total = sum(count for count in buckets.values() if count > 0)
    if total == 0:
        return None
    # 0.9 * 10 is 9.000000000000002 in floats: without the nudge, its rank would be 10.
    rank = max(1, math.ceil(fraction * total - 1e-9))
    seen = 0
    for bucket in sorted(buckets):
        seen += max(buckets[bucket], 0)
        if seen >= rank:
            return bucket_value(bucket)
    raise AssertionError("the ranks add up to the total")


@dataclass(frozen=True, slots=True)
class Proportion:
    """`count` of `of`, with its rate and its 95% Wilson interval; rate and bounds are None when
    `of` is 0: no data, rather than a made-up 0%."""

    count: int
    of: int
    rate: float | None
    low: float | None
    high: float | None


def proportion(count: int, of: int) -> Proportion:
    if not 0 <= count <= of:
        raise ValueError(f"{count} of {of} is not a proportion")
    if of == 0:
        return Proportion(0, 0, None, None, None)
    low, high = wilson_interval(count, of)
    return Proportion(count, of, count / of, low, high)


def wilson_interval(count: int, of: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of `count` successes in `of` trials (95% by default).

    Unlike the textbook p +/- z*sqrt(p(1-p)/n), it stays inside [0, 1] and is honest about small
    and extreme samples: 0 of 5 gives [0, 43%], not [0, 0]."""
    if of <= 0:
        raise ValueError("an interval needs at least one trial")
    p = count / of
    z2 = z * z
    denominator = 1 + z2 / of
    centre = (p + z2 / (2 * of)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / of + z2 / (4 * of * of))
    # At 0 or all of them a bound is exactly 0 or 1; in floats it can come out a hair away.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == of else min(1.0, centre + half)
    return low, high
