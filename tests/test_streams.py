"""Continual streams (streams.py, tasks/continual_reber_stream.py): truncated BPTT with the state
carried between chunks, re-drawn streams that keep the grammar, whole-stream scores, bounded memory."""
from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from test_report import make_run
from test_tasks import reference_legal_sets

from lstm_ablation.baselines import BASELINES
from lstm_ablation.layer import LSTMLayer
from lstm_ablation.model import SequenceModel
from lstm_ablation.results import write_result
from lstm_ablation.spec import load_variant
from lstm_ablation.streams import StreamChunks, stream_loaders
from lstm_ablation.tasks import continual_reber as cr
from lstm_ablation.tasks import continual_reber_stream as crs
from lstm_ablation.tasks.base import split_generator
from lstm_ablation.train import train

LAYERS = {
    "vanilla_fast": lambda: LSTMLayer(load_variant("vanilla"), 7, 6, impl="fast"),
    "vanilla_reference": lambda: LSTMLayer(load_variant("vanilla"), 7, 6, impl="reference"),
    "no_forget_gate": lambda: LSTMLayer(load_variant("no_forget_gate"), 7, 6),
    "torch_lstm": lambda: BASELINES["torch_lstm"](7, 6),
    "gru": lambda: BASELINES["gru"](7, 6),
}


def with_layer(layer: torch.nn.Module, task) -> SequenceModel:
    """A SequenceModel around a given layer (SequenceModel builds its own from a cell config)."""
    model = SequenceModel({"name": "vanilla", "kind": "lstm"}, {"name": task.name}, layer.hidden_size, lr=1e-3, data=task)
    model.layer, model.readout = layer, torch.nn.Linear(layer.hidden_size, task.output_size)
    return model



def tiny_task(**sizes) -> crs.ContinualReberStreamTask:
    """Training streams run to their end unless the test asks for restart_on_error (the task's default)."""
    args = dict(seq_len=5, train_stream_len=12, n_val=3, val_stream_len=40, n_test=3, test_stream_len=40, eval_chunk_len=7,
                restart_on_error=False)
    return crs.make(seed=0, **(args | sizes))


