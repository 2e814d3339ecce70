"""Power: the minimum detectable difference at a family's level and the seeds a difference needs."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from analysis.stats.settings import Analysis


def seed_matrix(g: pd.DataFrame, variants: list[str], metric: str) -> pd.DataFrame:
    """Seeds (rows) × variants (columns) of ``metric``, only the seeds every variant has."""
    wide = (g[g["variant"].isin(variants)].groupby(["seed", "variant"])[metric].mean()
            .unstack("variant"))
    return wide.reindex(columns=variants).dropna()


def mde(sd: float, n: int, analysis: Analysis = Analysis(), image_var: float = 0.0) -> float:
    """The minimum detectable paired difference: the true mean difference that a two-sided
    paired t-test at ``alpha`` detects with probability ``power``, given ``n`` pairs with
    standard deviation ``sd`` (statsmodels' ``TTestPower``, effect size × sd), and the test
    set's variance ``image_var`` of the mean difference (an SD of sqrt(sd^2 + n image_var))."""
    if n < 2 or not (sd > 0 or image_var > 0):
        return float("nan")
    return _detectable_effect(n, analysis.alpha, analysis.power) * np.sqrt(sd * sd
                                                                           + n * image_var)


@functools.cache
def _detectable_effect(n: int, alpha: float, power: float) -> float:
    """The standardised effect a two-sided paired t-test detects with probability ``power``: the
    root of ``paired_power`` (monotone in the effect) by Brent's method. statsmodels'
    ``solve_power`` returns wrong roots at few pairs and strict levels (effect 10.0 with power
    0.02 at 2 pairs and alpha 0.05/36), so it is not used."""
    from scipy.optimize import brentq

    high = 1.0
    while paired_power(high, n, alpha) < power:
        high *= 2
    return float(brentq(lambda e: paired_power(e, n, alpha) - power, 0.0, high, xtol=1e-10,
                        rtol=1e-12))


def paired_power(effect: float, n: int, alpha: float = 0.05) -> float:
    """The power of a two-sided paired t-test at ``alpha`` with ``n`` pairs for a true mean
    difference of ``effect`` SDs of the pairs: statsmodels' ``TTestPower().power``, and where
    that is NaN (scipy's noncentral t underflows for large effects at few pairs, e.g. 7 SDs at
    2 pairs, whose power is 0.56) the same probability by quadrature. With T = (Z + d) / S,
    d = effect sqrt(n), S = chi_{n-1} / sqrt(n - 1): power = E_S[Phi(d - c S) + Phi(-d - c S)],
    c the t quantile."""
    from scipy import integrate
    from scipy.stats import t as student
    from statsmodels.stats.power import TTestPower

    got = TTestPower().power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided")
    if not np.isnan(got):
        return float(got)
    df, d = n - 1, effect * np.sqrt(n)
    c = student.ppf(1 - alpha / 2, df) / np.sqrt(df)
    return float(integrate.quad(_power_integrand, 0, np.inf, args=(df, d, c), limit=200)[0])


def _power_integrand(x: float, df: int, d: float, c: float) -> float:
    """``chi.pdf(x, df) * (norm.cdf(d - c x) + norm.cdf(-d - c x))``, written with scipy's own
    special functions in scipy's formula (equal to ~1e-13 relative), without the
    distribution objects' per-call argument checks: quadrature calls it some 200 times per
    power, and the report asks for hundreds of powers."""
    from scipy import special

    log_pdf = (np.log(2) - .5 * np.log(2) * df - special.gammaln(.5 * df)
               + special.xlogy(df - 1., x) - .5 * x ** 2)
    return np.exp(log_pdf) * (special.ndtr(d - c * x) + special.ndtr(-d - c * x))


def seeds_needed(sd: float, detect: float, alpha: float = 0.05, power: float = 0.8,
                 most: int = 10**7, image_var: float = 0.0) -> int:
    """The fewest pairs (seeds, at least 2) with which a two-sided paired t-test at ``alpha``
    detects a true mean difference ``detect`` with probability ``power``, for pairs of SD
    ``sd``: the smallest integer n whose power (statsmodels' ``TTestPower().power``) reaches
    ``power`` (``paired_power``: statsmodels', by quadrature where that is NaN), found by doubling
    then bisection (power grows with n). ``most`` caps the search.
    (statsmodels' own ``solve_power`` for ``nobs`` fails to converge at large effect sizes.)
    ``image_var``: the test set's variance of the mean difference (squared points), which more
    seeds do not shrink: the SE is sqrt(sd^2 / n + image_var), and where the test set alone keeps
    the power below ``power`` at any n the answer is ``most`` (unreachable by seeds)."""
    from scipy.stats import norm

    if not sd > 0 and not image_var > 0:
        return 2
    if image_var > 0 and detect / np.sqrt(image_var) <= norm.ppf(1 - alpha / 2) + norm.ppf(power):
        return most  # even infinitely many seeds leave the test set's own noise

    def enough(n: int) -> bool:
        effect = detect / np.sqrt(sd * sd + n * image_var)  # noncentrality effect x sqrt(n)
        return paired_power(effect, n, alpha) >= power

    low, high = 1, 2  # not enough at low (or low < 2), enough at high
    while not enough(high):
        if high >= most:
            return most
        low, high = high, min(2 * high, most)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high
