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
}


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


def inputs(B: int, T: int, I: int, H: int, dtype, with_state: bool = True):
    x = torch.randn(B, T, I, dtype=dtype, requires_grad=True)
    if not with_state:
        return x, None
    h0 = torch.randn(B, H, dtype=dtype).mul(0.5).requires_grad_()
    c0 = torch.randn(B, H, dtype=dtype).requires_grad_()
    return x, (h0, c0)


def values_and_grads(layer: LSTMLayer, x, state, reference: bool):
    """out, h_T, c_T and the gradients of a loss touching all three w.r.t. inputs, state and params."""
    run = layer.reference_forward if reference else layer.forward
    if reference and state is None:
        zeros = x.new_zeros(x.shape[0], layer.hidden_size)
        state = (zeros, zeros)
    out, (h, c) = run(x, state)
    gen = torch.Generator().manual_seed(123)  # the same upstream gradients for every path and dtype
    loss = sum((t * torch.randn(t.shape, generator=gen).to(t.dtype)).sum() for t in (out, h, c))
    wrt = [x, *(state or ()), *layer.parameters()]
    wrt = [t for t in wrt if t.requires_grad]
    return (out, h, c), torch.autograd.grad(loss, wrt)


def assert_fast_matches(layer, x, state, atol, reference=None):
    """Fast path on (layer, x, state) against the reference path of `reference` (default: the same
    layer and inputs). Tolerance: atol relative to each tensor's scale (max(1, max|ref|)), and rtol=atol."""
    (out, h, c), grads = values_and_grads(layer, x, state, reference=False)
    assert uses_fast_path(out)
    ref_layer, ref_x, ref_state = reference or (layer, x, state)
    (ref_out, ref_h, ref_c), ref_grads = values_and_grads(ref_layer, ref_x, ref_state, reference=True)
    assert len(grads) == len(ref_grads)
    named = [("out", out, ref_out), ("h_T", h, ref_h), ("c_T", c, ref_c)]
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
    layer = make_layer(VARIANTS[name], 3, 4, torch.float64)
    x, (h0, c0) = inputs(2, 5, 3, 4, torch.float64)
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def run(x, h0, c0, *params):
        out, (h, c) = functional_call(layer, dict(zip(names, params)), (x, (h0, c0)))
        assert uses_fast_path(out)
        return out, h, c

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params))


@pytest.mark.parametrize("name", VARIANTS)
def test_float32_matches_reference(name):
    """float32 fast path against the float64 reference: the float32 reference is itself off by
    up to ~3e-6 (relative to scale) at T=40 on the ungated variants, so it is no ground truth."""
    # With no gate at all c_t is a plain sum that outgrows tanh's float32 range within ~20 steps
    # (1 - tanh^2 cancels), for the reference path as much as for ours: shorter sequence there.
    T = 15 if name == "no_gates" else 40
    layer = make_layer(VARIANTS[name], 7, 37)  # H not a multiple of the vector width
    x, state = inputs(6, T, 7, 37, torch.float32)
    assert_fast_matches(layer, x, state, atol=1e-5, reference=float64_copy(layer, x, state))


@pytest.mark.parametrize("name", ["vanilla", "coupled_gates", "peephole_no_output_gate", "linear_output", "janet",
                                  "gates_read_input"])
@pytest.mark.parametrize("B,T,with_state", [(1, 1, True), (1, 1, False), (3, 1, True), (1, 9, False), (4, 9, False)])
def test_small_shapes_and_zero_state(name, B, T, with_state):
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    x, state = inputs(B, T, 3, 5, torch.float64, with_state)
    assert_fast_matches(layer, x, state, atol=1e-12)


@pytest.mark.parametrize("name", ["vanilla", "linear_output", "janet"])
def test_two_graphs_alive_at_once_keep_their_own_saved_tensors(name):
    """Forward twice (other batch size and length) before either backward, backward in reverse order:
    what backward reads (gates, c_t, act_h(c_t), the time-major h_t) must belong to its own call."""
    layer = make_layer(VARIANTS[name], 3, 5, torch.float64)
    (x1, s1), (x2, s2) = inputs(2, 7, 3, 5, torch.float64), inputs(4, 3, 3, 5, torch.float64)
    runs = [layer(x1, s1), layer(x2, s2)]
    assert all(uses_fast_path(out) for out, _ in runs)
    grads = [torch.autograd.grad(out.sum() + h.sum() + c.sum(), [x, *s, *layer.parameters()])
             for (out, (h, c)), x, s in reversed(list(zip(runs, (x1, x2), (s1, s2))))]
    for (x, s), got in zip(((x2, s2), (x1, s1)), grads):
        out, (h, c) = layer.reference_forward(x, s)
        want = torch.autograd.grad(out.sum() + h.sum() + c.sum(), [x, *s, *layer.parameters()])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_partial_losses():
    """Only c_T, only h_T or only out used: the other gradients arrive as None."""
    layer = make_layer(VARIANTS["peephole"], 3, 5, torch.float64)
    x, (h0, c0) = inputs(2, 6, 3, 5, torch.float64)
    for pick in (lambda o, h, c: c.sum(), lambda o, h, c: h.sum(), lambda o, h, c: o[:, 2].sum()):
        out, (h, c) = layer(x, (h0, c0))
        assert uses_fast_path(out)
        grads = torch.autograd.grad(pick(out, h, c), [x, h0, c0, *layer.parameters()])
        ref_out, (ref_h, ref_c) = layer.reference_forward(x, (h0, c0))
        ref_grads = torch.autograd.grad(pick(ref_out, ref_h, ref_c), [x, h0, c0, *layer.parameters()])
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["vanilla", "peephole_coupled_gates", "no_gates"])
def test_no_grad(name):
    layer = make_layer(VARIANTS[name], 4, 9)
    x, state = inputs(3, 12, 4, 9, torch.float32)
    with torch.no_grad():
        out, (h, c) = layer(x, state)
        ref_out, (ref_h, ref_c) = layer.reference_forward(x, state)
    assert not out.requires_grad and out.grad_fn is None
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, ref_c, atol=1e-6, rtol=0)


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