def chunks(x: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    return list(torch.split(x, lengths, dim=1))


# ---------------------------------------------------------------------------- state carried

@pytest.mark.parametrize("name", sorted(LAYERS))
def test_chunked_forward_equals_one_forward_and_gradients_stop_at_chunk_boundaries(name):
    torch.manual_seed(0)
    model = with_layer(LAYERS[name](), tiny_task()).double()
    x = torch.randn(4, 23, 7, dtype=torch.float64, requires_grad=True)
    full = model(x)                                                    # (4, 23, 7): one forward, zero state
    lengths = [5, 9, 1, 8]
    fresh = torch.ones(4, dtype=torch.bool)
    preds = []
    for xc in chunks(x, lengths):
        preds.append(model.step((xc, None, fresh), "train"))
        fresh = torch.zeros(4, dtype=torch.bool)
    torch.testing.assert_close(torch.cat(preds, 1), full, rtol=1e-10, atol=1e-12)
    # a loss on the last chunk (steps 15..22): the same gradient w.r.t. that chunk's inputs; none
    # reaches the earlier chunks (truncated BPTT), where one forward over the whole stream sends some
    (g_chunked,) = torch.autograd.grad(preds[3].square().sum(), x)
    (g_full,) = torch.autograd.grad(full[:, 15:].square().sum(), x)
    torch.testing.assert_close(g_chunked[:, 15:], g_full[:, 15:], rtol=1e-10, atol=1e-12)
    assert g_chunked[:, :15].abs().max() == 0 and g_full[:, :15].abs().max() > 0


def test_fresh_rows_start_from_a_zero_state_the_others_carry_theirs():
    torch.manual_seed(0)
    model = with_layer(LAYERS["vanilla_fast"](), tiny_task()).double()
    a, b = torch.randn(3, 6, 7, dtype=torch.float64), torch.randn(3, 4, 7, dtype=torch.float64)
    model.step((a, None, torch.ones(3, dtype=torch.bool)), "train")
    fresh = torch.tensor([False, True, False])
    got = model.step((b, None, fresh), "train")
    with torch.no_grad():
        carried = model(torch.cat([a, b], 1))[:, 6:]                   # rows that go on with their stream
        restarted = model(b)                                           # a row whose stream was re-drawn
    torch.testing.assert_close(got[~fresh], carried[~fresh])
    torch.testing.assert_close(got[fresh], restarted[fresh])
    assert not torch.allclose(got[1], carried[1])
    # evaluation keeps its own state: a validation in the middle of training does not touch train's
    model.step((b, None, torch.ones(3, dtype=torch.bool)), "val")
    assert set(model.carried) == {"train", "val"} and not torch.equal(model.carried["train"][1], model.carried["val"][1])


# ---------------------------------------------------------------------------- streams and the grammar

def test_reber_stream_chunks_concatenate_to_one_stream():
    whole = cr.generate(3, "val", 5, 300)
    streams = cr.ReberStreams(split_generator(3, "val"), 5)
    parts = [streams.next(n) for n in (1, 37, 100, 2, 160)]
    assert torch.equal(torch.cat([p[0] for p in parts], 1), whole[0])
    assert torch.equal(torch.cat([p[1] for p in parts], 1), whole[1])


def test_training_streams_are_redrawn_at_their_end_and_each_keeps_the_grammar():
    task = tiny_task(seq_len=7, train_stream_len=30)                   # 5 chunks per stream, the last one 2 symbols
    loader = StreamChunks(task, "train", rows=4, redraw=True)
    streams, current = [], None
    for n, (x, y, fresh) in zip(range(15), loader):                     # three streams per row
        assert x.shape[:2] == y.shape[:2] == (4, 7 if n % 5 < 4 else 2)
        assert bool(fresh.all()) == (n % 5 == 0) and bool(fresh.any()) == (n % 5 == 0)
        if fresh.all():
            current = [[] for _ in range(4)]
            streams.append(current)
        for row in range(4):
            current[row].append((x[row].argmax(-1), y[row]))
    assert len(streams) == 3
    texts = set()
    for stream in streams:
        for row in stream:
            tokens = torch.cat([t for t, _ in row])
            legal = torch.cat([y for _, y in row])
            text = "".join(cr.SYMBOLS[i] for i in tokens)
            expected = reference_legal_sets(text)                        # asserts the grammar from the stream's first B
            got = [{cr.SYMBOLS[j] for j in range(7) if legal[t, j]} for t in range(30)]
            assert got == expected and len(text) == 30
            texts.add(text)
    assert len(texts) == 12                                            # every row and every re-draw a new stream


def row_texts(chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], row: int, first: int = 0) -> tuple[str, list]:
    """Row `row` of chunks[first:] as one text, with its legal sets."""
    tokens = torch.cat([x[row].argmax(-1) for x, _, _ in chunks[first:]])
    legal = torch.cat([y[row] for _, y, _ in chunks[first:]])
    return "".join(cr.SYMBOLS[i] for i in tokens), [{cr.SYMBOLS[j] for j in range(7) if legal[t, j]} for t in range(len(legal))]


def test_a_row_that_erred_gets_a_fresh_stream_at_b_and_the_others_go_on():
    task = tiny_task(seq_len=7, train_stream_len=70, restart_on_error=True)
    plain = [c for _, c in zip(range(6), StreamChunks(tiny_task(seq_len=7, train_stream_len=70), "train", 4, redraw=True))]
    loader = iter(StreamChunks(task, "train", rows=4, redraw=True))
    got = [next(loader)]
    task.train_errors.append(torch.tensor([False, True, False, False]))   # chunk 0: row 1 was wrong somewhere
    got.append(next(loader))                                              # chunk 1: row 1 starts over
    got += [next(loader) for _ in range(4)]                               # no more reports: nobody restarts
    assert [f.tolist() for _, _, f in got] == [[True] * 4, [False, True, False, False]] + [[False] * 4] * 4
    x, y, _ = got[1]
    assert cr.SYMBOLS[int(x[1, 0].argmax())] == "B" and y[1, 0].tolist() == [0, 1, 0, 0, 1, 0, 0]   # B, then T or P
    text, legal = row_texts(got, 1, first=1)
    assert legal == reference_legal_sets(text)                            # the new stream keeps the grammar from its B
    assert text != row_texts(plain, 1, first=1)[0]
    for row in (0, 2, 3):                                                 # rows without error: the same stream as without the option
        text, legal = row_texts(got, row)
        assert text == row_texts(plain, row)[0] and legal == reference_legal_sets(text)
    # same seed, same reports -> same data; an option-off loader ignores reports
    loader = iter(StreamChunks(task, "train", rows=4, redraw=True))
    again = [next(loader)]
    task.train_errors.append(torch.tensor([False, True, False, False]))
    again += [next(loader) for _ in range(5)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(got, again))
    off = tiny_task(seq_len=7, train_stream_len=70)
    loader = iter(StreamChunks(off, "train", rows=4, redraw=True))
    first = next(loader)
    off.train_errors.append(torch.tensor([True] * 4))
    assert not next(loader)[2].any() and torch.equal(first[0], plain[0][0])


