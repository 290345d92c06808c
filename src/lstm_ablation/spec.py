"""The LSTM variant as data.

A `CellSpec` says which gates exist and which activations squash the candidate and the cell
output. Greff et al. (2017) call the reference cell "vanilla":

    i_t = sigma(W_i [h_{t-1}, x_t] + b_i  (+ p_i * c_{t-1}))      input gate
    f_t = sigma(W_f [h_{t-1}, x_t] + b_f  (+ p_f * c_{t-1}))      forget gate
    g_t = act_g(W_g [h_{t-1}, x_t] + b_g)                         candidate (block input)
    c_t = f_t * c_{t-1} + i_t * g_t
    o_t = sigma(W_o [h_{t-1}, x_t] + b_o  (+ p_o * c_t))          output gate
    h_t = o_t * act_h(c_t)

A gate that is `none` is the constant 1 and owns no weights; `forget_gate: coupled` is
f_t = 1 - i_t (CIFG). Peepholes (Gers et al. 2002) are diagonal: one weight per unit per gate.

The family beyond Greff's set (issue 13), each a few fields below the classic ones:
    coupling_shift beta   a coupled gate is 1 - sigma(s - beta), s its learned partner's pre-activation;
                          `input_gate: coupled` is JANET's i_t = 1 - sigma(s_f - beta) (van der Westhuizen
                          and Lasenby 2018); beta = 0 gives CIFG's f_t = 1 - i_t
    gate_recurrence       FGR (Greff et al. 2017): every learned sigmoid gate also reads the previous
                          step's gates, R_{i->.} i_{t-1} + R_{f->.} f_{t-1} + R_{o->.} o_{t-1}
    input_gate_activation exp: sLSTM's exponential gating (Beck et al. 2024) with the normaliser
    forget_gate_activation  n_t = f_t n_{t-1} + i_t and h_t = o_t * act_h(c_t / n_t), stabilised in log space
    gates_read            input: i, f, o read x_t only (not h_{t-1})
    candidate_read        input: g reads x_t only; with gates_read input the recurrence is linear in c
                          and runs as a parallel scan over T (minLSTM, Feng et al. 2024)
    normalised_gates      f' = f / (f + i), i' = i / (f + i) (minLSTM)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

GATE_CHOICES = ("learned", "none")
INPUT_CHOICES = ("learned", "none", "coupled")
FORGET_CHOICES = ("learned", "none", "coupled")
GATE_ACTIVATIONS = ("sigmoid", "exp")
READS = ("input_and_hidden", "input")
ACTIVATIONS = ("tanh", "sigmoid", "identity")
KINDS = ("lstm", "rnn", "gru", "torch_lstm")  # lstm = our configurable cell; the rest are baselines


def is_number(v: Any) -> bool:
    """A finite int or float, not a bool (YAML's `true` is an int to Python)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class ConfigError(ValueError):
    """Bad user input; the message is one line that names the field and what is allowed."""


@dataclass(frozen=True)
class CellSpec:
    input_gate: str = "learned"
    forget_gate: str = "learned"
    output_gate: str = "learned"
    candidate_activation: str = "tanh"
    output_activation: str = "tanh"
    peepholes: bool = False
    forget_bias: float = 1.0  # initial b_f (Gers et al. 2000; Jozefowicz et al. 2015 use 1)
    # Chrono init (Tallec & Ollivier 2018): b_f ~ log U[1, T_max - 1], b_i = -b_f. 0 = off.
    chrono_t_max: int = 0
    # The wider family (issue 13); defaults are the classic cell.
    coupling_shift: float = 0.0            # beta of a coupled gate, 1 - sigma(s - beta); JANET: 1
    gate_recurrence: bool = False          # FGR: gates read the previous step's gates
    input_gate_activation: str = "sigmoid"   # exp: sLSTM exponential gating with normaliser n_t
    forget_gate_activation: str = "sigmoid"  # exp: only with an exponential input gate
    gates_read: str = "input_and_hidden"   # input: i, f, o see x_t only
    candidate_read: str = "input_and_hidden"  # input: g sees x_t only
    normalised_gates: bool = False         # minLSTM: f' = f / (f + i), i' = i / (f + i)
    # Initial b_i and b_o; None keeps nn.LSTM's uniform init. Hochreiter & Schmidhuber (1997) start
    # input gates negative so that c does not drift before the net learns what to store.
    input_bias: float | None = None
    output_bias: float | None = None

    def __post_init__(self) -> None:
        def check(field: str, value: Any, allowed: tuple) -> None:
            if value not in allowed:
                raise ConfigError(f"cell.{field}: got {value!r}; allowed: {', '.join(allowed)}")

        check("input_gate", self.input_gate, INPUT_CHOICES)
        check("forget_gate", self.forget_gate, FORGET_CHOICES)
        check("output_gate", self.output_gate, GATE_CHOICES)
        check("candidate_activation", self.candidate_activation, ACTIVATIONS)
        check("output_activation", self.output_activation, ACTIVATIONS)
        if not isinstance(self.peepholes, bool):
            raise ConfigError(f"cell.peepholes: got {self.peepholes!r}; allowed: true, false")
        if self.forget_gate == "coupled" and self.input_gate != "learned":
            raise ConfigError(
                f"cell.forget_gate: 'coupled' (f = 1 - i) needs cell.input_gate 'learned', got {self.input_gate!r}; "
                "allowed with no input gate: learned, none"
            )
        if self.peepholes and not self.peephole_gates:
            raise ConfigError("cell.peepholes: true needs at least one learned gate (i, f or o); allowed here: false")
        if not valid_chrono_t_max(self.chrono_t_max):
            raise ConfigError(f"cell.chrono_t_max: got {self.chrono_t_max!r}; allowed: 0 (off) or an integer >= 2")
        if self.chrono_t_max and self.forget_gate != "learned":
            raise ConfigError("cell.chrono_t_max: chrono init needs cell.forget_gate 'learned'; allowed here: 0")
        for field, gate in (("input_bias", "input_gate"), ("output_bias", "output_gate")):
            value = getattr(self, field)
            if value is None:
                continue
            if not is_number(value):
                raise ConfigError(f"cell.{field}: got {value!r}; allowed: null (uniform init) or a finite number")
            if getattr(self, gate) != "learned":
                raise ConfigError(f"cell.{field}: {gate} is {getattr(self, gate)!r}, so there is no bias to set; allowed here: null")
        if self.input_bias is not None and self.chrono_t_max:
            raise ConfigError("cell.input_bias: chrono init sets b_i = -b_f; allowed with cell.chrono_t_max > 0: null")
        self.check_family(check)

    def check_family(self, check) -> None:
        """The issue-13 axes: each alone, then the combinations whose equations are not defined."""
        check("input_gate_activation", self.input_gate_activation, GATE_ACTIVATIONS)
        check("forget_gate_activation", self.forget_gate_activation, GATE_ACTIVATIONS)
        check("gates_read", self.gates_read, READS)
        check("candidate_read", self.candidate_read, READS)
        for field in ("gate_recurrence", "normalised_gates"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(f"cell.{field}: got {getattr(self, field)!r}; allowed: true, false")
        beta = self.coupling_shift
        if not is_number(beta):
            raise ConfigError(f"cell.coupling_shift: got {beta!r}; allowed: a finite number")
        if self.input_gate == "coupled" and self.forget_gate != "learned":
            raise ConfigError(f"cell.input_gate: 'coupled' (i = 1 - sigma(s_f - beta)) needs cell.forget_gate 'learned', "
                              f"got {self.forget_gate!r}; allowed with this forget gate: learned, none")
        if beta and "coupled" not in (self.input_gate, self.forget_gate):
            raise ConfigError("cell.coupling_shift: shifts a coupled gate, and neither cell.input_gate nor "
                              "cell.forget_gate is 'coupled'; allowed here: 0")
        exp_gating = self.input_gate_activation == "exp"
        if self.gate_recurrence and (not self.peephole_gates or exp_gating):
            raise ConfigError("cell.gate_recurrence: true (FGR) needs at least one learned sigmoid gate (i, f or o) "
                              "and no exponential gating; allowed here: false")
        if exp_gating and (self.input_gate != "learned" or self.forget_gate not in ("learned", "none")):
            raise ConfigError(f"cell.input_gate_activation: 'exp' (sLSTM) needs cell.input_gate 'learned' and "
                              f"cell.forget_gate 'learned' or 'none', got {self.input_gate!r} and {self.forget_gate!r}; "
                              "allowed otherwise: sigmoid")
        if exp_gating and self.peepholes:
            raise ConfigError("cell.peepholes: the exponential gates (sLSTM) have no peepholes here; allowed: false")
        if self.forget_gate_activation == "exp" and not (exp_gating and self.forget_gate == "learned"):
            raise ConfigError("cell.forget_gate_activation: 'exp' needs cell.input_gate_activation 'exp' (the normaliser "
                              "keeps c bounded) and cell.forget_gate 'learned'; allowed here: sigmoid")
        if self.normalised_gates and (self.input_gate != "learned" or self.forget_gate != "learned" or exp_gating):
            raise ConfigError("cell.normalised_gates: true (f / (f + i)) needs cell.input_gate and cell.forget_gate "
                              "'learned' with sigmoid activations; allowed here: false")

    @property
    def gates(self) -> tuple[str, ...]:
        """Rows of the stacked pre-activation, in nn.LSTM's order: i, f, g, o (only those with weights)."""
        rows = []
        if self.input_gate == "learned":  # a coupled gate has no rows of its own
            rows.append("i")
        if self.forget_gate == "learned":
            rows.append("f")
        rows.append("g")
        if self.output_gate == "learned":
            rows.append("o")
        return tuple(rows)

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """Gates that get a diagonal peephole when `peepholes` is on: every learned sigmoid gate."""
        return tuple(g for g in self.gates if g != "g")

    @property
    def recurrent_gates(self) -> tuple[str, ...]:
        """Rows of `gates` that read h_{t-1} (the rows of weight_hh), in the same order."""
        reads = {"input_and_hidden": True, "input": False}
        return tuple(g for g in self.gates if reads[self.candidate_read if g == "g" else self.gates_read])

    @property
    def state_names(self) -> tuple[str, ...]:
        """What the layer's state tuple holds: (h, c) for the classic cell; sLSTM adds its normaliser
        n and stabiliser m; FGR adds the previous step's gates a (B, P*H) that the next gates read."""
        names = ("h", "c")
        if self.input_gate_activation == "exp":
            names += ("n", "m")
        if self.gate_recurrence:
            names += ("a",)
        return names

    @property
    def parallel_scan(self) -> bool:
        """Nothing reads h_{t-1} or c_{t-1} except the linear c update: c_t = a_t c_{t-1} + b_t
        with a_t, b_t functions of x_t alone, so all T steps are one scan (minLSTM)."""
        return (not self.recurrent_gates and not self.peepholes and not self.gate_recurrence
                and self.input_gate_activation == "sigmoid")

    def replace(self, **changes: Any) -> CellSpec:
        return dataclasses.replace(self, **changes)


SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(CellSpec))
# Keys a cell YAML may carry besides the spec fields: what the report shows, and which layer to use.
META_FIELDS = ("name", "short", "change", "kind", "impl", "literature")


def spec_from_config(cell: dict) -> CellSpec:
    """CellSpec from a cell config mapping (a conf/cell/*.yaml after composition)."""
    unknown = sorted(set(cell) - set(SPEC_FIELDS) - set(META_FIELDS))
    if unknown:
        raise ConfigError(f"cell.{unknown[0]}: unknown field; allowed: {', '.join(SPEC_FIELDS + META_FIELDS)}")
    return CellSpec(**{k: v for k, v in cell.items() if k in SPEC_FIELDS})


def shipped_configs(group: str) -> list:
    """The .yaml files of one config group the package ships (conf/<group>/), sorted by name."""
    folder = resources.files("lstm_ablation.conf") / group
    return sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)


