"""LSTMLayer's reference path against nn.LSTM and against the equations written out per gate."""
import pytest
import torch
from torch import nn

from lstm_ablation import CellSpec, LSTMLayer, load_variant
from lstm_ablation.spec import available_variants, variant_config

ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda v: v}
LSTM_VARIANTS = [v for v in available_variants() if variant_config(v).get("kind", "lstm") == "lstm"]
# Cells of issue 13's axes (JANET, FGR, sLSTM, minLSTM) have their own equations in tests/test_family.py.
FAMILY = {f: getattr(CellSpec(), f) for f in ("coupling_shift", "gate_recurrence", "input_gate_activation",
                                             "forget_gate_activation", "gates_read", "candidate_read", "normalised_gates")}
CLASSIC = [v for v in LSTM_VARIANTS
           if all(getattr(load_variant(v), f) == d for f, d in FAMILY.items())
           and load_variant(v).input_gate != "coupled"]
SPECS = {name: load_variant(name) for name in CLASSIC} | {
    "coupled_peephole": CellSpec(forget_gate="coupled", peepholes=True),
    "nig_peephole": CellSpec(input_gate="none", peepholes=True),
    "nog_nfg_linear": CellSpec(forget_gate="none", output_gate="none", output_activation="identity"),
    "all_sigmoid": CellSpec(candidate_activation="sigmoid", output_activation="sigmoid", peepholes=True),
}


def equations(layer: LSTMLayer, x, h, c):
    """Per-step LSTM from the textbook equations, one weight matrix per gate."""
    spec, H = layer.spec, layer.hidden_size
    W = {}
    for n, gate in enumerate(spec.gates):
        rows = slice(n * H, (n + 1) * H)
        W[gate] = (layer.weight_ih[rows], layer.weight_hh[rows], layer.bias[rows])
    p = dict(zip(spec.peephole_gates, layer.peephole)) if spec.peepholes else {}

    def pre(gate, x_t, h):
        w_x, w_h, b = W[gate]
        return x_t @ w_x.T + h @ w_h.T + b

    outs = []
    for x_t in x.unbind(1):
        one = torch.ones_like(c)
        i = torch.sigmoid(pre("i", x_t, h) + (p["i"] * c if "i" in p else 0)) if spec.input_gate == "learned" else one
        if spec.forget_gate == "learned":
            f = torch.sigmoid(pre("f", x_t, h) + (p["f"] * c if "f" in p else 0))
        elif spec.forget_gate == "coupled":
            f = 1 - i
        else:
            f = one
        g = ACT[spec.candidate_activation](pre("g", x_t, h))
        c = f * c + i * g
        o = torch.sigmoid(pre("o", x_t, h) + (p["o"] * c if "o" in p else 0)) if spec.output_gate == "learned" else one
        h = o * ACT[spec.output_activation](c)
        outs.append(h)
    return torch.stack(outs, 1), (h, c)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_reference_path_matches_equations(name):
    torch.manual_seed(0)
    layer = LSTMLayer(SPECS[name], input_size=3, hidden_size=5, impl="reference").double()
    with torch.no_grad():  # non-zero peepholes so a mistake in them shows
        for p in layer.parameters():
            p.uniform_(-0.8, 0.8)
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    h0, c0 = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    out, (h, c) = layer(x, (h0, c0))
    ref_out, (ref_h, ref_c) = equations(layer, x, h0, c0)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, ref_c, rtol=0, atol=1e-12)
    # Gradients: autograd through both, w.r.t. every parameter.
    params = list(layer.parameters())
    g_layer = torch.autograd.grad((out ** 2).sum() + c.sum(), params)
    g_ref = torch.autograd.grad((ref_out ** 2).sum() + ref_c.sum(), params)
    for a, b in zip(g_layer, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("with_state", [False, True])
def test_from_torch_reproduces_nn_lstm(dtype, tol, with_state):
    torch.manual_seed(1)
    ref = nn.LSTM(2, 16, batch_first=True).to(dtype)
    layer = LSTMLayer.from_torch(ref)
    layer.impl = "reference"
    x = torch.randn(8, 30, 2, dtype=dtype, requires_grad=True)
    state = (torch.randn(8, 16, dtype=dtype), torch.randn(8, 16, dtype=dtype)) if with_state else None
    out, (h, c) = layer(x, state)
    ref_out, (ref_h, ref_c) = ref(x, tuple(s.unsqueeze(0) for s in state) if state else None)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=tol)
    torch.testing.assert_close(c, ref_c[0], rtol=0, atol=tol)
    torch.testing.assert_close(h, ref_h[0], rtol=0, atol=tol)

    w = torch.randn_like(out)  # a loss that weighs every output differently
    dx, dwih, dwhh, db = torch.autograd.grad((out * w).sum(), [x, layer.weight_ih, layer.weight_hh, layer.bias])
    rdx, rwih, rwhh, rbih, rbhh = torch.autograd.grad(
        (ref_out * w).sum(), [x, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0])
    torch.testing.assert_close(dx, rdx, rtol=0, atol=tol)
    torch.testing.assert_close(dwih, rwih, rtol=0, atol=tol)
    torch.testing.assert_close(dwhh, rwhh, rtol=0, atol=tol)
    torch.testing.assert_close(db, rbih, rtol=0, atol=tol)  # one bias: its gradient is each of torch's two
    torch.testing.assert_close(db, rbhh, rtol=0, atol=tol)


def count(spec: CellSpec, I=2, H=64) -> int:
    return sum(p.numel() for p in LSTMLayer(spec, I, H).parameters())


def test_parameter_counts_show_removed_gates():
    I, H = 2, 64
    gate = H * (I + H) + H  # one gate: W_x, W_h, b
    assert count(CellSpec()) == 4 * gate
    assert count(CellSpec()) == sum(p.numel() for p in nn.LSTM(I, H).parameters()) - 4 * H  # nn.LSTM has 2 biases
    for name, gates in {"no_forget_gate": 3, "no_input_gate": 3, "no_output_gate": 3, "coupled_gates": 3,
                        "sigmoid_candidate": 4, "linear_output": 4}.items():
        assert count(load_variant(name)) == gates * gate, name
    assert count(load_variant("peephole")) == 4 * gate + 3 * H
    assert count(CellSpec(forget_gate="coupled", peepholes=True)) == 3 * gate + 2 * H  # no f, so no p_f
    assert count(CellSpec(input_gate="none", forget_gate="none", output_gate="none")) == gate


def test_forget_bias_and_chrono_init():
    layer = LSTMLayer(CellSpec(forget_bias=2.5), 2, 8)
    assert torch.all(layer.bias[layer.gate_slices()["f"]] == 2.5)
    chrono = LSTMLayer(CellSpec(chrono_t_max=100), 2, 8)
    b_f, b_i = chrono.bias[chrono.gate_slices()["f"]], chrono.bias[chrono.gate_slices()["i"]]
    assert torch.all((b_f >= 0) & (b_f <= torch.log(torch.tensor(99.0))))
    torch.testing.assert_close(b_i, -b_f)


def test_shapes_batch_first_and_default_state():
    layer = LSTMLayer(load_variant("no_output_gate"), 3, 6, impl="reference")
    out, (h, c) = layer(torch.randn(2, 5, 3))
    assert out.shape == (2, 5, 6) and h.shape == (2, 6) and c.shape == (2, 6)
    torch.testing.assert_close(out[:, -1], h)
    torch.testing.assert_close(h, torch.tanh(c))  # NOG: h = tanh(c) exactly
