"""The C++ fast path (lstm_ablation.fast) against the reference equations and nn.LSTM (issue 4)."""
from __future__ import annotations

import copy
import logging
import shutil

import pytest
import torch
from torch.func import functional_call

from lstm_ablation import fast
from lstm_ablation.layer import LSTMLayer
from lstm_ablation.spec import CellSpec

VARIANTS = {
    "vanilla": CellSpec(),
    "no_input_gate": CellSpec(input_gate="none"),
    "no_forget_gate": CellSpec(forget_gate="none"),
    "coupled_gates": CellSpec(forget_gate="coupled"),
    "no_output_gate": CellSpec(output_gate="none"),
    "sigmoid_candidate": CellSpec(candidate_activation="sigmoid"),
    "linear_candidate": CellSpec(candidate_activation="identity"),
    "sigmoid_output": CellSpec(output_activation="sigmoid"),
    "linear_output": CellSpec(output_activation="identity"),
    "no_gates": CellSpec(input_gate="none", forget_gate="none", output_gate="none"),
    "peephole": CellSpec(peepholes=True),
    "peephole_no_input_gate": CellSpec(peepholes=True, input_gate="none"),
    "peephole_no_forget_gate": CellSpec(peepholes=True, forget_gate="none"),
    "peephole_coupled_gates": CellSpec(peepholes=True, forget_gate="coupled"),
    "peephole_no_output_gate": CellSpec(peepholes=True, output_gate="none"),
    "peephole_forget_only": CellSpec(peepholes=True, input_gate="none", output_gate="none"),
    "peephole_linear_both": CellSpec(peepholes=True, candidate_activation="identity", output_activation="identity"),
    "peephole_sigmoid_both": CellSpec(peepholes=True, candidate_activation="sigmoid", output_activation="sigmoid"),
    # issue 13: JANET's coupled input gate with shift beta, CIFG shifted, gates reading x_t only
    "janet": CellSpec(input_gate="coupled", output_gate="none", output_activation="identity", coupling_shift=1.0),
    "janet_peephole": CellSpec(input_gate="coupled", output_gate="none", coupling_shift=-0.7, peepholes=True),
    "coupled_gates_shifted": CellSpec(forget_gate="coupled", coupling_shift=1.5, peepholes=True),
    "gates_read_input": CellSpec(gates_read="input"),
    "gates_read_input_peephole_nig": CellSpec(gates_read="input", input_gate="none", peepholes=True),
    # FGR (Greff et al. 2017): the learned sigmoid gates read the previous step's gates a (state h, c, a)
    "fgr": CellSpec(peepholes=True, gate_recurrence=True),  # conf/cell/fgr.yaml
    "fgr_no_peepholes": CellSpec(gate_recurrence=True),
    "fgr_coupled_gates": CellSpec(forget_gate="coupled", coupling_shift=0.5, peepholes=True, gate_recurrence=True),
    "fgr_no_output_gate": CellSpec(output_gate="none", gate_recurrence=True),
    "fgr_janet": CellSpec(input_gate="coupled", output_gate="none", output_activation="identity", coupling_shift=1.0,
                          gate_recurrence=True),
    "fgr_peephole_no_input_gate": CellSpec(input_gate="none", peepholes=True, gate_recurrence=True),
    "fgr_output_gate_only": CellSpec(input_gate="none", forget_gate="none", peepholes=True, gate_recurrence=True),
    "fgr_gates_read_input": CellSpec(gates_read="input", gate_recurrence=True),
}
FGR = [name for name, spec in VARIANTS.items() if spec.gate_recurrence]


@pytest.fixture(scope="module", autouse=True)
def built_extension():
    if fast.extension() is None:
        if shutil.which("c++") or shutil.which("g++"):
            pytest.fail(f"a compiler is installed but {fast._build_error}")
        pytest.skip(f"no C++ compiler: {fast._build_error}")


def uses_fast_path(out: torch.Tensor) -> bool:
    return type(out.grad_fn).__name__ == "LSTMFunctionBackward"