def test_a_report_about_a_stream_the_row_has_left_restarts_nothing():
    task = tiny_task(seq_len=7, train_stream_len=21, restart_on_error=True)   # 3 chunks per stream
    loader = iter(StreamChunks(task, "train", rows=2, redraw=True))
    got = [next(loader), next(loader)]                       # chunks 0, 1 drawn (Lightning prefetches one)
    task.train_errors.append(torch.tensor([True, False]))   # chunk 0: row 0 wrong
    got.append(next(loader))                                 # chunk 2: row 0 restarts
    task.train_errors.append(torch.tensor([True, False]))   # chunk 1, row 0's old stream: ignored
    task.train_errors.append(torch.tensor([False, True]))   # chunk 2: row 1 wrong, but its stream ends anyway
    got.append(next(loader))                                 # chunk 3: every row's stream is re-drawn
    task.train_errors.append(torch.tensor([False, False]))  # chunk 3
    got.append(next(loader))                                 # chunk 4
    assert [f.tolist() for _, _, f in got] == [[True, True], [False, False], [True, False], [True, True], [False, False]]


def test_the_training_step_reports_wrong_rows_and_lightning_restarts_them():
    # the criterion: StreamScore's, a row with any wrong step
    task = tiny_task(seq_len=4, train_stream_len=40, restart_on_error=True)
    y = legal_targets("BTBTXSETE").expand(3, -1, -1).clone()
    pred = torch.where(y > 0.5, 5.0, -5.0)
    pred[1, 3, cr.S] = -pred[1, 3, cr.S]
    task.report_train_errors(pred, y)
    assert task.train_errors.popleft().tolist() == [False, True, False]
    # the path through Lightning: an untrained model is wrong in every row. Lightning fetches one chunk
    # ahead, so chunk k's errors restart the rows at chunk k + 2, and the errors of chunk k + 1 (the
    # stream they left) restart nothing: every other chunk starts a fresh stream in every row
    spy, _ = fit_on_chunks(task, steps=6)
    assert [f.tolist() for _, f in spy.seen] == [[True] * 3, [False] * 3] * 3
    assert all(bool((tokens[:, 0] == cr.B).all()) for tokens, _ in spy.seen[::2])


def test_evaluation_streams_are_the_same_at_every_validation():
    task = tiny_task()
    first = [x for x, _, _ in StreamChunks(task, "val", rows=3, redraw=False)]
    again = [x for x, _, _ in StreamChunks(task, "val", rows=3, redraw=False)]
    assert len(first) == 6 and sum(x.shape[1] for x in first) == 40   # ceil(40 / 7) chunks
    assert all(torch.equal(a, b) for a, b in zip(first, again))


@pytest.mark.parametrize("key, value, allowed", [
    ("train_stream_len", 100, "an integer >= 300"), ("test_stream_len", 1, "an integer >= 2"),
    ("eval_chunk_len", 0, "an integer >= 1"), ("n_train", 5, "allowed: seq_len, train_stream_len"),
    ("restart_on_error", "yes", "allowed: True, False"),
])
def test_bad_stream_settings_are_one_line_naming_the_key(key, value, allowed):
    from lstm_ablation.spec import ConfigError
    from lstm_ablation.tasks import check_task_config

    with pytest.raises(ConfigError, match=f"^task.{key}: .*{allowed}") as e:
        check_task_config({"name": "continual_reber_stream", "seq_len": 300, key: value})
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------- the whole-stream score

