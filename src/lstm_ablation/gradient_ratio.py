"""How much of the loss gradient reaches step t, relative to step r, the last step the gradient reaches.

r is the last t with |dL/dh_t| > 0: T-1 where the loss reads the last output (adding, copy, the digits),
the batch's last query in associative recall, whose final steps carry no label (|dL/dh_{T-1}| = 0 there,
and a ratio to it would be 0/0). The probes write these ratios; the report derives them from the norms
of probes written before r was used (those divided by the last step's norm). No torch here: the report
imports it.
"""
from __future__ import annotations

import math


def last_reached(norm: list[float | None]) -> float | None:
    """|dL/dh_r|: the last positive norm; None if no step has a gradient."""
    return next((v for v in reversed(norm) if v is not None and v > 0), None)


def relative_to_last_reached(norm: list[float | None]) -> list[float]:
    """norm_t / norm_r: 1 at r, 0 after it; NaN throughout where no step has a gradient."""
    ref = last_reached(norm)
    return [math.nan if v is None or ref is None else v / ref for v in norm]


def log10_ratio(first: float | None, last: float | None) -> float:
    """log10(first / last), NaN unless both are positive."""
    return math.log10(first / last) if first and last and first > 0 and last > 0 else math.nan
