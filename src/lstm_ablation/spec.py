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
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

GATE_CHOICES = ("learned", "none")
FORGET_CHOICES = ("learned", "none", "coupled")
ACTIVATIONS = ("tanh", "sigmoid", "identity")
KINDS = ("lstm", "rnn", "gru", "torch_lstm")  # lstm = our configurable cell; the rest are baselines


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
    # Initial b_i and b_o; None keeps nn.LSTM's uniform init. Hochreiter & Schmidhuber (1997) start
    # input gates negative so that c does not drift before the net learns what to store.
    input_bias: float | None = None
    output_bias: float | None = None

    def __post_init__(self) -> None:
        def check(field: str, value: Any, allowed: tuple) -> None:
            if value not in allowed:
                raise ConfigError(f"cell.{field}: got {value!r}; allowed: {', '.join(allowed)}")

        check("input_gate", self.input_gate, GATE_CHOICES)
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
        if not isinstance(self.chrono_t_max, int) or self.chrono_t_max < 0 or self.chrono_t_max == 1:
            raise ConfigError(f"cell.chrono_t_max: got {self.chrono_t_max!r}; allowed: 0 (off) or an integer >= 2")
        if self.chrono_t_max and self.forget_gate != "learned":
            raise ConfigError("cell.chrono_t_max: chrono init needs cell.forget_gate 'learned'; allowed here: 0")
        for field, gate in (("input_bias", "input_gate"), ("output_bias", "output_gate")):
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"cell.{field}: got {value!r}; allowed: null (uniform init) or a finite number")
            if getattr(self, gate) != "learned":
                raise ConfigError(f"cell.{field}: {gate} is {getattr(self, gate)!r}, so there is no bias to set; allowed here: null")
        if self.input_bias is not None and self.chrono_t_max:
            raise ConfigError("cell.input_bias: chrono init sets b_i = -b_f; allowed with cell.chrono_t_max > 0: null")

    @property
    def gates(self) -> tuple[str, ...]:
        """Rows of the stacked pre-activation, in nn.LSTM's order: i, f, g, o (only those with weights)."""
        rows = []
        if self.input_gate == "learned":
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

    def replace(self, **changes: Any) -> CellSpec:
        return dataclasses.replace(self, **changes)


SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(CellSpec))
# Keys a cell YAML may carry besides the spec fields: what the report shows, and which layer to use.
META_FIELDS = ("name", "short", "change", "kind", "impl")


def spec_from_config(cell: dict) -> CellSpec:
    """CellSpec from a cell config mapping (a conf/cell/*.yaml after composition)."""
    unknown = sorted(set(cell) - set(SPEC_FIELDS) - set(META_FIELDS))
    if unknown:
        raise ConfigError(f"cell.{unknown[0]}: unknown field; allowed: {', '.join(SPEC_FIELDS + META_FIELDS)}")
    return CellSpec(**{k: v for k, v in cell.items() if k in SPEC_FIELDS})


def available_variants() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in resources.files("lstm_ablation.conf").joinpath("cell").iterdir()
                  if p.name.endswith(".yaml"))


def variant_config(name: str) -> dict:
    """The raw mapping of conf/cell/<name>.yaml."""
    import yaml

    names = available_variants()
    if name not in names:
        raise ConfigError(f"cell: unknown variant {name!r}; allowed: {', '.join(names)}")
    text = resources.files("lstm_ablation.conf").joinpath("cell", f"{name}.yaml").read_text()
    return yaml.safe_load(text)


def load_variant(name: str) -> CellSpec:
    """CellSpec of a named variant (conf/cell/<name>.yaml); baselines have no CellSpec."""
    cell = variant_config(name)
    if cell.get("kind", "lstm") != "lstm":
        raise ConfigError(f"cell: {name!r} is the {cell['kind']} baseline, not an LSTM variant")
    return spec_from_config(cell)