def available_variants() -> list[str]:
    return [p.name.removesuffix(".yaml") for p in shipped_configs("cell")]


def valid_chrono_t_max(value) -> bool:
    """0 (off) or an integer >= 2: chrono's b_f ~ log U[1, T_max - 1] needs T_max - 1 > 1."""
    return isinstance(value, int) and (value == 0 or value >= 2)


def variant_config(name: str) -> dict:
    """The raw mapping of conf/cell/<name>.yaml."""
    import yaml

    names = available_variants()
    if name not in names:
        raise ConfigError(f"cell: unknown variant {name!r}; allowed: {', '.join(names)}")
    from omegaconf import OmegaConf

    text = resources.files("lstm_ablation.conf").joinpath("cell", f"{name}.yaml").read_text()
    # Interpolations such as janet's ${oc.select:task.seq_len,100} resolve to their default here,
    # outside a composed config (in a job they read the task).
    return OmegaConf.to_container(OmegaConf.create(yaml.safe_load(text)), resolve=True)


def load_variant(name: str) -> CellSpec:
    """CellSpec of a named variant (conf/cell/<name>.yaml); baselines have no CellSpec."""
    cell = variant_config(name)
    if cell.get("kind", "lstm") != "lstm":
        raise ConfigError(f"cell: {name!r} is the {cell['kind']} baseline, not an LSTM variant")
    return spec_from_config(cell)