def legal_targets(text: str) -> torch.Tensor:
    return torch.tensor([[cr.SYMBOLS[j] in s for j in range(7)] for s in reference_legal_sets(text)]).float()


def test_stream_score_finds_a_known_first_error_across_chunks():
    strings = ["BTBTXSETE", "BPBPVVEPE", "BTBPTTVVETE", "BPBTSXSEPE"]   # four embedded strings, 39 symbols
    y = legal_targets("".join(strings)).expand(3, -1, -1).clone()       # (3, 39, 7)
    pred = torch.where(y > 0.5, 5.0, -5.0)                              # right everywhere ...
    pred[1, 23, cr.S] = 5.0                                             # ... but row 1 at step 23 (third string)
    pred[2, 30, cr.B] = -5.0                                            # ... and row 2 at steps 30 and 35
    pred[2, 35, cr.E] = -5.0
    score = crs.StreamScore()
    for p, t in zip(torch.split(pred, [10, 10, 5, 14], 1), torch.split(y, [10, 10, 5, 14], 1)):
        score.update(p, t)
    assert score.until_first_error().tolist() == [39, 23, 30]
    result = score.result()
    assert result["first_error_median"] == 30 and result["first_error_min"] == 23
    assert result["perfect"] == pytest.approx(1 / 3)
    assert result["string_accuracy"] == pytest.approx((4 + 3 + 3) / 12)    # row 2: both errors in the fourth string
    assert result["step_accuracy"] == pytest.approx(1 - 3 / (3 * 39))
    # chunking does not change it: same as the short task's metric on the whole stream
    step_ok = ((pred > 0) == (y > 0.5)).all(-1)
    assert result["string_accuracy"] == pytest.approx(float(cr.string_accuracy(step_ok, y)))


def test_stream_score_records_the_cell_state_at_every_chunk_end():
    score = crs.StreamScore()
    y = legal_targets("BTBTXSETE").expand(2, -1, -1)
    for k in range(4):
        c = torch.full((2, 3), float(k + 1))
        score.update(torch.zeros_like(y), y, (torch.zeros(2, 3), c))
    summary = score.summary()
    assert summary["cell"]["at"] == [9, 18, 27, 36] and summary["cell"]["abs_mean"] == [1.0, 2.0, 3.0, 4.0]
    assert summary["metrics"]["cell_abs_end"] == 4.0 and summary["metrics"]["cell_abs_peak"] == 4.0
    gru = crs.StreamScore()
    gru.update(torch.zeros_like(y), y, torch.zeros(2, 3))               # a layer without a cell state
    assert gru.summary()["cell"] is None and "cell_abs_end" not in gru.result()


class ShapeSpy(torch.nn.Module):
    """Wraps a layer and remembers the longest input it was given."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.hidden_size, self.longest = layer, layer.hidden_size, 0

    def forward(self, x, state=None):
        self.longest = max(self.longest, x.shape[1])
        return self.layer(x, state)


def test_a_long_evaluation_stream_is_read_in_chunks_with_bounded_memory():
    """10^5 symbols per row: the model never sees more than one chunk, the score keeps O(rows) counters
    and one |c| value per chunk, so memory does not grow with the stream."""
    task = tiny_task(n_test=2, test_stream_len=100_000, eval_chunk_len=2000)
    spy = ShapeSpy(LSTMLayer(load_variant("vanilla"), 7, 4))
    model = with_layer(spy, task)
    score = None
    with torch.no_grad():
        for batch in StreamChunks(task, "test", rows=2, redraw=False):
            assert batch[0].shape == (2, 2000, 7)
            pred = model.step(batch, "test")
            if batch[2].all():
                score = task.stream_score()
            score.update(pred, batch[1], model.carried["test"])
    assert spy.longest == 2000 and score.seen == 100_000
    tensors = [v for v in vars(score).values() if isinstance(v, torch.Tensor)]
    assert max(t.numel() for t in tensors) <= 2 * 7
    assert len(score.summary()["cell"]["abs_mean"]) == 50


# ---------------------------------------------------------------------------- a job on streams

class Chunks(pl.Callback):
    """Remembers the tokens and fresh flags of every training batch, in the order Lightning ran them."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((batch[0].argmax(-1), batch[2].clone()))


