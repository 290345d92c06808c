"""Stacks: `model.num_layers` recurrent layers of one cell, dropout between them (Zaremba et al.
2014's placement: on each layer's output that feeds the next layer, never on the recurrence).

Each layer is a single-layer module of this project (LSTMLayer or a TorchRecurrent baseline), so the
probes can unroll every layer with the same code as a single layer. Layer 0 reads the input; layer
k > 0 reads layer k-1's outputs h_t. The readout sees the last layer.
"""
from __future__ import annotations

from torch import Tensor, nn


class Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], dropout: float = 0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: got {dropout!r}; allowed: 0 <= dropout < 1")
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.hidden_size = layers[-1].hidden_size

    def forward(self, x: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        """x: (B, T, I); state: one state per layer (None: zeros). Returns the last layer's out
        (B, T, H) and the list of every layer's final state."""
        states = []
        for k, layer in enumerate(self.layers):
            if k:
                x = self.dropout(x)                    # (B, T, H) between layers only
            x, last = layer(x, None if state is None else state[k])
            states.append(last)
        return x, states
