"""Probes: the gradients are the total dL/dh_t (checked by hand, by splicing the model's own forward,
and by finite differences), gates that do not exist have no statistics, and the callback's interval,
on/off switch, file and W&B logging behave."""
from __future__ import annotations

import json
import math
import sys
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from lstm_ablation import probe_callback
from lstm_ablation.baselines import TorchRecurrent
from lstm_ablation.layer import ACTIVATION_FNS, LSTMLayer
from lstm_ablation.model import SequenceModel, batch_loader, build_recurrent
from lstm_ablation.probe_callback import GradientProbe
from lstm_ablation.probes import gradient_flow, probe, unroll
from lstm_ablation.report import gradients
from lstm_ablation.spec import ConfigError, variant_config
from lstm_ablation.tasks import build_task

VARIANTS = ["vanilla", "no_input_gate", "no_forget_gate", "no_output_gate", "coupled_gates", "peephole",
            "sigmoid_candidate", "linear_output", "rnn", "gru", "torch_lstm"]


def layer_of(variant: str, input_size: int = 2, hidden: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_recurrent(variant_config(variant), input_size, hidden).double()


def tiny_model(layer: nn.Module, readout: str) -> SimpleNamespace:
    """What gradient_flow needs of a SequenceModel; the sequence readout scores every step."""
    torch.manual_seed(1)
    task = SimpleNamespace(readout=readout, loss=F.mse_loss)
    return SimpleNamespace(layer=layer, readout=nn.Linear(layer.hidden_size, 1).double(), task=task)


def batch(T: int = 7, B: int = 3, readout: str = "last") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, 2, generator=g, dtype=torch.float64)
    y = torch.randn(B, 1, generator=g, dtype=torch.float64) if readout == "last" else \
        torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    return x, y


# ---------------------------------------------------------------------------- gradients

def test_linear_rnn_gradient_is_w_to_the_power_of_the_distance():
    """1 unit, h_t = w h_{t-1} + x_t (a ReLU RNN on positive inputs is linear): dL/dh_t = w^(T-1-t) dL/dh_{T-1}."""
    w, a, T = 0.7, 1.5, 6
    rnn = nn.RNN(1, 1, nonlinearity="relu", batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0), rnn.weight_hh_l0.fill_(w), rnn.bias_ih_l0.zero_(), rnn.bias_hh_l0.zero_()
    model = tiny_model(TorchRecurrent(rnn), "last")
    with torch.no_grad():
        model.readout.weight.fill_(a), model.readout.bias.zero_()
    x = torch.linspace(0.1, 1.0, T, dtype=torch.float64).view(1, T, 1)
    y = torch.tensor([[0.3]], dtype=torch.float64)

    _, _, grad_h, grad_c = gradient_flow(model, x, y)

    h_last = sum(w ** (T - 1 - s) * x[0, s, 0] for s in range(T))
    dL_dh_last = 2 * (a * h_last - y[0, 0]) * a                    # L = (a h_{T-1} - y)^2
    expected = torch.stack([w ** (T - 1 - t) * dL_dh_last for t in range(T)])
    assert grad_c is None
    torch.testing.assert_close(grad_h[:, 0, 0], expected)
    # The direct readout part (what autograd w.r.t. out[:, t] gives) is zero before the last step;
    # the total derivative is not.
    assert (grad_h[:-1].abs() > 1e-3).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_loop_reproduces_the_layer(variant):
    layer = layer_of(variant)
    x, _ = batch()
    u = unroll(layer, x)
    out, last = layer(x)
    torch.testing.assert_close(torch.stack(u.h, 1), out)
    if u.c is not None:
        torch.testing.assert_close(u.c[-1], last[1])
    if isinstance(layer, LSTMLayer):  # the recomputed gates rebuild the layer's own c and h
        spec = layer.spec
        c_prev = torch.zeros_like(u.c[0])
        for t in range(x.shape[1]):
            h_prev = u.h[t - 1] if t else torch.zeros_like(c_prev)
            z = x[:, t] @ layer.weight_ih.t() + layer.bias + h_prev @ layer.weight_hh.t()
            g = ACTIVATION_FNS[spec.candidate_activation](z[:, layer.gate_slices()["g"]])
            gates = {k: v[t] for k, v in u.gates.items()}
            c = gates.get("f", 1) * c_prev + gates.get("i", 1) * g
            torch.testing.assert_close(c, u.c[t])
            torch.testing.assert_close(gates.get("o", 1) * ACTIVATION_FNS[spec.output_activation](c), u.h[t])
            c_prev = c


