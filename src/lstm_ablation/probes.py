"""Probes: gradient flow over time and gate statistics of any recurrent layer, on one fixed batch.

The case for the LSTM is an argument about the total derivative of the loss w.r.t. the state,

    dL/dh_t = (direct part through the readout at t) + dL/dh_{t+1} . dh_{t+1}/dh_t   (+ via c_{t+1})

In a tanh RNN the Jacobian product over T - t steps shrinks geometrically, so dL/dh_t vanishes for
early t (Hochreiter 1991; Bengio et al. 1994); the cell state c_t = f_t * c_{t-1} + ... carries it
when f is near 1. `out[:, t]` of a layer's forward is NOT this quantity: autograd w.r.t. it gives only
the direct readout part. So the probe re-runs the recurrence step by step, keeps every h_t / c_t the
later steps actually consume, and asks autograd for the gradient w.r.t. those tensors.

dL/dc_t is total as well: through c_{t+1} and through h_t = o_t * act_h(c_t), the delta_c of LSTM
backpropagation through time. Steps are indexed t = 0 .. T-1; h_t is the state after reading x_t
(torch's out[:, t]). |.| is the L2 norm over units of one sequence, averaged over the probe batch
(L is the batch-mean task loss, so absolute norms scale with 1/B; ratios over t do not). Ratios are taken
against step r, the last step the loss gradient reaches (T-1 unless the last steps carry no label, as in
associative recall; gradient_ratio.py). The summary number is
log10(|dL/dh_0| / |dL/dh_r|): about 0 means the gradient reaches the first step undiminished; -10 means it
arrives 10 orders of magnitude smaller.

Gate statistics cover the multiplicative sigmoid gates that exist: LSTM i, f, o (a coupled f = 1 - i
is reported; a removed gate is absent), GRU r, z; the tanh RNN has none. The candidate g (the block
input, Greff et al. 2017) is not a gate and has no saturation in this sense. The family of issue 13
reports the gates as the c update uses them: JANET's coupled i, minLSTM's normalised f' and i', and
sLSTM's stabilised i' = exp(i~ - m) and f' (both in (0, 1]); sLSTM's c is its stabilised c (c / n is
what h reads).

A Stack (model.num_layers > 1) is probed layer by layer: layer k re-runs on layer k-1's probed
outputs (no dropout: the probe is a deterministic measurement), and the gradient is taken w.r.t.
every layer's states at once. The record's top-level fields are the first layer's (what the report
plots); `layers` holds every layer's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .baselines import TorchRecurrent
from .gradient_ratio import ratios_to_last_reached
from .layer import LSTMLayer
from .stack import Stack

SAT_LOW, SAT_HIGH = 0.05, 0.95        # a gate below/above these is saturated: closed / open
HIST_EDGES = torch.linspace(0, 1, 21)  # gate histograms: 20 bins over [0, 1]


@dataclass
class Unrolled:
    h: list[Tensor]               # T x (B, H): the very tensors the later steps consume
    c: list[Tensor] | None        # T x (B, H); None where the layer has no cell state (rnn, gru)
    gates: dict[str, Tensor]      # gate name -> (T, B, H) activations, detached


# ---------------------------------------------------------------------------- step loops

def unroll_lstm_layer(layer: LSTMLayer, x: Tensor) -> Unrolled:
    """State updates come from layer.cell itself, so the gradient path is the layer's own equations
    (minLSTM too: its step-by-step loop, which equals the scan it trains with)."""
    state = layer.initial_state(x)
    xw = (x @ layer.weight_ih.t() + layer.bias).unbind(1)      # T x (B, G*H)
    hs, cs, gates = [], [], []
    for xw_t in xw:
        state, g = layer.cell(layer.preactivations(xw_t, state), state)
        hs.append(state[0])
        cs.append(state[1])
        gates.append({k: v.detach() for k, v in g.items()})
    return Unrolled(hs, cs, stack_gates(gates))


def torch_weights(module: nn.RNNBase) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,) of a single-layer unidirectional torch RNN."""
    if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
        raise ValueError("probes: only single-layer, unidirectional torch RNNs without proj_size")
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    zeros = w_ih.new_zeros(w_ih.shape[0])
    b_ih = module.bias_ih_l0 if module.bias else zeros
    b_hh = module.bias_hh_l0 if module.bias else zeros
    return w_ih, w_hh, b_ih, b_hh


