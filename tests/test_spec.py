"""The variant as data: every named variant loads, impossible ones are refused with one line."""
import pytest

from lstm_ablation import CellSpec, ConfigError, load_variant
from lstm_ablation.spec import available_variants, spec_from_config, variant_config

EXPECTED = {
    "vanilla": ("ifgo", "tanh", "tanh"), "no_forget_gate": ("igo", "tanh", "tanh"),
    "no_input_gate": ("fgo", "tanh", "tanh"), "no_output_gate": ("ifg", "tanh", "tanh"),
    "sigmoid_candidate": ("ifgo", "sigmoid", "tanh"), "sigmoid_output": ("ifgo", "tanh", "sigmoid"),
    "linear_candidate": ("ifgo", "identity", "tanh"), "linear_output": ("ifgo", "tanh", "identity"),
    "coupled_gates": ("igo", "tanh", "tanh"), "peephole": ("ifgo", "tanh", "tanh"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_variants_are_the_documented_equations(name):
    spec = load_variant(name)
    gates, cand, out = EXPECTED[name]
    assert "".join(spec.gates) == gates
    assert (spec.candidate_activation, spec.output_activation) == (cand, out)
    assert spec.peepholes == (name == "peephole")
    assert (spec.forget_gate == "coupled") == (name == "coupled_gates")


def test_every_cell_yaml_has_name_short_and_change():
    names = available_variants()
    assert {"rnn", "gru", "torch_lstm"} | set(EXPECTED) <= set(names)
    shorts = set()
    for name in names:
        cfg = variant_config(name)
        assert cfg["name"] == name and cfg["short"] and cfg["change"]
        shorts.add(cfg["short"])
    assert len(shorts) == len(names)  # short names tell variants apart in reports


@pytest.mark.parametrize("changes,field", [
    ({"forget_gate": "coupled", "input_gate": "none"}, "cell.forget_gate"),
    ({"input_gate": "sometimes"}, "cell.input_gate"),
    ({"candidate_activation": "relu"}, "cell.candidate_activation"),
    ({"input_gate": "none", "forget_gate": "none", "output_gate": "none", "peepholes": True}, "cell.peepholes"),
    ({"chrono_t_max": -3}, "cell.chrono_t_max"),
])
def test_impossible_specs_are_refused_naming_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        CellSpec(**changes)
    message = str(err.value)
    assert message.startswith(field) and "\n" not in message


def test_unknown_variant_and_unknown_field():
    with pytest.raises(ConfigError, match=r"cell: unknown variant 'nope'; allowed: .*vanilla"):
        load_variant("nope")
    with pytest.raises(ConfigError, match="cell.forget_gat: unknown field"):
        spec_from_config({"forget_gat": "none"})
    with pytest.raises(ConfigError, match="rnn baseline"):
        load_variant("rnn")
