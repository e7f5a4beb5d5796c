"""Random generators, rounding and the vectorised statistics the demo data needs (no scipy)."""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

import numpy as np

# 2 / C(24, 12): the smallest exact two-sided Mann-Whitney p with 12 vs 12 donors (DOMAIN.md §8.0).
PARSE_MIN_P = 7.4e-7


def rng(seed: int, *keys: object) -> np.random.Generator:
    """An independent generator per (seed, table, entity ...): one table's draws never shift another's."""
    return np.random.default_rng([seed, *(zlib.crc32(str(k).encode()) for k in keys)])


def r4(x) -> np.ndarray:
    """Round to 4 decimals like the real pipeline (+0.0 turns -0.0 into 0.0)."""
    return np.round(np.asarray(x, dtype=np.float64), 4) + 0.0


def sig6(p) -> np.ndarray:
    """Round to 6 significant digits (p-values: small p must not round to 0). NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = p.copy()
    ok = np.isfinite(p) & (p != 0)
    digits = 5 - np.floor(np.log10(np.abs(p[ok])))
    scale = 10.0 ** digits
    rounded = np.round(p[ok] * scale) / scale
    # 10**k is exact only up to k = 22; round the (rare) tinier values through their decimal text
    tiny = digits > 22
    rounded[tiny] = [float(f"{x:.6g}") for x in p[ok][tiny]]
    out[ok] = rounded
    return out


def erfc(x) -> np.ndarray:
    """Complementary error function, fractional error < 1.2e-7 (Numerical Recipes `erfcc`)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def p_two_sided(z) -> np.ndarray:
    """Two-sided normal p-value for a z statistic."""
    return np.clip(erfc(np.abs(np.asarray(z, dtype=np.float64)) / math.sqrt(2.0)), 0.0, 1.0)


def p_correlation(rho, n) -> np.ndarray:
    """p-value of a correlation coefficient via Fisher's z (normal approximation)."""
    rho = np.clip(np.asarray(rho, dtype=np.float64), -0.999999, 0.999999)
    n = np.asarray(n, dtype=np.float64)
    z = np.arctanh(rho) * np.sqrt(np.maximum(n - 3.0, 1.0))
    return p_two_sided(z)


def mwu_asymptotic(u1, n1, n2, alternative: str = "two-sided") -> np.ndarray:
    """Mann-Whitney U p-value, normal approximation with continuity correction (scipy's
    `method='asymptotic'`, which scipy uses whenever a sample has more than 8 values)."""
    u1, n1, n2 = (np.asarray(a, dtype=np.float64) for a in (u1, n1, n2))
    mu = n1 * n2 / 2.0
    sigma = np.sqrt(n1 * n2 * (n1 + n2 + 1.0) / 12.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if alternative == "greater":
            z = (u1 - mu - 0.5) / sigma
            return np.clip(0.5 * erfc(z / math.sqrt(2.0)), 0.0, 1.0)
        u = np.maximum(u1, n1 * n2 - u1)
        z = (u - mu - 0.5) / sigma
        return np.clip(erfc(z / math.sqrt(2.0)), 0.0, 1.0)


@lru_cache(maxsize=None)
def _exact_sf(n1: int, n2: int) -> np.ndarray:
    """P(U >= u) for u = 0..n1*n2 under H0 (no ties), by the standard recurrence."""
    @lru_cache(maxsize=None)
    def count(m: int, n: int, u: int) -> int:
        if u < 0:
            return 0
        if m == 0 or n == 0:
            return int(u == 0)
        return count(m - 1, n, u - n) + count(m, n - 1, u)

    counts = np.array([count(n1, n2, u) for u in range(n1 * n2 + 1)], dtype=np.float64)
    pmf = counts / counts.sum()
    return np.cumsum(pmf[::-1])[::-1]


def mwu_exact_two_sided(u1: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Exact two-sided Mann-Whitney p for small equal-size groups (scipy's `method='exact'`)."""
    sf = _exact_sf(n1, n2)
    u = np.maximum(u1, n1 * n2 - u1)
    idx = np.clip(np.ceil(u).astype(np.int64), 0, n1 * n2)
    return np.minimum(1.0, 2.0 * sf[idx])


def mwu_u(treated: np.ndarray, control: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise U statistic of `treated` ([rows, a]) vs `control` ([rows, b]); NaN = missing.

    Returns (U1, n1, n2). Ties count one half, as in scipy.
    """
    t = treated[:, :, None]
    c = control[:, None, :]
    with np.errstate(invalid="ignore"):
        u = (t > c).sum(axis=(1, 2)) + 0.5 * (t == c).sum(axis=(1, 2))
    n1 = np.isfinite(treated).sum(axis=1)
    n2 = np.isfinite(control).sum(axis=1)
    return u.astype(np.float64), n1, n2


def bh(p: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg q-values over the non-NaN p of each group; q >= p always."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    keys = [None] if groups is None else np.unique(groups)
    for key in keys:
        sel = np.isfinite(p) if key is None else (np.isfinite(p) & (groups == key))
        idx = np.flatnonzero(sel)
        if idx.size == 0:
            continue
        order = idx[np.argsort(p[idx], kind="stable")]
        m = order.size
        ranked = p[order] * m / np.arange(1, m + 1)
        q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def neg_log10(p: np.ndarray) -> np.ndarray:
    return r4(-np.log10(np.maximum(p, 1e-300)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho of two equal-length vectors (ties are negligible on continuous data)."""
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def lognormal_counts(r: np.random.Generator, mean, sigma: float, size) -> np.ndarray:
    """Integer counts ~ LogNormal with the given arithmetic mean."""
    mu = np.log(np.asarray(mean, dtype=np.float64)) - sigma ** 2 / 2
    return np.rint(np.exp(r.normal(mu, sigma, size))).astype(np.int64)


def group_stats(groups: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group n, mean, median and sample SD (NaN for n = 1), deterministic (sort-based).

    Returns the sorted distinct group codes under "group" and one entry per statistic.
    """
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    n = np.diff(np.r_[starts, g.size])
    mean = np.add.reduceat(v, starts) / n
    median = (v[starts + (n - 1) // 2] + v[starts + n // 2]) / 2
    sq = np.add.reduceat((v - np.repeat(mean, n)) ** 2, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.where(n > 1, np.sqrt(sq / (n - 1)), np.nan)
    return {"group": g[starts], "n": n, "mean": mean, "median": median, "sd": sd}