def make_layer(spec: CellSpec, I: int, H: int, dtype=torch.float32, seed: int = 0) -> LSTMLayer:
    torch.manual_seed(seed)
    layer = LSTMLayer(spec, I, H, impl="fast").to(dtype)
    with torch.no_grad():  # peepholes start at U(-k, k); make them large enough to matter
        if layer.peephole is not None:
            layer.peephole.uniform_(-0.5, 0.5)
    return layer


def inputs(B: int, T: int, I: int, H: int, dtype, with_state: bool = True, spec: CellSpec = VARIANTS["vanilla"]):
    """x and a state as spec.state_names lists it: h0, c0 and (FGR) a0, the previous gates, in (0, 1)."""
    x = torch.randn(B, T, I, dtype=dtype, requires_grad=True)
    if not with_state:
        return x, None
    h0 = torch.randn(B, H, dtype=dtype).mul(0.5).requires_grad_()
    c0 = torch.randn(B, H, dtype=dtype).requires_grad_()
    rest = {"a": lambda: torch.rand(B, len(spec.peephole_gates) * H, dtype=dtype).requires_grad_()}
    return x, (h0, c0, *(rest[n]() for n in spec.state_names[2:]))


def values_and_grads(layer: LSTMLayer, x, state, reference: bool):
    """out and the final state (h_T, c_T, ...), and the gradients of a loss touching all of them
    w.r.t. inputs, state and params."""
    run = layer.reference_forward if reference else layer.forward
    if reference and state is None:
        state = layer.initial_state(x)
    out, final = run(x, state)
    assert len(final) == len(layer.spec.state_names)
    gen = torch.Generator().manual_seed(123)  # the same upstream gradients for every path and dtype
    loss = sum((t * torch.randn(t.shape, generator=gen).to(t.dtype)).sum() for t in (out, *final))
    wrt = [x, *(state or ()), *layer.parameters()]
    wrt = [t for t in wrt if t.requires_grad]
    return (out, *final), torch.autograd.grad(loss, wrt)


def assert_fast_matches(layer, x, state, atol, reference=None):
    """Fast path on (layer, x, state) against the reference path of `reference` (default: the same
    layer and inputs). Tolerance: atol relative to each tensor's scale (max(1, max|ref|)), and rtol=atol."""
    values, grads = values_and_grads(layer, x, state, reference=False)
    assert uses_fast_path(values[0])
    ref_layer, ref_x, ref_state = reference or (layer, x, state)
    ref_values, ref_grads = values_and_grads(ref_layer, ref_x, ref_state, reference=True)
    assert len(values) == len(ref_values) and len(grads) == len(ref_grads)
    names = ["out", *(f"{n}_T" for n in layer.spec.state_names)]
    named = list(zip(names, values, ref_values))
    named += [(f"gradient {n}", a, b) for n, (a, b) in enumerate(zip(grads, ref_grads))]
    for name, a, b in named:
        assert a.shape == b.shape, name
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a.to(b.dtype), b, atol=atol * scale, rtol=atol, msg=lambda m: f"{name}: {m}")


def float64_copy(layer, x, state):
    leaf = lambda t: t.detach().double().requires_grad_()
    return copy.deepcopy(layer).double(), leaf(x), tuple(leaf(t) for t in state)


@pytest.mark.parametrize("name", VARIANTS)
def test_gradcheck_float64(name):
    """Every input: x, the whole state (FGR: a0 too) and every parameter (FGR: weight_gg too)."""
    layer = make_layer(VARIANTS[name], 3, 4, torch.float64)
    x, state = inputs(2, 5, 3, 4, torch.float64, spec=layer.spec)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    n_state = len(state)

    def run(x, *rest):
        state, params = rest[:n_state], rest[n_state:]
        out, final = functional_call(layer, dict(zip(names, params)), (x, state))
        assert uses_fast_path(out) and len(final) == n_state
        return out, *final

    assert torch.autograd.gradcheck(run, (x, *state, *params))


