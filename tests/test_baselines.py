"""The baselines are the textbook RNN / GRU / LSTM, with (B, H) states like LSTMLayer."""
import torch

from lstm_ablation.baselines import gru, rnn, torch_lstm


def test_rnn_is_elman_tanh():
    torch.manual_seed(0)
    layer = rnn(3, 4).double()
    m = layer.rnn
    x, h = torch.randn(2, 6, 3, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    outs = []
    for x_t in x.unbind(1):
        h = torch.tanh(x_t @ m.weight_ih_l0.T + m.bias_ih_l0 + h @ m.weight_hh_l0.T + m.bias_hh_l0)
        outs.append(h)
    out, last = layer(x)
    torch.testing.assert_close(out, torch.stack(outs, 1))
    torch.testing.assert_close(last, h)


def test_gru_equations_and_initial_state():
    torch.manual_seed(0)
    layer = gru(3, 4).double()
    m, H = layer.rnn, 4
    x, h0 = torch.randn(2, 6, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    h, outs = h0, []
    for x_t in x.unbind(1):
        gi, gh = x_t @ m.weight_ih_l0.T + m.bias_ih_l0, h @ m.weight_hh_l0.T + m.bias_hh_l0
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        outs.append(h)
    out, last = layer(x, h0)
    torch.testing.assert_close(out, torch.stack(outs, 1))
    torch.testing.assert_close(last, h)


def test_torch_lstm_state_shapes():
    layer = torch_lstm(3, 4)
    out, (h, c) = layer(torch.randn(2, 5, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))
    assert out.shape == (2, 5, 4) and h.shape == (2, 4) and c.shape == (2, 4)
