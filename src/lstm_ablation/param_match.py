"""Parameter-matched hidden sizes: separate "fewer gates" from "fewer parameters".

A removed gate removes its weights, so at one hidden size NFG has 3/4 of vanilla's parameters and
the tanh RNN 1/4. With `model.match_params: true` each cell gets the hidden size whose whole-model
parameter count (recurrent layer + readout) is closest to the reference cell's at
`model.hidden_size`. Counting builds the modules on torch's "meta" device: no memory, no data.
"""
from __future__ import annotations

import torch


def count_params(cell: dict, input_size: int, output_size: int, hidden_size: int, num_layers: int = 1) -> int:
    """Parameters of SequenceModel for this cell: recurrent layer(s) + linear readout (H -> output)."""
    from .model import build_recurrent

    with torch.device("meta"):
        layer = build_recurrent({**cell, "impl": "reference"}, input_size, hidden_size, num_layers=num_layers)
    return sum(p.numel() for p in layer.parameters()) + hidden_size * output_size + output_size


def matched_hidden_size(cell: dict, reference: dict, input_size: int, output_size: int, hidden_size: int,
                        num_layers: int = 1) -> int:
    """The hidden size at which `cell` has the parameter count closest to `reference` at hidden_size.

    The count grows with H, so a doubling search brackets the target and bisection finds the
    crossing; of the two sizes around it the closer one wins (the smaller on a tie).
    """
    target = count_params(reference, input_size, output_size, hidden_size, num_layers)
    low, high = 1, max(2, hidden_size)
    while count_params(cell, input_size, output_size, high, num_layers) < target:
        low, high = high, high * 2
    while high - low > 1:  # invariant: count(low) < target <= count(high), or low == 1
        mid = (low + high) // 2
        if count_params(cell, input_size, output_size, mid, num_layers) < target:
            low = mid
        else:
            high = mid
    if count_params(cell, input_size, output_size, low, num_layers) >= target:
        return low
    below, above = (abs(count_params(cell, input_size, output_size, h, num_layers) - target) for h in (low, high))
    return low if below <= above else high
