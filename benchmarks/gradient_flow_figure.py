"""The README figure: how much gradient reaches early steps, tanh RNN vs vanilla LSTM, adding problem T=100.

    python benchmarks/gradient_flow_figure.py            # ~2-4 min on 2 CPU cores

Trains each cell for a few hundred steps (seeds 0..2) with SequenceModel and the GradientProbe callback
in-process, then writes into reports/gradient_flow/:
    rnn_vs_vanilla.png   |dL/dh_t| / |dL/dh_T| (and |dL/dc_t| for the LSTM) vs t, log axis,
                         geometric mean over seeds, at initialisation and after training
    rnn_vs_vanilla.csv   the plotted numbers: cell, probe, step, quantity, t, mean, min, max, n_seeds
    summary.md           the summary-number table (mean ± std over seeds, final probe)
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch

from lstm_ablation.model import SequenceModel, batch_loader
from lstm_ablation.probe_callback import GradientProbe
from lstm_ablation.report import gradients
from lstm_ablation.report.plots import PNG_METADATA, colours  # the reports' colour per variant
from lstm_ablation.spec import variant_config
from lstm_ablation.tasks import build_task

CELLS = ("rnn", "vanilla")
TASK = {"name": "adding", "seq_len": 100, "n_train": 10000, "n_val": 1000, "n_test": 10, "data_seed": 0}


def train_with_probes(cell: str, seed: int, steps: int, every: int, run_dir: Path) -> None:
    pl.seed_everything(seed, verbose=False)
    task = build_task(TASK, seed=0)
    model = SequenceModel(variant_config(cell), TASK, 64, lr=1e-3, data=task)
    x, y = task.splits["val"]
    probe = GradientProbe((x[:128], y[:128]), every, run_dir, labels={"cell": cell, "task": "adding", "seed": seed})
    trainer = pl.Trainer(max_steps=steps, gradient_clip_val=1.0, logger=False, callbacks=[probe], limit_val_batches=0,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, batch_loader(*task.splits["train"], 64, shuffle=True, seed=seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("reports/gradient_flow"))
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the per-run probes.json here (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared machine: oversubscribed threads only spin; results do not depend on it
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs_dir or Path(tmp)
        dirs = []
        for cell in CELLS:
            for seed in args.seeds:
                dirs.append(runs / f"{cell}-s{seed}")
                train_with_probes(cell, seed, args.steps, args.every, dirs[-1])
                print(f"trained {cell} seed {seed}", flush=True)
        curves, summaries = gradients.collect_curves(dirs), gradients.collect_summaries(dirs)

    args.out.mkdir(parents=True, exist_ok=True)
    png = gradients.plot_gradient_flow(curves, args.out / "rnn_vs_vanilla.png", steps=("first", "final"), cells=CELLS,
                                       title=f"Adding problem T=100, hidden 64: gradient reaching step t ({len(args.seeds)} seeds)",
                                       colours=colours(list(CELLS), "vanilla"), metadata=PNG_METADATA)
    tables = []
    for probe in ("first", "final"):
        steps = gradients.at_step(curves, probe).groupby("cell")["step"].first()
        for quantity in ("grad_h_ratio", "grad_c_ratio"):
            m = gradients.mean_curves(curves, quantity, probe)
            tables.append(m.assign(probe=probe, step=m["cell"].map(steps), quantity=quantity))
    numbers = pd.concat(tables)[["cell", "probe", "step", "quantity", "t", "mean", "min", "max", "n_seeds"]]
    numbers.to_csv(args.out / "rnn_vs_vanilla.csv", index=False, float_format="%.4g")
    table = {probe: gradients.summary_markdown(summaries, step=probe) for probe in ("first", "final")}
    (args.out / "summary.md").write_text(
        f"Summary numbers, adding T=100, hidden 64, seeds {args.seeds}; mean ± std over seeds.\n\n"
        f"At initialisation (step 0):\n\n{table['first']}\n\nAfter {args.steps} training steps:\n\n{table['final']}\n")
    print(f"wrote {png}, {args.out / 'rnn_vs_vanilla.csv'}, {args.out / 'summary.md'}")
    print(table["first"], table["final"], sep="\n\n")


if __name__ == "__main__":
    main()
