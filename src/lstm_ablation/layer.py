"""LSTMLayer: one recurrent layer whose gates are given by a CellSpec.

Parameters (G = number of rows in spec.gates, e.g. 4 for vanilla: i, f, g, o):
    weight_ih  (G*H, I)   input weights W_x, rows stacked in nn.LSTM's order i, f, g, o
    weight_hh  (R*H, H)   recurrent weights W_h, rows of the R gates that read h (spec.recurrent_gates;
                          R = G unless gates_read / candidate_read is `input`)
    bias       (G*H,)     one bias per gate row (nn.LSTM's b_ih + b_hh folded into one)
    peephole   (P, H)     diagonal peephole weights, one row per learned sigmoid gate (if enabled)
    weight_gg  (P*H, P*H) FGR only: the P learned sigmoid gates' pre-activations read the previous
                          step's P gates (P = 3 for i, f, o: the paper's nine H x H matrices)
A removed or coupled gate has no rows at all, so parameter counts show the ablation.

The state is a tuple named by spec.state_names: (h, c) for the classic cell, so `out, (h, c) =
layer(x)` holds for every cell without exponential gating or FGR; sLSTM returns (h, c, n, m)
(c and n scaled by exp(-m): c / n and h are the unscaled quantities), FGR (h, c, a) with a the
last step's gates. Pass the same tuple back in to continue a sequence.

The reference path below is the equations, step by step. The fast path (lstm_ablation.fast)
computes the same numbers behind the same API; a cell whose recurrence is linear in c with
coefficients from x_t alone (minLSTM, spec.parallel_scan) trains through `scan_forward` instead.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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
        self.weight_hh = nn.Parameter(torch.empty(len(spec.recurrent_gates) * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(rows))
        n_peep = len(spec.peephole_gates) if spec.peepholes else 0
        self.peephole = nn.Parameter(torch.empty(n_peep, hidden_size)) if n_peep else None
        n_fgr = len(spec.peephole_gates) * hidden_size if spec.gate_recurrence else 0
        self.weight_gg = nn.Parameter(torch.empty(n_fgr, n_fgr)) if n_fgr else None
        # Columns of z that h_{t-1} W_hh^T (and FGR's a_{t-1} W_gg^T) add to: one index_add per step.
        self.register_buffer("recurrent_columns", self.columns(spec.recurrent_gates), persistent=False)
        self.register_buffer("gate_columns", self.columns(spec.peephole_gates), persistent=False)
        self.reset_parameters()

    def columns(self, gates: tuple[str, ...]) -> Tensor:
        slices = self.gate_slices()
        return torch.cat([torch.arange(slices[g].start, slices[g].stop) for g in gates] or [torch.zeros(0, dtype=torch.long)])

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

    def initial_state(self, x: Tensor) -> tuple[Tensor, ...]:
        """Zeros for every entry of spec.state_names: (B, H) each, FGR's a (B, P*H)."""
        zeros = x.new_zeros(x.shape[0], self.hidden_size)
        return tuple(x.new_zeros(x.shape[0], self.weight_gg.shape[0]) if n == "a" else zeros for n in self.spec.state_names)

    def forward(self, x: Tensor, state: tuple[Tensor, ...] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """x: (B, T, I); state: (h0, c0, ...) as in spec.state_names, each (B, H).
        Returns out (B, T, H) and the final state, (h_T, c_T) for the classic cell."""
        if state is None:
            state = self.initial_state(x)
        if len(state) != len(self.spec.state_names):
            raise ValueError(f"state: this cell's state is ({', '.join(self.spec.state_names)}); got {len(state)} tensors")
        if self.impl != "reference":
            if self.spec.parallel_scan:
                return self.scan_forward(x, state)
            from . import fast

            if fast.usable(self, x):
                return fast.lstm_forward(self, x, state)
        return self.reference_forward(x, state)

    def reference_forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        # All input projections at once; unbind (not xw[t]) keeps backward linear in T.
        xw = torch.addmm(self.bias, x.reshape(-1, self.input_size), self.weight_ih.t())
        xw = xw.view(x.shape[0], x.shape[1], -1).unbind(1)  # T x (B, G*H)
        outputs = []
        for xw_t in xw:
            state, _ = self.cell(self.preactivations(xw_t, state), state)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), tuple(state)

    def preactivations(self, xw_t: Tensor, state: tuple[Tensor, ...]) -> Tensor:
        """z = W_x x_t + b (given as xw_t, (B, G*H)) plus what reads the previous step: W_h h_{t-1}
        on the recurrent rows, and for FGR W_gg a_{t-1}."""
        if len(self.recurrent_columns) == xw_t.shape[1]:
            z = torch.addmm(xw_t, state[0], self.weight_hh.t())
        elif len(self.recurrent_columns):
            z = xw_t.index_add(1, self.recurrent_columns, state[0] @ self.weight_hh.t())
        else:
            z = xw_t
        if self.weight_gg is not None:
            z = z.index_add(1, self.gate_columns, state[-1] @ self.weight_gg.t())
        return z

    def cell(self, z: Tensor, state: tuple[Tensor, ...]) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """One step of the equations given the pre-activations z (B, G*H) and the previous state.
        Returns the new state and the gates as the c update uses them ({i, f, o} where they exist)."""
        spec, pre, peep = self.spec, {}, self.peephole_weights()
        for name, rows in self.gate_slices().items():
            pre[name] = z[:, rows]
        act_g, act_h = ACTIVATION_FNS[spec.candidate_activation], ACTIVATION_FNS[spec.output_activation]
        c_prev = state[1]
        if spec.input_gate_activation == "exp":
            return self.exp_cell(pre, state, act_g, act_h)

        def gate(name: str, shift: float = 0.0) -> Tensor:  # sigma(s - shift), peephole on c_{t-1}
            return torch.sigmoid((pre[name] + peep[name] * c_prev if name in peep else pre[name]) - shift)

        i = gate("i") if "i" in pre else None
        f = gate("f") if "f" in pre else None
        if spec.forget_gate == "coupled":  # CIFG: f = 1 - i at shift 0
            f = 1 - gate("i", spec.coupling_shift)
        if spec.input_gate == "coupled":  # JANET: i = 1 - sigma(s_f - beta)
            i = 1 - gate("f", spec.coupling_shift)
        if spec.normalised_gates:  # minLSTM: f' + i' = 1
            i, f = i / (f + i), f / (f + i)
        g = act_g(pre["g"])
        c = (c_prev if f is None else f * c_prev) + (g if i is None else i * g)
        o = torch.sigmoid(pre["o"] + peep["o"] * c if "o" in peep else pre["o"]) if "o" in pre else None
        h = act_h(c) if o is None else o * act_h(c)
        gates = {k: v for k, v in (("i", i), ("f", f), ("o", o)) if v is not None}
        if spec.gate_recurrence:  # the gates the next step's gates read, in weight_gg's column order
            return (h, c, torch.cat([gates[k] for k in spec.peephole_gates], dim=1)), gates
        return (h, c), gates

    def exp_cell(self, pre: dict[str, Tensor], state: tuple[Tensor, ...], act_g, act_h):
        """sLSTM (Beck et al. 2024, Sec. 2.2 and App. A): i = exp(i~), f = sigma(f~) or exp(f~),
        c_t = f c_{t-1} + i z, n_t = f n_{t-1} + i, h_t = o * act_h(c_t / n_t). c and n are kept
        scaled by exp(-m_t), m_t = max(log f_t + m_{t-1}, i~_t): the scaled gates i' = exp(i~ - m_t)
        and f' = exp(log f_t + m_{t-1} - m_t) are <= 1, so nothing overflows, and c / n is unchanged."""
        _, c_prev, n_prev, m_prev = state
        if "f" not in pre:
            log_f = torch.zeros_like(pre["i"])
        elif self.spec.forget_gate_activation == "exp":
            log_f = pre["f"]
        else:
            log_f = F.logsigmoid(pre["f"])
        fresh = n_prev == 0  # no history yet (the zero state): m_t = i~_t, so i' = 1 and n_t = 1
        m = torch.where(fresh, pre["i"], torch.maximum(log_f + m_prev, pre["i"]))
        i = torch.exp(pre["i"] - m)
        # -inf, not log_f + m_prev - m, where there is no history: exp(...) of it could overflow (and
        # its gradient would be inf * 0); n >= 1 from the first step on, so c / n is always finite.
        f = torch.exp(torch.where(fresh, torch.full_like(m, -math.inf), log_f + m_prev - m))
        g = act_g(pre["g"])
        c = f * c_prev + i * g
        n = f * n_prev + i
        o = torch.sigmoid(pre["o"]) if "o" in pre else None
        h = act_h(c / n) if o is None else o * act_h(c / n)
        gates = {"i": i, "f": f} | ({"o": o} if o is not None else {})
        return (h, c, n, m), gates

    def scan_forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """All T steps of c_t = f_t c_{t-1} + i_t g_t at once (spec.parallel_scan: minLSTM).

        A parallel prefix scan (Hillis & Steele 1986) over the pairs (f_t, b_t = i_t g_t) with the
        associative combination (f2, b2) o (f1, b1) = (f2 f1, f2 b1 + b2): log2(T) rounds, each
        one pass over all T. The decay products are kept in log space (sums of log f), so every
        factor exp(.) applied to b is <= 1: nothing overflows for any input, a long product
        underflows to its true limit 0, and b keeps its sign (the paper's log-space form instead
        needs a positive candidate). c_0 enters as f_1 c_0 added to b_1."""
        spec = self.spec
        h0, c0 = state
        B, T, _ = x.shape
        z = torch.addmm(self.bias, x.reshape(-1, self.input_size), self.weight_ih.t()).view(B, T, -1)
        pre = {name: z[..., rows] for name, rows in self.gate_slices().items()}  # (B, T, H) each
        beta = spec.coupling_shift
        zero = torch.zeros_like(pre["g"])
        log_i = {"learned": lambda: F.logsigmoid(pre["i"]), "none": lambda: zero,
                 "coupled": lambda: F.logsigmoid(beta - pre["f"])}[spec.input_gate]()  # 1 - sigma(s - b) = sigma(b - s)
        log_f = {"learned": lambda: F.logsigmoid(pre["f"]), "none": lambda: zero,
                 "coupled": lambda: F.logsigmoid(beta - pre["i"])}[spec.forget_gate]()
        if spec.normalised_gates:
            log_sum = torch.logaddexp(log_f, log_i)
            log_i, log_f = log_i - log_sum, log_f - log_sum
        b = torch.exp(log_i) * ACTIVATION_FNS[spec.candidate_activation](pre["g"])   # (B, T, H)
        b = torch.cat([b[:, :1] + torch.exp(log_f[:, :1]) * c0.unsqueeze(1), b[:, 1:]], dim=1)
        k = 1
        while k < T:  # after the round for k, b_t = c_t restricted to the last 2k steps
            b = torch.cat([b[:, :k], b[:, k:] + torch.exp(log_f[:, k:]) * b[:, :-k]], dim=1)
            log_f = torch.cat([log_f[:, :k], log_f[:, k:] + log_f[:, :-k]], dim=1)
            k *= 2
        c = b                                                                          # (B, T, H)
        act_h = ACTIVATION_FNS[spec.output_activation]
        out = act_h(c) if "o" not in pre else torch.sigmoid(pre["o"]) * act_h(c)
        return out, (out[:, -1], c[:, -1])

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, gates={''.join(self.spec.gates)}, spec={self.spec}"