@pytest.mark.parametrize("name", VARIANTS)
def test_float32_matches_reference(name):
    """float32 fast path against the float64 reference: the float32 reference is itself off by
    up to ~3e-6 (relative to scale) at T=40 on the ungated variants, so it is no ground truth."""
    # With no gate at all c_t is a plain sum that outgrows tanh's float32 range within ~20 steps
    # (1 - tanh^2 cancels), for the reference path as much as for ours: shorter sequence there.
    T = 15 if name == "no_gates" else 40
    layer = make_layer(VARIANTS[name], 7, 37)  # H not a multiple of the vector width
    x, state = inputs(6, T, 7, 37, torch.float32, spec=layer.spec)
    assert_fast_matches(layer, x, state, atol=1e-5, reference=float64_copy(layer, x, state))


@pytest.mark.parametrize("name", ["vanilla", "coupled_gates", "peephole_no_output_gate", "linear_output", "janet",
                                  "gates_read_input", "fgr", "fgr_coupled_gates", "fgr_output_gate_only"])
@pytest.mark.parametrize("B,T,with_state", [(1, 1, True), (1, 1, False), (3, 1, True), (1, 9, False), (4, 9, False)])
def test_small_shapes_and_zero_state(name, B, T, with_state):
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    x, state = inputs(B, T, 3, 5, torch.float64, with_state, spec=layer.spec)
    assert_fast_matches(layer, x, state, atol=1e-12)


@pytest.mark.parametrize("name", ["vanilla", "linear_output", "janet", "fgr"])
def test_two_graphs_alive_at_once_keep_their_own_saved_tensors(name):
    """Forward twice (other batch size and length) before either backward, backward in reverse order:
    what backward reads (gates, c_t, act_h(c_t), the time-major h_t and FGR's a_t) must belong to its own call."""
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    (x1, s1), (x2, s2) = (inputs(B, T, 3, 5, torch.float64, spec=layer.spec) for B, T in ((2, 7), (4, 3)))
    runs = [layer(x1, s1), layer(x2, s2)]
    assert all(uses_fast_path(out) for out, _ in runs)
    loss = lambda out, final: out.sum() + sum(t.sum() for t in final)
    grads = [torch.autograd.grad(loss(*run), [x, *s, *layer.parameters()])
             for run, x, s in reversed(list(zip(runs, (x1, x2), (s1, s2))))]
    for (x, s), got in zip(((x2, s2), (x1, s1)), grads):
        want = torch.autograd.grad(loss(*layer.reference_forward(x, s)), [x, *s, *layer.parameters()])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["peephole", "fgr"])
def test_partial_losses(name):
    """Only one part of the final state, or only out, used: the other gradients arrive as None."""
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    x, state = inputs(2, 6, 3, 5, torch.float64, spec=layer.spec)
    picks = [lambda o, s, k=k: s[k].sum() for k in range(len(state))] + [lambda o, s: o[:, 2].sum()]
    for pick in picks:
        out, final = layer(x, state)
        assert uses_fast_path(out)
        grads = torch.autograd.grad(pick(out, final), [x, *state, *layer.parameters()])
        ref_grads = torch.autograd.grad(pick(*layer.reference_forward(x, state)), [x, *state, *layer.parameters()])
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["vanilla", "peephole_coupled_gates", "no_gates", "fgr", "fgr_janet"])
def test_no_grad(name):
    layer = make_layer(VARIANTS[name], 4, 9)
    x, state = inputs(3, 12, 4, 9, torch.float32, spec=layer.spec)
    with torch.no_grad():
        out, final = layer(x, state)
        ref_out, ref_final = layer.reference_forward(x, state)
    assert not out.requires_grad and out.grad_fn is None
    assert len(final) == len(ref_final) == len(layer.spec.state_names)
    for a, b in zip((out, *final), (ref_out, *ref_final)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", FGR)
def test_fgr_state_carries_the_gates(name):
    """FGR's state is (h, c, a): a non-zero a0 changes the first step, the returned a_T is the last
    step's learned sigmoid gates as the reference path returns them, and running a sequence in two
    halves (passing the state on) equals running it whole, gradients w.r.t. a0 and weight_gg included."""
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    x, (h0, c0, a0) = inputs(3, 8, 3, 5, torch.float64, spec=layer.spec)
    assert a0.shape == (3, len(layer.spec.peephole_gates) * 5) and a0.abs().min() > 0
    out, (h, c, a) = layer(x, (h0, c0, a0))
    ref_out, (ref_h, ref_c, ref_a) = layer.reference_forward(x, (h0, c0, a0))
    assert uses_fast_path(out)
    torch.testing.assert_close(a, ref_a, atol=1e-12, rtol=0)
    assert ((a > 0) & (a < 1)).all()  # sigmoid gates
    zero_a0, _ = layer(x, (h0, c0, torch.zeros_like(a0)))
    assert not torch.allclose(zero_a0[:, 0], out[:, 0])  # a0 reaches the first step's gates
    first, state = layer(x[:, :5], (h0, c0, a0))
    second, (h2, c2, a2) = layer(x[:, 5:], state)
    for got, want in ((torch.cat([first, second], 1), out), (h2, h), (c2, c), (a2, a)):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    wrt = [a0, layer.weight_gg, x]
    loss = lambda o, s: (o ** 2).sum() + (s[2] * torch.linspace(-1, 1, s[2].shape[1], dtype=s[2].dtype)).sum()
    got = torch.autograd.grad(loss(torch.cat([first, second], 1), (h2, c2, a2)), wrt)
    want = torch.autograd.grad(loss(ref_out, (ref_h, ref_c, ref_a)), wrt)
    for g, w in zip(got, want):
        assert g.abs().max() > 0
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-10)


