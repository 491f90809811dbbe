"""Confidence intervals for the rates in a run file.

Proportions (a mean of 0/1 per example, `kind: proportion`) get the Wilson score interval from
the rate and n; means of real values (`kind: mean`) get a percentile bootstrap over the
per-example `samples`; single values (`kind: value`, e.g. perplexity = exp(mean NLL)) get none.
Several seeds of one config aggregate to mean ± sample standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same run files always give the same intervals
NAN = float("nan")


def wilson_interval(rate: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion `rate` observed on `n` examples; (nan, nan) if n < 1.

    centre = (p + z²/2n) / (1 + z²/n),  half-width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and is not zero-width at p = 0 or 1.
    """
    from scipy.stats import norm

    if n < 1:
        return NAN, NAN
    z = float(norm.ppf(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denom
    # At p = 0 (or 1) the bound is exactly 0 (or 1); the formula leaves rounding dust like 3e-17.
    low = 0.0 if rate <= 0 else max(0.0, centre - half)
    high = 1.0 if rate >= 1 else min(1.0, centre + half)
    return low, high


def bootstrap_mean_interval(samples: Sequence[float], confidence: float = CONFIDENCE,
                            n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `samples` (scipy.stats.bootstrap, fixed seed).

    Fewer than 2 samples: (nan, nan). All samples equal: a zero-width interval at that value (the
    bootstrap distribution is a point; scipy would warn and return nan).
    """
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(samples, dtype=float)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return NAN, NAN
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def interval(kind: str, value: float, n: int, samples: Sequence[float] | None) -> tuple[float, float]:
    """The 95 % interval a task entry's metric carries, by its kind (see module docstring)."""
    if kind == "proportion":
        return wilson_interval(value, n)
    if kind == "mean" and samples:
        return bootstrap_mean_interval(samples)
    return NAN, NAN


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1) over seeds; std is nan for a single seed."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return NAN, NAN
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, NAN
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