def unroll_torch(module: nn.RNNBase, x: Tensor) -> Unrolled:
    """nn.RNN / nn.GRU / nn.LSTM (batch_first) re-run from their weights, in torch's gate order."""
    B, T, _ = x.shape
    w_ih, w_hh, b_ih, b_hh = torch_weights(module)
    H = module.hidden_size
    h = c = x.new_zeros(B, H)
    xw = (x @ w_ih.t() + b_ih).unbind(1)                        # T x (B, G*H)
    hs, cs, gates = [], [], []
    for t in range(T):
        hw = h @ w_hh.t() + b_hh                                # (B, G*H)
        if isinstance(module, nn.LSTM):                         # rows i, f, g, o
            i, f, g, o = (xw[t] + hw).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            cs.append(c)
            gates.append({"i": i.detach(), "f": f.detach(), "o": o.detach()})
        elif isinstance(module, nn.GRU):                        # rows r, z, n; b_hn stays inside r * (.)
            x_r, x_z, x_n = xw[t].chunk(3, dim=1)
            h_r, h_z, h_n = hw.chunk(3, dim=1)
            r, u = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            h = (1 - u) * n + u * h
            gates.append({"r": r.detach(), "z": u.detach()})
        elif isinstance(module, nn.RNN):
            pre = xw[t] + hw
            h = torch.tanh(pre) if module.nonlinearity == "tanh" else torch.relu(pre)
            gates.append({})
        else:
            raise TypeError(f"probes: unsupported torch module {type(module).__name__}")
        hs.append(h)
    return Unrolled(hs, cs if cs else None, stack_gates(gates))


