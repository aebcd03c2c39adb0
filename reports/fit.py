"""Straight-line fits that say how good they are, and when one may be extrapolated.

The capacity report predicts past what a run measured (a 50-user run says when 1,000
users would pass the Lambda timeout), and a prediction is only as good as the fit behind
it. A fit here carries its R², its points and the range of x it covers; ``refusal`` says
in one line why it must not be extrapolated, or None when it may. It refuses when:

- it has fewer than ``MIN_POINTS`` points;
- its x range is too narrow: the largest x below ``MIN_RANGE_RATIO`` times the smallest
  (a slope from a sliver of x is mostly noise);
- its R² is below ``MIN_R2``: the line explains too little of the variation. A flat cloud
  (a duration that does not grow over the range measured) also lands here: nothing says
  how it grows past the range either;
- its slope is uncertain: a standard error over ``MAX_SLOPE_RELATIVE_SE`` of the slope
  (a 95 % interval wider than about ±30 %). Many noisy points can pin a slope down that
  few would not, which R² alone does not say.
"""

from __future__ import annotations

import math

import numpy as np

MIN_POINTS = 5
MIN_RANGE_RATIO = 2.0
MIN_R2 = 0.5
MAX_SLOPE_RELATIVE_SE = 0.15
RULES = {"min_points": MIN_POINTS, "min_range_ratio": MIN_RANGE_RATIO, "min_r2": MIN_R2,
         "max_slope_relative_se": MAX_SLOPE_RELATIVE_SE}


def linear_fit(xs, ys) -> dict | None:
    """Least squares y = a + b·x, with R², the slope's standard error, the root-mean-square
    residual, the number of points and the range of x; None without two distinct x."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if xs.size < 2 or np.ptp(xs) == 0:
        return None
    b, a = np.polyfit(xs, ys, 1)
    residual = ys - (a + b * xs)
    total = float(((ys - ys.mean()) ** 2).sum())
    squares = float((residual ** 2).sum())
    slope_se = (math.sqrt(squares / (xs.size - 2) / float(((xs - xs.mean()) ** 2).sum()))
                if xs.size > 2 else math.inf)
    return {"intercept": float(a), "slope": float(b), "points": int(xs.size),
            "r2": 1.0 - squares / total if total else 1.0, "slope_se": slope_se,
            "rms_residual": float(np.sqrt((residual ** 2).mean())),
            "x_range": [float(xs.min()), float(xs.max())]}


def too_few_or_too_narrow(points: int, x_range: list[float] | None) -> str | None:
    """Why ``points`` points covering ``x_range`` cannot give a fit that may be
    extrapolated, whatever their values, in one line; None when they can."""
    if points < MIN_POINTS:
        return f"only {points} points (at least {MIN_POINTS} needed)"
    low, high = x_range or (0.0, 0.0)
    if high < MIN_RANGE_RATIO * max(low, 1.0):
        return (f"the points cover {low:,.0f} to {high:,.0f} only (the largest must be at "
                f"least {MIN_RANGE_RATIO:g}× the smallest)")
    return None


def refusal(points: int, x_range: list[float] | None, fit: dict | None) -> str | None:
    """Why a fit over ``points`` points covering ``x_range`` must not be extrapolated, in
    one line; None when it may."""
    coverage = too_few_or_too_narrow(points, x_range)
    if coverage is not None or fit is None:
        return coverage or "no line fits the points"
    if not fit["r2"] >= MIN_R2:
        shown = math.floor(fit["r2"] * 1000) / 1000  # rounded down: 0.4996 is not "0.500"
        return (f"R² {shown:.3f} is below {MIN_R2:g}: the line explains too little of the "
                f"variation")
    if not fit["slope_se"] <= MAX_SLOPE_RELATIVE_SE * abs(fit["slope"]):
        return (f"the slope {fit['slope']:.3g} ± {fit['slope_se']:.2g} (standard error) is "
                f"known to worse than {MAX_SLOPE_RELATIVE_SE:.0%}")
    return None


def first_reaching(fit: dict, limit: float) -> int | None:
    """The smallest whole x >= 1 at which the fitted line reaches ``limit``; None if it
    never does (no growth)."""
    a, b = fit["intercept"], fit["slope"]
    if a + b >= limit:
        return 1
    if b <= 0:
        return None
    return max(1, math.ceil((limit - a) / b))