def test_vanilla_matches_nn_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 32, batch_first=True)
    layer = LSTMLayer.from_torch(lstm)
    layer.impl = "fast"
    x = torch.randn(5, 30, 6, requires_grad=True)
    h0, c0 = torch.randn(1, 5, 32), torch.randn(1, 5, 32)
    out, (h, c) = layer(x, (h0[0], c0[0]))
    assert uses_fast_path(out)
    ref_out, (ref_h, ref_c) = lstm(x, (h0, c0))
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, ref_h[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(c, ref_c[0], atol=1e-5, rtol=0)
    dx, dw_ih, dw_hh, db = torch.autograd.grad(out.sum() + c.sum(), [x, layer.weight_ih, layer.weight_hh, layer.bias])
    ref = torch.autograd.grad(ref_out.sum() + ref_c.sum(), [x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0])
    for a, b in zip([dx, dw_ih, dw_hh, db], ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_impl_switch():
    x, state = inputs(2, 4, 3, 5, torch.float32)
    layer = make_layer(VARIANTS["vanilla"], 3, 5)
    for impl, fast_expected in [("fast", True), ("auto", True), ("reference", False)]:
        layer.impl = impl
        out, _ = layer(x, state)
        assert uses_fast_path(out) == fast_expected, impl


def test_fallback_when_the_build_fails(monkeypatch, caplog):
    def no_compiler():
        raise RuntimeError("Error building extension 'lstm_ablation_fast'\nmore lines")

    monkeypatch.setattr(fast, "_load", no_compiler)
    monkeypatch.setattr(fast, "_ext", None)
    monkeypatch.setattr(fast, "_build_error", None)
    monkeypatch.setattr(fast, "_logged", set())
    layer = make_layer(VARIANTS["peephole"], 3, 5)
    x, state = inputs(2, 4, 3, 5, torch.float32)
    with caplog.at_level(logging.WARNING, logger="lstm_ablation.fast"):
        layer.impl = "auto"
        for _ in range(3):
            out, (h, c) = layer(x, state)
            assert not uses_fast_path(out)
            ref_out, _ = layer.reference_forward(x, state)
            torch.testing.assert_close(out, ref_out, atol=0, rtol=0)
    lines = [r.getMessage() for r in caplog.records if r.name == "lstm_ablation.fast"]
    assert len(lines) == 1 and "reference" in lines[0] and "did not build" in lines[0] and "\n" not in lines[0]
    layer.impl = "fast"
    with pytest.raises(RuntimeError, match=r"impl='fast'.*did not build"):
        layer(x, state)


def test_fast_refuses_unsupported_input():
    layer = make_layer(VARIANTS["vanilla"], 3, 5)
    x = torch.randn(2, 4, 3, dtype=torch.float64)  # weights are float32
    with pytest.raises(RuntimeError, match="impl='fast'"):
        layer(x)
