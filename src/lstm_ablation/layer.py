"""LSTMLayer: one recurrent layer whose gates are given by a CellSpec.

Parameters (G = number of rows in spec.gates, e.g. 4 for vanilla: i, f, g, o):
    weight_ih  (G*H, I)   input weights W_x, rows stacked in nn.LSTM's order i, f, g, o
    weight_hh  (G*H, H)   recurrent weights W_h
    bias       (G*H,)     one bias per gate row (nn.LSTM's b_ih + b_hh folded into one)
    peephole   (P, H)     diagonal peephole weights, one row per learned sigmoid gate (if enabled)
A removed or coupled gate has no rows at all, so parameter counts show the ablation.

The reference path below is the equations, step by step. The fast path (lstm_ablation.fast)
computes the same numbers behind the same API.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .spec import CellSpec

ACTIVATION_FNS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda v: v}
IMPLS = ("auto", "reference", "fast")


class LSTMLayer(nn.Module):
    def __init__(self, spec: CellSpec, input_size: int, hidden_size: int, impl: str = "auto"):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl: got {impl!r}; allowed: {', '.join(IMPLS)}")
        self.spec, self.input_size, self.hidden_size, self.impl = spec, input_size, hidden_size, impl
        rows = len(spec.gates) * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias = nn.Parameter(torch.empty(rows))
        n_peep = len(spec.peephole_gates) if spec.peepholes else 0
        self.peephole = nn.Parameter(torch.empty(n_peep, hidden_size)) if n_peep else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = 1.0 / math.sqrt(self.hidden_size)  # nn.LSTM's init, so variants start alike
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)
        with torch.no_grad():
            gates = self.gate_slices()
            if "f" in gates:
                self.bias[gates["f"]].fill_(self.spec.forget_bias)
            if self.spec.input_bias is not None:  # spec guarantees the gate exists
                self.bias[gates["i"]].fill_(self.spec.input_bias)
            if self.spec.output_bias is not None:
                self.bias[gates["o"]].fill_(self.spec.output_bias)
            if self.spec.chrono_t_max:  # Tallec & Ollivier 2018
                b_f = torch.log(torch.empty(self.hidden_size).uniform_(1, self.spec.chrono_t_max - 1))
                self.bias[gates["f"]] = b_f
                if "i" in gates:
                    self.bias[gates["i"]] = -b_f

    def gate_slices(self) -> dict[str, slice]:
        H = self.hidden_size
        return {g: slice(n * H, (n + 1) * H) for n, g in enumerate(self.spec.gates)}

    def peephole_weights(self) -> dict[str, Tensor]:
        if self.peephole is None:
            return {}
        return dict(zip(self.spec.peephole_gates, self.peephole.unbind(0)))

    @classmethod
    def from_torch(cls, lstm: nn.LSTM) -> LSTMLayer:
        """Vanilla LSTMLayer with nn.LSTM's weights (single layer, unidirectional, no projection)."""
        if lstm.num_layers != 1 or lstm.bidirectional or lstm.proj_size:
            raise ValueError("from_torch: only single-layer, unidirectional nn.LSTM without proj_size")
        p = lstm.weight_ih_l0
        layer = cls(CellSpec(), lstm.input_size, lstm.hidden_size).to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            layer.weight_ih.copy_(lstm.weight_ih_l0)
            layer.weight_hh.copy_(lstm.weight_hh_l0)
            if lstm.bias:
                layer.bias.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
            else:
                layer.bias.zero_()
        return layer

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x: (B, T, I); state: (h0, c0), each (B, H). Returns out (B, T, H) and (h_T, c_T)."""
        B, T, _ = x.shape
        if state is None:
            zeros = x.new_zeros(B, self.hidden_size)
            state = (zeros, zeros)
        if self.impl != "reference":
            from . import fast

            if fast.usable(self, x):
                return fast.lstm_forward(self, x, state)
        return self.reference_forward(x, state)

    def reference_forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state
        # All input projections at once; unbind (not xw[t]) keeps backward linear in T.
        xw = torch.addmm(self.bias, x.reshape(-1, self.input_size), self.weight_ih.t())
        xw = xw.view(x.shape[0], x.shape[1], -1).unbind(1)  # T x (B, G*H)
        outputs = []
        for xw_t in xw:
            z = torch.addmm(xw_t, h, self.weight_hh.t())  # (B, G*H) gate pre-activations
            h, c = self.cell(z, c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)

    def cell(self, z: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the equations given the pre-activations z = W [h_{t-1}, x_t] + b."""
        spec, pre, peep = self.spec, {}, self.peephole_weights()
        for name, rows in self.gate_slices().items():
            pre[name] = z[:, rows]
        act_g, act_h = ACTIVATION_FNS[spec.candidate_activation], ACTIVATION_FNS[spec.output_activation]

        i = torch.sigmoid(pre["i"] + peep["i"] * c_prev if "i" in peep else pre["i"]) if "i" in pre else None
        if spec.forget_gate == "coupled":
            f = 1 - i
        elif "f" in pre:
            f = torch.sigmoid(pre["f"] + peep["f"] * c_prev if "f" in peep else pre["f"])
        else:
            f = None
        g = act_g(pre["g"])
        c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)
        o = torch.sigmoid(pre["o"] + peep["o"] * c if "o" in peep else pre["o"]) if "o" in pre else None
        h = act_h(c) if o is None else o * act_h(c)
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, gates={''.join(self.spec.gates)}, spec={self.spec}"