def spliced_gradient(model, x, y, t):
    """dL/dh_t and dL/dc_t from the layer's own forward: run steps 0..t, make the state a leaf, run the rest.

    With h_t and c_t as separate leaves, dL/dc_t is only the part through c_{t+1}; the total derivative
    adds the part through h_t = o_t * act_h(c_t), rebuilt here from the equations (output_vjp)."""
    layer, T = model.layer, x.shape[1]
    with torch.no_grad():
        out_early, state = layer(x[:, : t + 1])
    lstm = isinstance(state, tuple)
    leaves = [s.clone().requires_grad_() for s in (state if lstm else (state,))]
    h = leaves[0]
    rest = [layer(x[:, t + 1:], tuple(leaves) if lstm else h)[0]] if t + 1 < T else []
    out = torch.cat([out_early[:, :t], h[:, None], *rest], dim=1)
    pred = model.readout(out[:, -1] if model.task.readout == "last" else out)
    loss = model.task.loss(pred, y)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)  # c_{T-1}: unused
    if not lstm:
        return grads, loss
    h_prev = out_early[:, t - 1] if t else torch.zeros_like(h)
    return (grads[0], grads[1] + output_vjp(layer, x[:, t], h_prev, state[1], grads[0])), loss


def output_vjp(layer, x_t, h_prev, c, grad_h):
    """grad_h . dh_t/dc_t, with h_t = o_t * act_h(c_t) and o_t = sigma(pre_o (+ p_o * c_t))."""
    if isinstance(layer, LSTMLayer):
        z = x_t @ layer.weight_ih.t() + layer.bias + h_prev @ layer.weight_hh.t()
        rows = layer.gate_slices().get("o")
        pre_o, p_o = (z[:, rows] if rows else None), layer.peephole_weights().get("o")
        act = ACTIVATION_FNS[layer.spec.output_activation]
    else:  # nn.LSTM: rows i, f, g, o
        m = layer.rnn
        z = x_t @ m.weight_ih_l0.t() + m.bias_ih_l0 + h_prev @ m.weight_hh_l0.t() + m.bias_hh_l0
        pre_o, p_o, act = z.chunk(4, dim=1)[3], None, torch.tanh
    c = c.detach().requires_grad_()
    with torch.enable_grad():
        o = 1.0 if pre_o is None else torch.sigmoid(pre_o + p_o * c if p_o is not None else pre_o)
        return torch.autograd.grad(o * act(c), c, grad_h)[0]


