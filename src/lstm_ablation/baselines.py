"""Baselines beside the configurable LSTM: tanh Elman RNN, GRU, and torch.nn.LSTM itself.

They are torch's own (oneDNN-backed) layers behind LSTMLayer's call signature, so the model
code treats every recurrent layer alike: layer(x) -> (out (B, T, H), final state).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .spec import META_FIELDS, ConfigError, is_number


class TorchRecurrent(nn.Module):
    """Wraps nn.RNN / nn.GRU / nn.LSTM (one layer, batch_first); states are (B, H) like LSTMLayer's."""

    def __init__(self, module: nn.RNNBase):
        super().__init__()
        self.rnn = module
        self.hidden_size = module.hidden_size

    def forward(self, x: Tensor, state=None):
        if state is not None:  # (B, H) -> (1, B, H), as torch wants
            state = tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state.unsqueeze(0)
        out, last = self.rnn(x, state)
        last = tuple(s.squeeze(0) for s in last) if isinstance(last, tuple) else last.squeeze(0)
        return out, last


def rnn(input_size: int, hidden_size: int) -> TorchRecurrent:
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)"""
    return TorchRecurrent(nn.RNN(input_size, hidden_size, nonlinearity="tanh", batch_first=True))


def gru(input_size: int, hidden_size: int, update_bias: float | None = None) -> TorchRecurrent:
    """r, z = sigma(...); n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h' = (1-z)*n + z*h

    z keeps the old state, as the LSTM's forget gate does: `update_bias` sets its initial bias
    (b_iz + b_hz = update_bias), the GRU's counterpart of b_f = 1 (Jozefowicz et al. 2015), so a
    tuned GRU gets the same chance as a tuned LSTM; None keeps torch's uniform init."""
    module = nn.GRU(input_size, hidden_size, batch_first=True)
    if update_bias is not None:
        with torch.no_grad():  # torch's rows: r, z, n
            module.bias_ih_l0[hidden_size:2 * hidden_size].fill_(update_bias)
            module.bias_hh_l0[hidden_size:2 * hidden_size].zero_()
    return TorchRecurrent(module)


def torch_lstm(input_size: int, hidden_size: int) -> TorchRecurrent:
    return TorchRecurrent(nn.LSTM(input_size, hidden_size, batch_first=True))


BASELINES = {"rnn": rnn, "gru": gru, "torch_lstm": torch_lstm}
SETTINGS = {"rnn": (), "gru": ("update_bias",), "torch_lstm": ()}  # cell fields each baseline reads


def baseline_settings(kind: str, cell: dict) -> dict:
    """The baseline's own keyword settings from a cell config; a field it does not read is refused,
    not silently ignored (a dead setting would be searched and reported as if it mattered)."""
    settings = {k: v for k, v in cell.items() if k not in META_FIELDS}
    for field, value in settings.items():
        if field not in SETTINGS[kind]:
            raise ConfigError(f"cell.{field}: not a setting of the {kind} baseline; allowed: {', '.join(SETTINGS[kind]) or 'none'}")
        if value is not None and not is_number(value):
            raise ConfigError(f"cell.{field}: got {value!r}; allowed: null or a number")
    return {k: v for k, v in settings.items() if v is not None}


def build_baseline(kind: str, cell: dict, input_size: int, hidden_size: int) -> TorchRecurrent:
    return BASELINES[kind](input_size, hidden_size, **baseline_settings(kind, cell))
