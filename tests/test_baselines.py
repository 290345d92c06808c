"""The baselines are the textbook RNN / GRU / LSTM, with (B, H) states like LSTMLayer."""
import pytest
import torch

from lstm_ablation.baselines import baseline_settings, gru, rnn, torch_lstm
from lstm_ablation.spec import ConfigError


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


def test_gru_update_bias_sets_the_keep_gates_initial_bias():
    H = 5
    default, kept = gru(3, H).rnn, gru(3, H, update_bias=1.5).rnn
    z = slice(H, 2 * H)
    torch.testing.assert_close(kept.bias_ih_l0[z] + kept.bias_hh_l0[z], torch.full((H,), 1.5))
    assert default.bias_ih_l0[z].abs().max() <= H ** -0.5  # torch's uniform init, untouched without the setting
    # with the bias at +1.5 the GRU starts by keeping sigma(1.5) = 0.82 of its state on a zero input
    layer = gru(3, H, update_bias=1.5)
    with torch.no_grad():
        for w in (layer.rnn.weight_ih_l0, layer.rnn.weight_hh_l0):
            w.zero_()
    h0 = torch.ones(1, H)
    _, h1 = layer(torch.zeros(1, 1, 3), h0)
    n = torch.tanh(layer.rnn.bias_ih_l0[2 * H:] + torch.sigmoid(layer.rnn.bias_ih_l0[:H] + layer.rnn.bias_hh_l0[:H]) * layer.rnn.bias_hh_l0[2 * H:])
    keep = torch.sigmoid(torch.tensor(1.5))
    torch.testing.assert_close(h1[0], (1 - keep) * n + keep * h0[0])


@pytest.mark.parametrize("kind, cell, says", [
    ("gru", {"name": "gru", "kind": "gru", "forget_bias": 1.0}, r"cell.forget_bias: not a setting of the gru baseline; allowed: update_bias"),
    ("rnn", {"name": "rnn", "kind": "rnn", "update_bias": 1.0}, r"cell.update_bias: not a setting of the rnn baseline; allowed: none"),
    ("gru", {"name": "gru", "kind": "gru", "update_bias": "high"}, r"cell.update_bias: got 'high'; allowed: null or a number"),
])
def test_a_setting_a_baseline_does_not_read_is_refused(kind, cell, says):
    with pytest.raises(ConfigError, match=says):
        baseline_settings(kind, cell)
