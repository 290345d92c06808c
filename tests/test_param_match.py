"""Parameter-matched hidden sizes: every named cell within 2% of the reference's count."""
import pytest

from lstm_ablation.model import build_recurrent
from lstm_ablation.param_match import count_params, matched_hidden_size
from lstm_ablation.spec import ConfigError, available_variants, variant_config


@pytest.mark.parametrize("cell", available_variants())
@pytest.mark.parametrize("input_size, output_size, hidden_size", [(2, 1, 64), (1, 10, 128)])
def test_every_named_cell_matches_the_reference_within_2_percent(cell, input_size, output_size, hidden_size):
    reference = variant_config("vanilla")
    h = matched_hidden_size(variant_config(cell), reference, input_size, output_size, hidden_size)
    target = count_params(reference, input_size, output_size, hidden_size)
    assert abs(count_params(variant_config(cell), input_size, output_size, h) / target - 1) <= 0.02
    # the count is the real module's: recurrent layer + readout
    layer = build_recurrent({**variant_config(cell), "impl": "reference"}, input_size, h)
    assert count_params(variant_config(cell), input_size, output_size, h) == \
        sum(p.numel() for p in layer.parameters()) + h * output_size + output_size


def test_fewer_gates_get_a_larger_hidden_size():
    reference = variant_config("vanilla")
    assert matched_hidden_size(reference, reference, 2, 1, 64) == 64
    assert matched_hidden_size(variant_config("no_forget_gate"), reference, 2, 1, 64) > 64   # 3 gate rows instead of 4
    assert matched_hidden_size(variant_config("rnn"), reference, 2, 1, 64) > 120             # 1 row: about 2x


def test_bad_match_params_value_is_refused(make_cfg):
    from lstm_ablation.train import validate

    with pytest.raises(ConfigError, match="^model.match_params: got 'yes'"):
        validate(make_cfg("model.match_params=yes"))
    with pytest.raises(ConfigError, match="^report.reference: unknown cell 'vanila'"):
        validate(make_cfg("model.match_params=true", "report.reference=vanila"))