def fit_on_chunks(task, steps: int) -> tuple["Chunks", SequenceModel]:
    """A tiny vanilla model trained `steps` chunks on the task's training streams (3 rows), and the spy that saw them."""
    model = with_layer(LSTMLayer(load_variant("vanilla"), 7, 4), task)
    train_loader, _, _ = stream_loaders(task, batch_size=3)
    spy = Chunks()
    trainer = pl.Trainer(max_steps=steps, logger=False, callbacks=[spy], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, train_loader)
    return spy, model


def test_lightning_trains_on_the_chunks_in_stream_order_and_carries_the_state():
    task = tiny_task(seq_len=4, train_stream_len=10)                    # chunks of 4, 4, 2 symbols per stream
    spy, model = fit_on_chunks(task, steps=7)
    expected = [(x.argmax(-1), fresh) for _, (x, _, fresh) in zip(range(7), StreamChunks(task, "train", 3, redraw=True))]
    assert len(spy.seen) == 7
    for (tokens, fresh), (want_tokens, want_fresh) in zip(spy.seen, expected):
        assert torch.equal(tokens, want_tokens) and torch.equal(fresh, want_fresh)
    assert [bool(f.all()) for _, f in spy.seen] == [True, False, False, True, False, False, True]
    assert model.carried["train"][1].shape == (3, 4)                 # the state after the last chunk, kept

def test_a_job_on_continual_streams_records_whole_stream_metrics(make_cfg, tmp_path):
    cfg = make_cfg("task=continual_reber_stream", "task.seq_len=6", "task.train_stream_len=18", "task.val_stream_len=30",
                   "task.test_stream_len=50", "task.eval_chunk_len=16", "task.n_val=2", "task.n_test=3",
                   "model.hidden_size=4", "optim.batch_size=4", "trainer.max_steps=7", "trainer.val_check_interval=3",
                   "trainer.log_every_n_steps=1", "wandb.mode=disabled", "probe.every_n_steps=3", "num_threads=1")
    record = train(cfg, tmp_path)
    assert record["status"] == "completed", record["error"]
    assert record["steps"] == 7 and record["metric"] == "string_accuracy"
    metrics = record["metrics"]
    for key in ("test/string_accuracy", "test/first_error_median", "test/perfect", "test/cell_abs_end",
                "val/string_accuracy_best", "val/first_error_median_best", "test/loss"):
        assert key in metrics, key
    stream = json.loads((tmp_path / "stream.json").read_text())
    assert stream["labels"]["task"] == "continual_reber_stream"
    test = stream["test"]
    assert test["stream_len"] == 50 and test["rows"] == 3 and len(test["until_first_error"]) == 3
    assert test["cell"]["at"] == [16, 32, 48, 50]
    assert sorted(test["until_first_error"])[1] == metrics["test/first_error_median"]
    assert stream["val"]["stream_len"] == 30 and stream["val"]["step"] == 7   # the final validation (final_validation.py)


# ---------------------------------------------------------------------------- the report