@pytest.mark.parametrize("readout", ["last", "sequence"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_state_gradients_equal_autograd_of_the_full_model(variant, readout):
    model = tiny_model(layer_of(variant), readout)
    x, y = batch(readout=readout)
    _, loss, grad_h, grad_c = gradient_flow(model, x, y)
    for t in (0, 3, x.shape[1] - 1):
        expected, expected_loss = spliced_gradient(model, x, y, t)
        torch.testing.assert_close(loss, expected_loss.detach())
        torch.testing.assert_close(grad_h[t], expected[0])
        if grad_c is not None:
            torch.testing.assert_close(grad_c[t], expected[1])
    assert (grad_c is not None) == (variant not in ("rnn", "gru"))


@pytest.mark.parametrize("variant", ["vanilla", "gru"])
def test_state_gradient_equals_finite_differences(variant):
    """Nudge h_t (c_t held: nothing downstream of h_t changes c_t) and rerun the rest with the layer's forward."""
    model = tiny_model(layer_of(variant), "last")
    x, y = batch()
    _, _, grad_h, _ = gradient_flow(model, x, y)
    eps = 1e-6
    for t, b, k in ((0, 0, 1), (1, 2, 3), (4, 1, 0)):
        with torch.no_grad():
            _, state = model.layer(x[:, : t + 1])
            losses = []
            for sign in (1, -1):
                s = [v.clone() for v in (state if isinstance(state, tuple) else (state,))]
                s[0][b, k] += sign * eps
                out, _ = model.layer(x[:, t + 1:], tuple(s) if len(s) > 1 else s[0])
                losses.append(F.mse_loss(model.readout(out[:, -1]), y))
        assert abs((losses[0] - losses[1]) / (2 * eps) - grad_h[t, b, k]) < 1e-8


# ---------------------------------------------------------------------------- statistics

@pytest.mark.parametrize("variant, gates", [
    ("vanilla", {"i", "f", "o"}), ("no_input_gate", {"f", "o"}), ("no_forget_gate", {"i", "o"}),
    ("no_output_gate", {"i", "f"}), ("coupled_gates", {"i", "f", "o"}), ("rnn", set()), ("gru", {"r", "z"}),
    ("torch_lstm", {"i", "f", "o"}),
])
def test_only_existing_gates_have_statistics(variant, gates):
    model = tiny_model(layer_of(variant), "last")
    x, y = batch()
    record = probe(model, x, y)
    assert set(record["gates"]) == gates
    summary_gates = {k.split("_")[1] for k in record["summary"] if k.startswith("gate_")}
    assert summary_gates == gates
    has_c = variant not in ("rnn", "gru")
    assert (record["grad_c"] is not None) == has_c == ("grad_c_log10_ratio" in record["summary"])
    assert (record["cell_abs_max"] is not None) == has_c
    for stats in record["gates"].values():
        assert len(stats["mean"]) == x.shape[1] and sum(stats["hist"]) == x.numel() // 2 * 5
        assert all(0 < m < 1 for m in stats["mean"])
    assert record["grad_h_ratio"][-1] == 1.0
    if variant == "coupled_gates":  # f = 1 - i exactly
        assert all(abs(f + i - 1) < 1e-12 for f, i in zip(record["gates"]["f"]["mean"], record["gates"]["i"]["mean"]))


@pytest.mark.parametrize("variant", ["vanilla", "rnn"])
def test_ratios_are_to_the_last_step_the_loss_reaches(variant):
    """Associative recall labels only its queries: where the last two steps carry no label, dL/dh is 0 there,
    and the ratios (and the summary) are to step T-3, not a 0/0 at T-1."""
    model = tiny_model(layer_of(variant), "sequence")
    model.task.loss = lambda pred, y: F.mse_loss(pred[:, :-2], y[:, :-2])
    x, y = batch(readout="sequence")
    record = probe(model, x, y)
    norm, ratio = record["grad_h"], record["grad_h_ratio"]
    assert norm[-2:] == [0.0, 0.0] and norm[-3] > 0
    assert ratio[-3] == 1.0 and ratio[-2:] == [0.0, 0.0]
    assert ratio[:-3] == pytest.approx([v / norm[-3] for v in norm[:-3]])
    assert record["summary"]["grad_h_log10_ratio"] == pytest.approx(math.log10(norm[0] / norm[-3]))
    if variant == "vanilla":
        assert record["grad_c_ratio"][-3] == 1.0 and math.isfinite(record["summary"]["grad_c_log10_ratio"])


def test_saturation_fractions_count_closed_and_open_gates():
    layer = layer_of("vanilla")
    with torch.no_grad():  # i always shut, f always open, o in between
        layer.weight_ih.zero_(), layer.weight_hh.zero_()
        layer.bias[layer.gate_slices()["i"]] = -10.0
        layer.bias[layer.gate_slices()["f"]] = 10.0
        layer.bias[layer.gate_slices()["o"]] = 0.0
    record = probe(tiny_model(layer, "last"), *batch())
    assert record["summary"]["gate_i_sat_low"] == 1.0 and record["summary"]["gate_i_sat_high"] == 0.0
    assert record["summary"]["gate_f_sat_high"] == 1.0 and record["summary"]["gate_o_sat_high"] == 0.0
    assert record["gates"]["i"]["hist"][0] == record["gates"]["f"]["hist"][-1] > 0


# ---------------------------------------------------------------------------- the callback

TASK = {"name": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32}


def fit(tmp_path, variant="vanilla", max_steps=10, every=4, enabled=True, seed=0):
    task = build_task(TASK, seed=0)
    torch.manual_seed(seed)
    model = SequenceModel(variant_config(variant), TASK, 8, lr=1e-2, data=task)
    callback = GradientProbe(task.splits["val"], every, tmp_path, enabled=enabled,
                             labels={"cell": variant, "task": "adding", "seed": seed})
    trainer = pl.Trainer(max_steps=max_steps, logger=False, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model, batch_loader(*task.splits["train"], 16, shuffle=True, seed=seed))
    return callback, model


@pytest.fixture
def count_probes(monkeypatch):
    calls = []

    def counted(model, x, y):
        calls.append(model.global_step)
        return probe(model, x, y)

    monkeypatch.setattr(probe_callback, "probe", counted)
    return calls


@pytest.mark.parametrize("every, steps", [(4, [0, 4, 8, 10]), (5, [0, 5, 10]), (100, [0, 10])])
def test_callback_probes_at_the_interval_and_at_the_end(tmp_path, count_probes, every, steps):
    callback, _ = fit(tmp_path, every=every)
    assert count_probes == steps
    data = json.loads((tmp_path / "probes.json").read_text())
    assert [p["step"] for p in data["probes"]] == steps
    assert [p["final"] for p in data["probes"]] == [False] * (len(steps) - 1) + [True]
    assert data["labels"]["cell"] == "vanilla" and data["gates"] == ["f", "i", "o"] and data["seq_len"] == 8
    assert len(data["probes"][0]["grad_h"]) == 8 and data["probes"][-1]["summary"]["grad_h_log10_ratio"] is not None


def test_callback_switched_off_costs_nothing(tmp_path, count_probes):
    callback, _ = fit(tmp_path, enabled=False)
    assert count_probes == [] and callback.records == [] and callback.seconds == 0
    assert not (tmp_path / "probes.json").exists()


@pytest.mark.parametrize("every", [0, -1, 2.5, True])
def test_callback_rejects_a_bad_interval(tmp_path, every):
    with pytest.raises(ConfigError, match="probe.every_n_steps"):
        GradientProbe(batch(), every, tmp_path)


def test_probe_leaves_parameters_and_their_grads_alone(tmp_path):
    task = build_task(TASK, seed=0)
    model = SequenceModel(variant_config("vanilla"), TASK, 8, lr=1e-2, data=task)
    model.readout.weight.grad = torch.ones_like(model.readout.weight)  # as if mid-accumulation
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = probe(model, *task.splits["val"])
    # the probe's own unroll + readout is the model's forward: same loss (guards against model.py drifting)
    assert record["loss"] == pytest.approx(float(task.loss(model(task.splits["val"][0]), task.splits["val"][1])), rel=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(model.readout.weight.grad, torch.ones_like(model.readout.weight))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "readout.weight")


class FakeRun:
    def __init__(self):
        self.logged, self.summary = [], {}

    def log(self, data):
        self.logged.append(data)


def test_callback_logs_to_an_active_wandb_run(tmp_path, monkeypatch):
    """W&B's own types are faked too: the real service takes ~20 s to start on a busy machine."""
    run = FakeRun()
    fake = SimpleNamespace(
        run=run,
        plot=SimpleNamespace(line_series=lambda **kw: ("line_series", kw)),
        Histogram=lambda np_histogram: ("histogram", np_histogram),
        Image=lambda fig: ("image", fig.get_axes()[0].get_yscale()),
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    fit(tmp_path, max_steps=6, every=3)
    # step 6 is both on the interval and the end: probed once, the end adds the image and the summary
    assert [d["trainer/global_step"] for d in run.logged] == [0, 3, 6, 6]
    assert ["probe/grad_norm_vs_t" in d for d in run.logged] == [True, True, True, False]
    kind, chart = run.logged[0]["probe/grad_norm_vs_t"]
    assert kind == "line_series" and chart["keys"] == ["log10 |dL/dh_t|", "log10 |dL/dc_t|"] and len(chart["xs"]) == 8
    assert run.logged[0]["probe/gate_f_hist"][0] == "histogram"
    assert "probe/grad_norm_vs_t_image" not in run.logged[0]
    assert run.logged[-1]["probe/grad_norm_vs_t_image"] == ("image", "log")
    assert set(run.summary) >= {"probe/grad_h_log10_ratio", "probe/grad_c_log10_ratio", "probe/gate_f_mean",
                                "probe/gate_i_sat_low", "probe/cell_abs_max"}


@pytest.mark.slow
def test_offline_wandb_run_holds_the_probes(tmp_path):
    import wandb

    run = wandb.init(project="probe-test", mode="offline", dir=str(tmp_path), settings=wandb.Settings(silent=True, console="off"))
    try:
        fit(tmp_path, max_steps=4, every=2)
        assert run.summary["probe/grad_h_log10_ratio"] is not None
    finally:
        run.finish()
    (log,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    assert b"probe/grad_h_log10_ratio" in log.read_bytes()


# ---------------------------------------------------------------------------- the report

def test_report_collects_plots_and_tabulates(tmp_path):
    dirs = []
    for variant in ("rnn", "vanilla"):
        for seed in (0, 1):
            run_dir = tmp_path / f"{variant}-s{seed}"
            run_dir.mkdir()
            fit(run_dir, variant=variant, max_steps=4, every=2, seed=seed)
            dirs.append(run_dir)
    assert gradients.probe_dirs(tmp_path) == sorted(dirs)

    curves = gradients.collect_curves(dirs)
    assert len(curves) == 4 * 3 * 8                                # runs x probes (0, 2, 4) x t
    assert curves.loc[curves.cell == "rnn", "grad_c"].isna().all()
    assert curves.loc[curves.cell == "vanilla", "gate_f_mean"].notna().all()

    final = gradients.at_step(curves, "final")
    assert set(final["step"]) == {4} and set(gradients.at_step(curves, "first")["step"]) == {0}
    m = gradients.mean_curves(curves, "grad_h", "final")
    t0 = final[(final.cell == "vanilla") & (final.t == 0)]["grad_h"]
    geometric = 10 ** torch.tensor(t0.tolist()).log10().mean().item()
    assert m[(m.cell == "vanilla") & (m.t == 0)]["mean"].item() == pytest.approx(geometric)
    assert (m["n_seeds"] == 2).all()

    png = gradients.plot_gradient_flow(curves, tmp_path / "fig" / "flow.png")
    assert png.stat().st_size > 10_000
    # a report whose cells have no cell state c at all (the GRU or the RNN alone): no c curves, no KeyError
    rnn_only = gradients.collect_curves(dirs[:2])
    assert "grad_c_ratio" not in rnn_only and gradients.mean_curves(rnn_only, "grad_c_ratio").empty
    assert gradients.plot_gradient_flow(rnn_only, tmp_path / "fig" / "rnn.png").stat().st_size > 10_000

    summaries = gradients.collect_summaries(dirs)
    assert len(summaries) == 4 * 3
    table = gradients.summary_markdown(summaries)
    rnn_row = next(line for line in table.splitlines() if line.startswith("| rnn"))
    assert "–" in rnn_row and "grad_h_log10_ratio" in table and "gate_f_mean" in table and "±" in table


def test_report_derives_the_ratios_probes_from_before_left_out():
    """Probes written before the ratios were to r divided by the last step's norm: where that was 0 they hold no
    ratio (None in the JSON), and the report derives it from the norms; a probe with ratios keeps its own."""
    old = {"grad_h": [0.5, 1.0, 2.0, 0.0], "grad_h_ratio": [None] * 4, "grad_c": None, "grad_c_ratio": None,
           "summary": {"grad_h_log10_ratio": None, "loss": 1.0}}
    derived = gradients.with_ratios(old)
    assert derived["grad_h_ratio"] == [0.25, 0.5, 1.0, 0.0] and derived["grad_c_ratio"] is None
    assert derived["summary"] == {"grad_h_log10_ratio": pytest.approx(math.log10(0.25)), "loss": 1.0}
    kept = {**old, "grad_h_ratio": [0.3, 0.6, 1.0, 0.0], "summary": {"grad_h_log10_ratio": -0.5}}
    assert gradients.with_ratios(kept) == kept