def stack_gates(per_step: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """T x {name: (B, H)} -> {name: (T, B, H)}."""
    return {name: torch.stack([step[name] for step in per_step]) for name in per_step[0]} if per_step else {}


def unroll(layer: nn.Module, x: Tensor) -> Unrolled:
    """Any single recurrent layer of this project (LSTMLayer or a TorchRecurrent baseline) on x (B, T, I)."""
    if isinstance(layer, LSTMLayer):
        return unroll_lstm_layer(layer, x)
    if isinstance(layer, TorchRecurrent):
        return unroll_torch(layer.rnn, x)
    raise TypeError(f"probes: unsupported recurrent layer {type(layer).__name__}")


# ---------------------------------------------------------------------------- gradients

def gradient_flow(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Unrolled, Tensor, Tensor, Tensor | None]:
    """The model's task loss on (x, y) and its total gradient w.r.t. every state of its first layer.

    model: anything with .layer, .readout and .task (SequenceModel). Returns the unrolled states,
    the loss, dL/dh (T, B, H) and dL/dc (T, B, H) or None. No parameter's .grad is touched.
    """
    loss, layers = gradient_flow_layers(model, x, y)
    return layers[0][0], loss, layers[0][1], layers[0][2]


def gradient_flow_layers(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, list[tuple[Unrolled, Tensor, Tensor | None]]]:
    """gradient_flow for every layer of a Stack (one entry for a single layer): the loss and, per
    layer, (unrolled states, dL/dh (T, B, H), dL/dc (T, B, H) or None)."""
    layers = model.layer.layers if isinstance(model.layer, Stack) else [model.layer]
    with torch.enable_grad():
        unrolled, inp = [], x
        for layer in layers:
            unrolled.append(unroll(layer, inp))
            inp = torch.stack(unrolled[-1].h, dim=1)           # (B, T, H): the next layer's input
        pred = model.readout(inp[:, -1] if model.task.readout == "last" else inp)
        loss = model.task.loss(pred, y)
        states = [s for u in unrolled for s in u.h + (u.c or [])]
        grads = torch.autograd.grad(loss, states, allow_unused=True)
    grads = [torch.zeros_like(s) if g is None else g for s, g in zip(states, grads)]
    result, k = [], 0
    for u in unrolled:
        T, n = len(u.h), len(u.h) + len(u.c or [])
        mine = grads[k:k + n]
        k += n
        result.append((u, torch.stack(mine[:T]), torch.stack(mine[T:]) if u.c is not None else None))
    return loss.detach(), result


def per_step_norm(v: Tensor) -> Tensor:
    """(T, B, H) -> (T,): per-sequence L2 norm, mean over the batch (float64: tiny norms stay > 0)."""
    return torch.linalg.vector_norm(v.double(), dim=2).mean(dim=1)


def gate_stats(a: Tensor) -> dict[str, list[float]]:
    """a: (T, B, H) activations in [0, 1] -> per-t mean and saturated fractions, plus a histogram."""
    flat = a.reshape(a.shape[0], -1)                            # (T, B*H)
    hist = torch.histc(a, bins=len(HIST_EDGES) - 1, min=0.0, max=1.0)
    return {
        "mean": flat.mean(1).tolist(),
        "sat_low": (flat < SAT_LOW).float().mean(1).tolist(),
        "sat_high": (flat > SAT_HIGH).float().mean(1).tolist(),
        "hist": [int(n) for n in hist.tolist()],
    }


def probe(model: nn.Module, x: Tensor, y: Tensor) -> dict:
    """One probe of a model on a fixed batch: plain floats, ready for JSON.

    Keys: loss; grad_h, grad_h_ratio (T,) and grad_c, grad_c_ratio (T,) or None; cell_abs_mean,
    cell_abs_max (T,) or None; gates {name: {mean, sat_low, sat_high (T,), hist (20,)}};
    summary {grad_h_log10_ratio, grad_c_log10_ratio, cell_abs_max, gate_<g>_mean/_sat_low/_sat_high, loss}.
    These are the first layer's; a Stack adds `layers`, the same keys (but loss) for every layer.
    """
    loss, layers = gradient_flow_layers(model, x, y)
    records = [layer_record(float(loss), *layer) for layer in layers]
    if len(records) > 1:
        records[0]["layers"] = [{k: v for k, v in r.items() if k != "loss"} for r in records]
    return records[0]


def layer_record(loss: float, u: Unrolled, grad_h: Tensor, grad_c: Tensor | None) -> dict:
    record: dict = {"loss": loss}
    summary: dict = {"loss": loss}
    for name, grad in (("grad_h", grad_h), ("grad_c", grad_c)):
        if grad is None:
            record[name] = record[f"{name}_ratio"] = None
            continue
        norm = per_step_norm(grad).tolist()                     # (T,)
        record[name] = norm
        record[f"{name}_ratio"], summary[f"{name}_log10_ratio"] = ratios_to_last_reached(norm)
    if u.c is not None:
        c_abs = torch.stack(u.c).detach().abs()                 # (T, B, H); NOAF lets this grow without bound
        record["cell_abs_mean"] = c_abs.mean((1, 2)).tolist()
        record["cell_abs_max"] = c_abs.amax((1, 2)).tolist()
        summary["cell_abs_max"] = float(c_abs.max())
    else:
        record["cell_abs_mean"] = record["cell_abs_max"] = None
    record["gates"] = {name: gate_stats(a) for name, a in u.gates.items()}
    for name, stats in record["gates"].items():  # every t has B*H entries: the mean over t is the overall mean
        for key in ("mean", "sat_low", "sat_high"):
            summary[f"gate_{name}_{key}"] = sum(stats[key]) / len(stats[key])
    record["summary"] = summary
    return record