def write_stream_run(sweep, num: int, cell: str, first_errors: list[int], cell_growth: float | None, seed: int = 0,
                     stage: str | None = None):
    """A job dir as train.py leaves it (result.json from test_report.make_run), its stream.json from a
    StreamScore over a hand-made test stream: row r wrong first at first_errors[r] (39 = never).
    stage: a tuned sweep's tune.stage ("tune", "rescore", "confirm"), None for a plain sweep."""
    job = make_run(sweep, num, cell, seed, 0.5, task="continual_reber_stream", metric="string_accuracy", higher=True,
                   baseline=0.5, threshold=0.95)
    if stage is not None:
        result = json.loads((job / "result.json").read_text())
        result["config"]["tune"] = {"stage": stage, "trial": 0}   # every run of the one trial
        write_result(job, result)
    y = legal_targets("BTBTXSETE" "BPBPVVEPE" "BTBPTTVVETE" "BPBTSXSEPE").expand(len(first_errors), -1, -1)
    pred = torch.where(y > 0.5, 5.0, -5.0)
    for row, at in enumerate(first_errors):
        if at < 39:
            pred[row, at] = -pred[row, at]
    score = crs.StreamScore()
    for k, (p, t) in enumerate(zip(torch.split(pred, 13, 1), torch.split(y, 13, 1))):
        c = None if cell_growth is None else torch.full((len(first_errors), 2), cell_growth * (k + 1))
        score.update(p, t, None if c is None else (torch.zeros_like(c), c))
    (job / "stream.json").write_text(json.dumps({"format": 1, "labels": {"cell": cell, "task": "continual_reber_stream",
                                                                         "seed": seed}, "test": score.summary()}))


def test_report_shows_first_errors_and_the_cell_state_along_the_stream(tmp_path):
    from lstm_ablation.report import regenerate, write_report

    sweep = tmp_path / "sweep"
    write_stream_run(sweep, 0, "vanilla", [39, 39, 20], cell_growth=0.5)
    write_stream_run(sweep, 1, "no_forget_gate", [3, 12, 7], cell_growth=4.0)
    write_stream_run(sweep, 2, "rnn", [1, 2, 3], cell_growth=None)            # no cell state
    out = write_report([sweep], tmp_path / "reports" / "streams")
    readme = (out / "README.md").read_text()
    plot = "plots/cell_state_continual-reber-stream.png"
    assert "## Long streams" in readme and f"]({plot})" in readme and (out / plot).is_file()
    rows = {line.split(" | ")[1]: line for line in readme.split("## Long streams")[1].splitlines()
            if line.startswith("| continual_reber_stream |")}
    # runs  streams  median  min  max  without error  per run  p  |c| at the end (3 chunk ends: 13, 26, 39)
    assert rows["vanilla"].endswith("| 1 | 3 x 39 | 39 | 20 | 39 | 2/3 | 2 | reference | 1.5 |")
    assert rows["no_forget_gate"].endswith("| 1 | 3 x 39 | 7 | 3 | 12 | 0/3 | 0 | 1.000 | 12 |")
    assert rows["rnn"].endswith("| 1 | 3 x 39 | 2 | 1 | 3 | 0/3 | 0 | 1.000 | – |")
    files = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert regenerate(tmp_path / "reports") == [out]
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == files


def test_long_streams_of_a_tuned_sweep_count_its_confirmation_runs_per_seed(tmp_path):
    """Stage-1 trials (each with other settings) stay out of the table, as out of the statistics; the
    perfect streams are counted per run (Gers et al. score networks) and tested against the reference."""
    from lstm_ablation.report import write_report

    sweep = tmp_path / "sweep"
    write_stream_run(sweep, 0, "vanilla", [0, 0, 0], cell_growth=0.5, stage="tune")     # a trial: not counted
    for seed in range(1, 5):
        write_stream_run(sweep, seed, "vanilla", [39, 39, 39], cell_growth=0.5, seed=seed, stage="confirm")
        write_stream_run(sweep, 10 + seed, "no_forget_gate", [5, 39, 6 + seed][: 2 + seed % 2], cell_growth=4.0,
                         seed=seed, stage="confirm")
    readme = (write_report([sweep], tmp_path / "out") / "README.md").read_text()
    rows = {line.split(" | ")[1]: line for line in readme.split("## Long streams")[1].splitlines()
            if line.startswith("| continual_reber_stream |")}
    # vanilla: 4 runs x 3 perfect streams; NFG: one perfect stream a run (seeds 1-4) and 2 or 3 streams
    assert "| 4 | 12 x 39 | 39 | 39 | 39 | 12/12 | 3, 3, 3, 3 | reference |" in rows["vanilla"]
    # complete separation of 4 vs 4 runs: the exact two-sided p is 2 / C(8, 4) = 0.029
    assert "| 4 | 10 x 39 | 8 | 5 | 39 | 4/10 | 1, 1, 1, 1 | 0.029 |" in rows["no_forget_gate"]
