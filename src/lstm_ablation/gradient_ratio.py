"""How much of the loss gradient reaches step t, relative to step r, the last step the gradient reaches.

r is the last t with |dL/dh_t| > 0: T-1 where the loss reads the last output (adding, copy, the digits),
the batch's last query in associative recall, whose final steps carry no label (|dL/dh_{T-1}| = 0 there,
and a ratio to it would be 0/0). The probes write these ratios; the report derives them from the norms
of probes written before r was used (those divided by the last step's norm). No torch here: the report
imports it.
"""
from __future__ import annotations

import math


def ratios_to_last_reached(norm: list[float | None]) -> tuple[list[float], float]:
    """(norm_t / norm_r for every t, log10(norm_0 / norm_r)): 1 at r and 0 after it; NaN throughout where no
    step has a gradient, and the log NaN unless norm_0 is positive too."""
    ref = next((v for v in reversed(norm) if v is not None and v > 0), None)    # |dL/dh_r|
    ratios = [math.nan if v is None or ref is None else v / ref for v in norm]
    first = norm[0] if norm else None
    return ratios, math.log10(first / ref) if ref is not None and first is not None and first > 0 else math.nan
