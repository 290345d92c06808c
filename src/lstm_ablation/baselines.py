"""Baselines beside the configurable LSTM: tanh Elman RNN, GRU, and torch.nn.LSTM itself.

They are torch's own (oneDNN-backed) layers behind LSTMLayer's call signature, so the model
code treats every recurrent layer alike: layer(x) -> (out (B, T, H), final state).
"""
from __future__ import annotations

from torch import Tensor, nn


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


def gru(input_size: int, hidden_size: int) -> TorchRecurrent:
    """r, z = sigma(...); n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); h' = (1-z)*n + z*h"""
    return TorchRecurrent(nn.GRU(input_size, hidden_size, batch_first=True))


def torch_lstm(input_size: int, hidden_size: int) -> TorchRecurrent:
    return TorchRecurrent(nn.LSTM(input_size, hidden_size, batch_first=True))


BASELINES = {"rnn": rnn, "gru": gru, "torch_lstm": torch_lstm}
