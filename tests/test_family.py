"""The wider family (issue 13): FGR, JANET, sLSTM, minLSTM and gates_read against their papers'
equations written out by hand (float64, random shapes: outputs, final states and gradients)."""
import math

import pytest
import torch

from lstm_ablation import CellSpec, ConfigError, LSTMLayer, load_variant

DT = torch.float64


def random_layer(spec: CellSpec, I: int, H: int, seed: int = 0, scale: float = 0.8) -> LSTMLayer:
    torch.manual_seed(seed)
    layer = LSTMLayer(spec, I, H, impl="reference").double()
    with torch.no_grad():  # large enough that a wrong sign or a missing term shows
        for p in layer.parameters():
            p.uniform_(-scale, scale)
    return layer


def rows(layer: LSTMLayer, gate: str):
    """W_x, W_h (None if the gate does not read h), b of one gate."""
    H = layer.hidden_size
    s = layer.gate_slices()[gate]
    rec = layer.spec.recurrent_gates
    w_h = layer.weight_hh[rec.index(gate) * H:(rec.index(gate) + 1) * H] if gate in rec else None
    return layer.weight_ih[s], w_h, layer.bias[s]


def pre(layer, gate, x_t, h):
    w_x, w_h, b = rows(layer, gate)
    return x_t @ w_x.T + b + (h @ w_h.T if w_h is not None else 0)


def compare(layer, x, state, ref_out, ref_state):
    out, got_state = layer(x, state)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-11)
    assert len(got_state) == len(ref_state)
    for a, b in zip(got_state, ref_state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)
    params = [p for p in layer.parameters() if p.numel()]  # minLSTM's W_hh has no rows
    loss = lambda o, s: (o ** 2).sum() + sum((t * (k + 1)).sum() for k, t in enumerate(s))
    ga = torch.autograd.grad(loss(out, got_state), params)
    gb = torch.autograd.grad(loss(ref_out, ref_state), params)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------- FGR

def test_fgr_matches_greffs_equations():
    """Greff et al. 2017 FGR (as in lstm-odyssey's fgr.py): on top of V (peepholes), each gate also
    reads i_{t-1}, f_{t-1}, o_{t-1} through its own H x H matrix: nine of them."""
    spec = load_variant("fgr")
    assert spec.gate_recurrence and spec.peepholes
    I, H = 3, 5
    layer = random_layer(spec, I, H)
    assert layer.weight_gg.shape == (3 * H, 3 * H)
    R = {(to, frm): layer.weight_gg[a * H:(a + 1) * H, b * H:(b + 1) * H]
         for a, to in enumerate("ifo") for b, frm in enumerate("ifo")}
    p = dict(zip("ifo", layer.peephole))
    x = torch.randn(2, 6, I, dtype=DT)
    h, c = torch.randn(2, H, dtype=DT), torch.randn(2, H, dtype=DT)
    gates_prev = {g: torch.rand(2, H, dtype=DT) for g in "ifo"}
    state = (h, c, torch.cat([gates_prev[g] for g in "ifo"], 1))
    outs = []
    for x_t in x.unbind(1):
        rec = {g: sum(gates_prev[k] @ R[(g, k)].T for k in "ifo") for g in "ifo"}
        i = torch.sigmoid(pre(layer, "i", x_t, h) + rec["i"] + p["i"] * c)
        f = torch.sigmoid(pre(layer, "f", x_t, h) + rec["f"] + p["f"] * c)
        c = f * c + i * torch.tanh(pre(layer, "g", x_t, h))
        o = torch.sigmoid(pre(layer, "o", x_t, h) + rec["o"] + p["o"] * c)
        h = o * torch.tanh(c)
        gates_prev = {"i": i, "f": f, "o": o}
        outs.append(h)
    compare(layer, x, state, torch.stack(outs, 1), (h, c, torch.cat([gates_prev[g] for g in "ifo"], 1)))


# ---------------------------------------------------------------------------- JANET

def janet_equations(layer, x, h, c, beta):
    """van der Westhuizen & Lasenby 2018: s = U_f h + W_f x + b_f; c = sigma(s) c + (1 - sigma(s - beta)) tanh(...); h = c."""
    outs = []
    for x_t in x.unbind(1):
        s = pre(layer, "f", x_t, h)
        c = torch.sigmoid(s) * c + (1 - torch.sigmoid(s - beta)) * torch.tanh(pre(layer, "g", x_t, h))
        h = c
        outs.append(h)
    return torch.stack(outs, 1), (h, c)


