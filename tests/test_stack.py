"""Stacks (model.num_layers, model.dropout) and per-layer probes; the new cells through the probes
and through one tiny training job each."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from lstm_ablation import ConfigError, LSTMLayer
from lstm_ablation.model import build_recurrent
from lstm_ablation.probes import gradient_flow_layers, probe
from lstm_ablation.spec import spec_from_config, variant_config
from lstm_ablation.stack import Stack
from lstm_ablation.train import train, validate

from conftest import TINY

NEW_CELLS = ["fgr", "janet", "slstm", "minlstm"]


def test_two_layer_stack_of_vanilla_equals_nn_lstm_with_two_layers():
    torch.manual_seed(0)
    ref = nn.LSTM(3, 6, num_layers=2, batch_first=True).double()
    stack = build_recurrent(variant_config("vanilla"), 3, 6, num_layers=2).double()
    assert isinstance(stack, Stack) and stack.hidden_size == 6
    with torch.no_grad():
        for k, layer in enumerate(stack.layers):
            layer.weight_ih.copy_(getattr(ref, f"weight_ih_l{k}"))
            layer.weight_hh.copy_(getattr(ref, f"weight_hh_l{k}"))
            layer.bias.copy_(getattr(ref, f"bias_ih_l{k}") + getattr(ref, f"bias_hh_l{k}"))
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    out, states = stack(x)
    ref_out, (ref_h, ref_c) = ref(x)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-10)
    for k, (h, c) in enumerate(states):
        torch.testing.assert_close(h, ref_h[k], rtol=0, atol=1e-10)
        torch.testing.assert_close(c, ref_c[k], rtol=0, atol=1e-10)
    out_b, _ = stack(x[:, 5:], stack(x[:, :5])[1])  # a carried state per layer continues the sequence
    torch.testing.assert_close(out_b, out[:, 5:], rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["vanilla", "gru", "rnn", "torch_lstm", *NEW_CELLS])
def test_every_cell_and_baseline_stacks_with_dropout_between_layers(cell):
    torch.manual_seed(0)
    stack = build_recurrent(variant_config(cell), 2, 5, num_layers=3, dropout=0.5)
    assert len(stack.layers) == 3
    x = torch.randn(2, 6, 2)
    stack.eval()
    eval_out, states = stack(x)
    assert eval_out.shape == (2, 6, 5) and len(states) == 3
    plain = Stack(list(stack.layers), dropout=0.0)                 # eval: dropout is the identity
    torch.testing.assert_close(plain(x)[0], eval_out, rtol=0, atol=0)
    stack.train()
    assert not torch.allclose(stack(x)[0], eval_out)               # train: it drops between layers


def tiny_model(layer: nn.Module) -> SimpleNamespace:
    torch.manual_seed(1)
    return SimpleNamespace(layer=layer, readout=nn.Linear(layer.hidden_size, 1).double(),
                           task=SimpleNamespace(readout="last", loss=F.mse_loss))


@pytest.mark.parametrize("cell", ["vanilla", "gru", *NEW_CELLS])
def test_probe_reports_every_layer_and_its_loss_is_the_models(cell):
    torch.manual_seed(0)
    stack = build_recurrent(variant_config(cell), 2, 5, num_layers=2, dropout=0.3).double().eval()
    model = tiny_model(stack)
    x, y = torch.randn(3, 7, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    loss, layers = gradient_flow_layers(model, x, y)
    with torch.no_grad():  # the probe's re-run of both layers is the stack's own forward
        torch.testing.assert_close(loss, F.mse_loss(model.readout(stack(x)[0][:, -1]), y), rtol=0, atol=1e-10)
    assert len(layers) == 2
    for u, grad_h, grad_c in layers:
        assert grad_h.shape == (7, 3, 5) and torch.isfinite(grad_h).all() and grad_h.abs().sum() > 0
    record = probe(model, x, y)
    assert [r["grad_h"] for r in record["layers"]][0] == record["grad_h"]     # top level = the first layer
    assert record["layers"][1]["grad_h"] != record["grad_h"]
    assert "loss" not in record["layers"][0]
    json.dumps(record)


@pytest.mark.parametrize("cell,gates", [("fgr", "fio"), ("janet", "fi"), ("slstm", "fio"), ("minlstm", "fi")])
def test_probe_gates_of_the_new_cells(cell, gates):
    torch.manual_seed(0)
    layer = build_recurrent(variant_config(cell), 2, 4).double()
    x, y = torch.randn(3, 6, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    record = probe(tiny_model(layer), x, y)
    assert sorted(record["gates"]) == sorted(gates) and "layers" not in record
    for stats in record["gates"].values():  # every reported gate lies in [0, 1]
        assert sum(stats["hist"]) == 6 * 3 * 4
    if cell == "minlstm":  # normalised: f' + i' = 1 at every step
        means = [a + b for a, b in zip(record["gates"]["f"]["mean"], record["gates"]["i"]["mean"])]
        assert all(abs(m - 1) < 1e-9 for m in means)


@pytest.mark.parametrize("overrides,field", [
    (("model.num_layers=0",), "model.num_layers"),
    (("model.num_layers=2", "model.dropout=1.0"), "model.dropout"),
    (("model.dropout=-0.1",), "model.dropout"),
])
def test_bad_stack_settings_are_refused(make_cfg, overrides, field):
    with pytest.raises(ConfigError, match=rf"^{field}: got"):
        validate(make_cfg(*overrides))


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_one_tiny_job_per_new_cell_in_a_two_layer_stack(make_cfg, tmp_path, cell):
    cfg = make_cfg(f"cell={cell}", *TINY, "model.num_layers=2", "model.dropout=0.1")
    record = train(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    probes = json.loads((tmp_path / "probes.json").read_text())
    assert probes["num_layers"] == 2 and len(probes["probes"][-1]["layers"]) == 2
    spec = spec_from_config(OmegaConf.to_container(cfg.cell, resolve=True))
    assert spec.chrono_t_max == (6 if cell == "janet" else 0)    # janet's T_max is the task's length
    count = lambda n_in: sum(p.numel() for p in LSTMLayer(spec, n_in, 8).parameters())
    assert record["params_recurrent"] == count(2) + count(8)     # layer 0 reads the 2 inputs, layer 1 reads h