def test_janet_matches_its_equations_and_chrono_init():
    spec = load_variant("janet")
    assert spec.gates == ("f", "g") and spec.coupling_shift == 1.0 and spec.chrono_t_max == 100
    layer = random_layer(spec, 3, 6)
    x = torch.randn(3, 7, 3, dtype=DT)
    state = (torch.randn(3, 6, dtype=DT), torch.randn(3, 6, dtype=DT))
    compare(layer, x, state, *janet_equations(layer, x, *state, beta=1.0))
    fresh = LSTMLayer(spec, 3, 6)  # chrono: b_f = log U[1, T_max - 1], no input gate to set
    b_f = fresh.bias[fresh.gate_slices()["f"]]
    assert torch.all((b_f >= 0) & (b_f <= math.log(99)))


def test_janet_with_beta_0_is_the_coupled_nog_identity_cell():
    """beta = 0: i = 1 - sigma(s_f) = sigma(-s_f), so JANET is CIFG (f = 1 - i) without output gate
    and with h = c, with the input gate's weights the negated forget weights."""
    janet = random_layer(load_variant("janet").replace(coupling_shift=0.0, chrono_t_max=0), 3, 5)
    cifg = random_layer(CellSpec(forget_gate="coupled", output_gate="none", output_activation="identity"), 3, 5)
    H = 5
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias"):
            j, k = getattr(janet, name), getattr(cifg, name)
            k[:H] = -j[:H]      # cifg rows i, g <- janet rows -f, g
            k[H:] = j[H:]
    x = torch.randn(2, 9, 3, dtype=DT)
    out_j, (h_j, c_j) = janet(x)
    out_k, (h_k, c_k) = cifg(x)
    torch.testing.assert_close(out_j, out_k, rtol=0, atol=1e-14)
    torch.testing.assert_close(c_j, c_k, rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------- sLSTM

def slstm_stabilised(layer, x, state):
    """Beck et al. 2024, App. A (sLSTM forward pass with the stabiliser state m), exp input gate,
    sigmoid or exp forget gate, written out with the paper's names."""
    h, c, n, m = state
    outs = []
    for x_t in x.unbind(1):
        i_tilde, f_tilde = pre(layer, "i", x_t, h), pre(layer, "f", x_t, h)
        z = torch.tanh(pre(layer, "g", x_t, h))
        o = torch.sigmoid(pre(layer, "o", x_t, h))
        log_f = f_tilde if layer.spec.forget_gate_activation == "exp" else torch.log(torch.sigmoid(f_tilde))
        m_new = torch.where(n == 0, i_tilde, torch.maximum(log_f + m, i_tilde))
        i_s = torch.exp(i_tilde - m_new)
        f_s = torch.where(n == 0, torch.zeros_like(m), torch.exp(log_f + m - m_new))
        c, n, m = f_s * c + i_s * z, f_s * n + i_s, m_new
        h = o * (c / n)
        outs.append(h)
    return torch.stack(outs, 1), (h, c, n, m)


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
def test_slstm_matches_its_equations(forget):
    spec = load_variant("slstm").replace(forget_gate_activation=forget)
    assert spec.state_names == ("h", "c", "n", "m")
    layer = random_layer(spec, 4, 5)
    x = torch.randn(3, 8, 4, dtype=DT)
    zeros = tuple(torch.zeros(3, 5, dtype=DT) for _ in range(4))
    compare(layer, x, zeros, *slstm_stabilised(layer, x, zeros))
    # a carried-over state (n > 0) continues the same sequence
    _, mid = layer(x[:, :4], zeros)
    out_b, end_b = layer(x[:, 4:], mid)
    out_all, end_all = layer(x, zeros)
    torch.testing.assert_close(out_b, out_all[:, 4:], rtol=0, atol=1e-12)
    for a, b in zip(end_b, end_all):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
def test_slstm_equals_its_unstabilised_form(forget):
    """Without m: c = f c + exp(i~) z, n = f n + exp(i~), h = o c / n; equal where nothing overflows."""
    layer = random_layer(load_variant("slstm").replace(forget_gate_activation=forget), 3, 4, scale=0.5)
    x = torch.randn(2, 10, 3, dtype=DT)
    out, (h, c, n, m) = layer(x)
    hh = cc = nn_ = torch.zeros(2, 4, dtype=DT)
    outs = []
    for x_t in x.unbind(1):
        f_tilde = pre(layer, "f", x_t, hh)
        f = torch.exp(f_tilde) if forget == "exp" else torch.sigmoid(f_tilde)
        i = torch.exp(pre(layer, "i", x_t, hh))
        cc = f * cc + i * torch.tanh(pre(layer, "g", x_t, hh))
        nn_ = f * nn_ + i
        hh = torch.sigmoid(pre(layer, "o", x_t, hh)) * cc / nn_
        outs.append(hh)
    torch.testing.assert_close(out, torch.stack(outs, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(c * torch.exp(m), cc, rtol=1e-12, atol=0)   # the stored c, n are scaled by exp(-m)
    torch.testing.assert_close(n * torch.exp(m), nn_, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
def test_slstm_stays_finite_at_extreme_preactivations(forget, dtype):
    """Pre-activations of +-100 (exp(100) overflows float32; exp(200) is what the naive i/f product
    reaches): outputs, states and gradients stay finite, and n >= 1."""
    layer = LSTMLayer(load_variant("slstm").replace(forget_gate_activation=forget), 2, 4, impl="reference").to(dtype)
    with torch.no_grad():
        layer.weight_hh.zero_()
        layer.weight_ih.zero_()
        layer.weight_ih[:, 0] = 1.0
        layer.bias.zero_()
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=dtype)  # a sequence of +-100 pre-activations
    x = torch.stack([100 * signs, torch.zeros(6, dtype=dtype)], dim=1).expand(3, 6, 2).clone().requires_grad_()
    with torch.no_grad():  # i~ = -f~ (the worst case for the plain product): row blocks i, f
        layer.weight_ih[4:8, 0] = -1.0
    out, (h, c, n, m) = layer(x)
    assert all(torch.isfinite(t).all() for t in (out, h, c, n, m))
    assert torch.all(n >= 1 - 1e-6)
    grads = torch.autograd.grad(out.sum() + h.sum(), [x, *layer.parameters()])
    assert all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------------- minLSTM

def minlstm_loop(layer, x, h):
    """Feng et al. 2024, minLSTM: f, i, h~ from x_t only; f' = f / (f + i), i' = i / (f + i); h_t = f' h + i' h~."""
    outs = []
    for x_t in x.unbind(1):
        f = torch.sigmoid(pre(layer, "f", x_t, None))
        i = torch.sigmoid(pre(layer, "i", x_t, None))
        h = f / (f + i) * h + i / (f + i) * pre(layer, "g", x_t, None)
        outs.append(h)
    return torch.stack(outs, 1), (h, h)


def test_minlstm_matches_its_equations_and_scan_equals_loop(monkeypatch):
    spec = load_variant("minlstm")
    assert spec.parallel_scan and spec.recurrent_gates == ()
    layer = random_layer(spec, 3, 6, scale=1.5)
    assert layer.weight_hh.numel() == 0
    x = torch.randn(4, 50, 3, dtype=DT)
    h0 = torch.randn(4, 6, dtype=DT)
    compare(layer, x, (h0, h0), *minlstm_loop(layer, x, h0))   # impl reference: the step-by-step loop
    layer.impl = "auto"                                          # the parallel scan, never the loop
    monkeypatch.setattr(layer, "reference_forward", None)
    compare(layer, x, (h0, h0), *minlstm_loop(layer, x, h0))


@pytest.mark.parametrize("spec", [
    CellSpec(gates_read="input", candidate_read="input"),                                   # with output gate
    CellSpec(gates_read="input", candidate_read="input", forget_gate="coupled", coupling_shift=0.5),
    CellSpec(gates_read="input", candidate_read="input", input_gate="coupled", output_gate="none"),
    CellSpec(gates_read="input", candidate_read="input", forget_gate="none"),
])
def test_scan_equals_loop_for_every_linear_cell(spec):
    layer = random_layer(spec, 2, 5, scale=2.0)
    x = torch.randn(3, 40, 2, dtype=DT)
    state = (torch.randn(3, 5, dtype=DT), torch.randn(3, 5, dtype=DT))
    out, (h, c) = layer.reference_forward(x, state)
    layer.impl = "auto"
    compare(layer, x, state, out, (h, c))


def test_scan_float32_over_a_long_sequence():
    """T = 2000 with strong decay (log A_t ~ -10^3): the float32 scan keeps the loop's digits."""
    layer = LSTMLayer(load_variant("minlstm"), 2, 8)
    x = torch.randn(2, 2000, 2)
    out, (h, c) = layer(x)
    ref_out, _ = layer.reference_forward(x, layer.initial_state(x))
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- gates_read

def test_gates_read_input_matches_equations():
    """gates_read: input: i, f, o see x_t only; g still reads h_{t-1}. W_hh keeps only g's rows."""
    spec = CellSpec(gates_read="input", peepholes=True)
    I, H = 3, 4
    layer = random_layer(spec, I, H)
    assert layer.weight_hh.shape == (H, H)
    p = dict(zip("ifo", layer.peephole))
    x = torch.randn(2, 6, I, dtype=DT)
    h, c = torch.randn(2, H, dtype=DT), torch.randn(2, H, dtype=DT)
    state, outs = (h, c), []
    for x_t in x.unbind(1):
        w_x = {g: rows(layer, g) for g in "ifgo"}
        assert all(w_x[g][1] is None for g in "ifo")
        i = torch.sigmoid(x_t @ w_x["i"][0].T + w_x["i"][2] + p["i"] * c)
        f = torch.sigmoid(x_t @ w_x["f"][0].T + w_x["f"][2] + p["f"] * c)
        c = f * c + i * torch.tanh(pre(layer, "g", x_t, h))
        o = torch.sigmoid(x_t @ w_x["o"][0].T + w_x["o"][2] + p["o"] * c)
        h = o * torch.tanh(c)
        outs.append(h)
    compare(layer, x, state, torch.stack(outs, 1), (h, c))


# ---------------------------------------------------------------------------- the spec

@pytest.mark.parametrize("changes,field", [
    ({"input_gate": "coupled", "forget_gate": "none"}, "cell.input_gate"),
    ({"coupling_shift": 1.0}, "cell.coupling_shift"),
    ({"coupling_shift": float("nan"), "forget_gate": "coupled"}, "cell.coupling_shift"),
    ({"input_gate_activation": "exp", "forget_gate": "coupled"}, "cell.input_gate_activation"),
    ({"input_gate_activation": "exp", "peepholes": True}, "cell.peepholes"),
    ({"forget_gate_activation": "exp"}, "cell.forget_gate_activation"),
    ({"input_gate_activation": "relu"}, "cell.input_gate_activation"),
    ({"gates_read": "hidden"}, "cell.gates_read"),
    ({"normalised_gates": True, "forget_gate": "none"}, "cell.normalised_gates"),
    ({"gate_recurrence": True, "input_gate_activation": "exp"}, "cell.gate_recurrence"),
    ({"gate_recurrence": "yes"}, "cell.gate_recurrence"),
])
def test_impossible_family_specs_are_refused(changes, field):
    with pytest.raises(ConfigError) as err:
        CellSpec(**changes)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_state_names_keep_the_classic_api():
    assert CellSpec().state_names == ("h", "c")
    assert load_variant("janet").state_names == ("h", "c")
    assert load_variant("minlstm").state_names == ("h", "c")
    assert load_variant("fgr").state_names == ("h", "c", "a")
    x = torch.randn(2, 3, 2)
    for name in ("fgr", "slstm"):
        layer = LSTMLayer(load_variant(name), 2, 4)
        out, state = layer(x)
        assert len(state) == len(layer.spec.state_names) and torch.equal(state[0], out[:, -1])


def test_scan_stays_finite_at_extreme_preactivations():
    """Gate pre-activations of +-100 (f' down to e^-200) in float32: finite, and equal to the loop."""
    layer = LSTMLayer(load_variant("minlstm"), 1, 3)
    with torch.no_grad():
        layer.weight_ih.copy_(torch.tensor([[100.0], [-100.0], [1.0]]).repeat_interleave(3, 0))
        layer.bias.zero_()
    x = torch.randn(2, 300, 1).sign().requires_grad_()   # +-1: f' and i' swing between 1 and e^-200
    out, _ = layer(x)
    ref, _ = layer.reference_forward(x, layer.initial_state(x))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(out.sum(), [x, layer.weight_ih]))
