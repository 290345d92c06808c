"""Write a report directory atomically, and rebuild one from its own committed data.

A report dir holds its data (results.csv, curves.csv, report.json) and what is derived from it
(summary.csv, README.md, tables.tex, plots/). Deriving reads the data back from disk, so a first
build and a later `--regenerate` take exactly the same path and give the same bytes.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from . import literature, render
from .collect import Collection, ReportError, collect_local, launch_command, run_id, runs_root

RUNS_FILE, CURVES_FILE, META_FILE = "results.csv", "curves.csv", "report.json"
DATA_FILES = (RUNS_FILE, CURVES_FILE, META_FILE)
# Optional data: each run's first and final gradient probe (probes.json), when the runs have them.
GRAD_CURVES_FILE, GRAD_SUMMARY_FILE = "gradient_curves.csv", "gradient_summary.csv"
GRAD_CURVE_COLUMNS = ("run_dir", "cell", "task", "seed", "step", "final", "t", "grad_h", "grad_h_ratio",
                      "grad_c", "grad_c_ratio", "cell_abs_mean", "cell_abs_max")
BOOL_COLUMNS = ("higher_is_better", "git_dirty")
# Optional data: the test streams of continual-stream runs (stream.json): report/streams.py.
STREAM_FILES = ("stream_cell.csv", "stream_first_error.csv")
EXPECTATIONS_FILE = "expectations.csv"  # derived: each published expectation beside what was found
EXPECTATIONS_COLUMN = "config.report.expectations"  # each run's resolved study config carries them
# Everything a report writes; any other file in a report dir is the user's and survives a rebuild.
REPORT_NAMES = DATA_FILES + (GRAD_CURVES_FILE, GRAD_SUMMARY_FILE, *STREAM_FILES, "summary.csv", EXPECTATIONS_FILE, "README.md", "tables.tex", "plots")
NUMERIC_COLUMNS = ("seed", "value", "baseline", "solved_threshold", "params", "steps", "duration_s", "stopped_at_step")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def read_runs(path: Path) -> pd.DataFrame:
    # Only empty cells are missing: a variant whose short name is "NA" stays "NA".
    runs = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    for column in BOOL_COLUMNS:  # "True"/"False" text when the column also has empty cells
        runs[column] = runs[column].map({True: True, False: False, "True": True, "False": False})
    for column in ("short", "change", "error", "task", "cell", "task_label", "metric", "run", "status"):
        runs[column] = runs[column].astype(object).where(runs[column].notna(), None)
    return runs


def literature_shorts(runs: pd.DataFrame) -> pd.DataFrame:
    """Each known cell's short name as its conf/cell file gives it now, not as the run recorded it:
    names follow the literature in every report, also one built from runs made before a name was
    corrected (our `vanilla` was once "V", which is Greff et al.'s name for the cell with peepholes)."""
    from ..spec import available_variants, variant_config

    known = {name: variant_config(name).get("short") for name in available_variants()}
    current = runs["cell"].map(lambda cell: known.get(cell))
    return runs.assign(short=current.where(current.notna(), runs["short"]))


def derive(data_dir: Path, target: Path, plots: bool = True) -> None:
    """Everything derived from data_dir's results.csv, curves.csv and report.json, written into target."""
    from . import tuning
    from .stats import summarize

    meta = json.loads((data_dir / META_FILE).read_text())
    every_run = literature_shorts(read_runs(data_dir / RUNS_FILE))
    runs, trials = tuning.split(every_run)  # a tuned sweep: statistics from the confirmation runs only
    if trials is not None and runs.empty:
        raise ReportError(f"no confirmation run yet: a tuned sweep's statistics come from stage 2 only, and its "
                          f"{len(trials)} runs so far are stage-1 trials and re-score runs; expected a sweep whose "
                          "confirmation seeds have started")
    curves = pd.read_csv(data_dir / CURVES_FILE)
    summary = summarize(runs, curves, reference=meta["reference"], alpha=meta["alpha"])
    write_csv(summary, target / "summary.csv")
    expectations = literature.evaluate(meta.get("expectations") or [], summary, runs, meta["alpha"])
    if len(expectations):
        write_csv(expectations, target / EXPECTATIONS_FILE)
    images: dict = {}
    if plots and meta.get("plots", True):
        from .plots import draw_all
        images = draw_all(runs, curves, summary, meta, target)
    text = render.readme(meta, summary, runs, curves, images, expectations, cost=literature.compute(every_run))
    if trials is not None:
        text = tuning.mark(text, trials, runs, list(summary["task_label"].unique()))
        text += tuning.section(trials, target, meta["reference"], plots and meta.get("plots", True), confirm=runs)
    if (data_dir / GRAD_CURVES_FILE).is_file():
        text += gradient_section(data_dir, target, meta, runs, plots and meta.get("plots", True))
    if (data_dir / STREAM_FILES[1]).is_file():
        text += stream_section(data_dir, target, meta, runs, plots and meta.get("plots", True))
    (target / "README.md").write_text(text)
    (target / "tables.tex").write_text(render.latex(summary, meta["reference"], meta["alpha"]))


def statistics_runs(data: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of per-run data (a `run_dir` column) of the runs the statistics are about, each under its
    task label: a tuned sweep's stage-1 trials (each with other settings) would pool a dozen configurations
    into one "seed", and adding at two budgets or learning rates are separate experiments."""
    label = runs.set_index("run")["task_label"]
    return data[data["run_dir"].isin(label.index)].assign(task=lambda d: d["run_dir"].map(label))


def gradient_section(data_dir: Path, target: Path, meta: dict, runs: pd.DataFrame, plots: bool) -> str:
    """README section from the probes: |dL/dh_t| vs t per variant (one plot per task) and the summary numbers."""
    from . import gradients

    curves, summaries = (statistics_runs(pd.read_csv(data_dir / name), runs) for name in (GRAD_CURVES_FILE, GRAD_SUMMARY_FILE))
    lines = ["", "## Gradient flow and gates", "",
             "How much of the loss gradient reaches input step t, relative to the last step it reaches "
             "(|dL/dh_t| / |dL/dh_r|, total derivative through all later steps; dashed: the cell state c; r is "
             "the last step T unless the final steps carry no label, as after associative recall's last query), "
             "on a fixed validation batch, geometric mean over seeds, band = min..max. "
             "`grad_h_log10_ratio` = log10 |dL/dh_0| / |dL/dh_r| at the end of training: very negative means "
             "early inputs no longer shape learning. Gate columns: mean activation; `gate_f_sat_high`: "
             "fraction of forget-gate values > 0.95.", ""]
    if plots:
        from .plots import PNG_METADATA, colours
        palette = colours(list(runs["cell"].dropna().unique()), meta["reference"])
        for task, task_curves in curves.groupby("task", sort=True):
            name = f"plots/gradient_flow_{render.slug(task)}.png"
            gradients.plot_gradient_flow(task_curves, target / name, title=f"{task}: gradient reaching step t",
                                         colours=palette, metadata=PNG_METADATA)
            lines += [f"![gradient flow, {task}]({name})", ""]
    lines += [gradients.summary_markdown(summaries), ""]
    return "\n".join(lines)


def stream_section(data_dir: Path, target: Path, meta: dict, runs: pd.DataFrame, plots: bool) -> str:
    from . import streams
    from .plots import PNG_METADATA, colours

    cells, errors = (statistics_runs(pd.read_csv(data_dir / name), runs) for name in STREAM_FILES)
    palette = colours(list(runs["cell"].dropna().unique()), meta["reference"])
    return streams.section(cells, errors, target, palette, plots, meta["reference"], metadata=PNG_METADATA)


def gradient_data(sweep_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """First and final probe of every run that has a probes.json; run ids relative to the sweeps' parent."""
    from . import gradients

    run_dirs = [d for sweep in sweep_dirs for d in gradients.probe_dirs(sweep)]
    if not run_dirs:
        return None
    root = runs_root(sweep_dirs)
    label = {str(d): run_id(d, root) for d in run_dirs}  # results.csv's run ids: portable, no absolute paths
    curves = gradients.collect_curves(run_dirs)
    curves = pd.concat([gradients.at_step(curves, "first"), gradients.at_step(curves, "final")]).drop_duplicates()
    summaries = gradients.at_step(gradients.collect_summaries(run_dirs), "final")
    curves, summaries = curves.assign(run_dir=curves["run_dir"].map(label)), summaries.assign(run_dir=summaries["run_dir"].map(label))
    keep = [c for c in GRAD_CURVE_COLUMNS if c in curves]
    return (curves[keep].sort_values(["run_dir", "step", "t"]), summaries.sort_values("run_dir"))


def check_replaceable(out_dir: Path) -> None:
    """Never replace a directory that is not a report (a typo in --out must not delete a sweep)."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_FILE).exists())):
        raise ReportError(f"{out_dir}: exists and is not a report directory (no {META_FILE}); "
                          "expected --out to name a new or an existing report directory")


def replace_dir(build: Path, out_dir: Path) -> None:
    """Swap the finished build in for out_dir: readers see the old report or the new one, never half."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
        os.replace(out_dir, old / out_dir.name)
    os.replace(build, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_into(out_dir: Path, fill) -> Path:
    """Run fill(tmp_dir) in a sibling temp dir, then swap it in; on any error leave out_dir untouched.
    Files in out_dir that no report writes (a user's notes) are copied into the new build first."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        fill(tmp)
        for path in sorted(out_dir.iterdir()) if out_dir.is_dir() else []:
            if path.name not in REPORT_NAMES and not (tmp / path.name).exists():
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
        tmp.chmod(0o755)  # mkdtemp makes 0700 dirs; a report is meant to be read and committed
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def expectations_from_runs(runs: pd.DataFrame) -> list[dict]:
    """The study's report.expectations as the runs recorded them (JSON text in results.csv); the
    runs of one report must agree, else the report cannot say which claims it tests."""
    from ..expectations import parse
    from ..spec import ConfigError

    if EXPECTATIONS_COLUMN not in runs:
        return []
    texts = sorted(set(runs[EXPECTATIONS_COLUMN].dropna().astype(str)))
    if len(texts) > 1:
        raise ReportError(f"{EXPECTATIONS_COLUMN}: the runs record {len(texts)} different lists of expectations; "
                          "expected one study per report (or pass --expectations STUDY_YAML)")
    try:
        return parse(json.loads(texts[0])) if texts else []
    except (json.JSONDecodeError, ConfigError) as e:
        raise ReportError(f"{EXPECTATIONS_COLUMN}: {e}") from None


def refresh_index(out_dir: Path) -> None:
    """Keep a generated reports/README.md index next to out_dir current (a hand-written one is left alone)."""
    index = Path(out_dir).parent / "README.md"
    if literature.is_index(index):
        literature.write_index(index.parent)


def write_collection(collection: Collection, out_dir: Path, meta: dict, plots: bool = True,
                     gradients: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                     streams: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Path:
    if meta.get("expectations") is None:
        meta = {**meta, "expectations": expectations_from_runs(collection.runs)}

    def fill(tmp: Path) -> None:
        write_csv(collection.runs, tmp / RUNS_FILE)
        write_csv(collection.curves, tmp / CURVES_FILE)
        if gradients is not None:
            write_csv(gradients[0], tmp / GRAD_CURVES_FILE)
            write_csv(gradients[1], tmp / GRAD_SUMMARY_FILE)
        for frame, name in zip(streams or (), STREAM_FILES):
            write_csv(frame, tmp / name)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        derive(tmp, tmp, plots)
    build_into(out_dir, fill)
    refresh_index(out_dir)
    return Path(out_dir)


def write_report(sweep_dirs: list[Path], out_dir: Path, *, reference: str = "vanilla", alpha: float = 0.05,
                 title: str | None = None, command: str | None = None, plots: bool = True,
                 warn=None, expectations: list[dict] | None = None, from_reports: list[str] = ()) -> Path:
    """Report over local sweep dirs, and the runs selected from committed reports (from_report.py), into
    out_dir (replaced atomically); returns out_dir.

    Raises ReportError (one-line message) when there is nothing to report; then nothing is written.
    `warn(line)` receives one line per job dir without a usable result.json (default: ignored).
    """
    from . import from_report
    from .streams import stream_data

    sweep_dirs = [Path(d) for d in sweep_dirs]
    parts = [from_report.read(spec) for spec in from_reports]
    collection = collect_local(sweep_dirs) if sweep_dirs else None
    gradients, streams = (gradient_data(sweep_dirs), stream_data(sweep_dirs)) if sweep_dirs else (None, None)
    if parts:
        collection = joined(collection, parts)
        gradients = joined_data([gradients, *(p.gradients for p in parts)], ("run_dir", "step", "t"), ("run_dir",))
        streams = joined_data([streams, *(p.streams for p in parts)], ("run_dir",), ("run_dir",))
    for line in collection.warnings:
        (warn or (lambda _: None))(line)
    meta = {
        "title": title or Path(out_dir).name,
        "command": command or " ".join(["lstm-ablate-report", *map(str, sweep_dirs),
                                        *(f"--from-report {spec}" for spec in from_reports), "--out", str(out_dir)]),
        "sources": [*map(str, sweep_dirs), *(p.spec for p in parts)], "reference": reference, "alpha": alpha, "plots": plots,
        "expectations": expectations,  # None: the study's own, from the runs' recorded config
        "launch": {**{str(d): launched for d in sweep_dirs if (launched := launch_command(d))},
                   **{p.spec: p.launch for p in parts if p.launch}},
    }
    return write_collection(collection, out_dir, meta, plots, gradients, streams)


def joined(collection: Collection | None, parts: list) -> Collection:
    """The local runs and the runs taken from committed reports, labelled together (a task setting that
    differs between them splits the task, as between two sweeps)."""
    from .collect import finish

    runs = [collection.runs.drop(columns="task_label")] if collection is not None else []
    runs += [p.runs for p in parts]
    rows = pd.concat(runs, ignore_index=True)
    # one job reached through two sources (its sweep, and a report that holds it) has other ids and sweep
    # paths there, but its own folder name and recorded wall time. Only across sources: within one, two
    # hand-made runs of equal folder name and duration are real (collect.refuse_copies compares records).
    job = (rows[["task", "cell", "seed"]].astype(str).agg("/".join, axis=1) + "/" + rows["run"].str.rsplit("/", n=1).str[-1]
           + "@" + pd.to_numeric(rows["duration_s"], errors="coerce").round(3).astype(str))
    twice = job.duplicated(keep=False) & rows["duration_s"].notna()
    if twice.any():
        a, b = rows.loc[twice & (job == job[twice].iloc[0]), "run"].iloc[:2]
        raise ReportError(f"{a} and {b} are the same job (folder name, seed and wall time) from two sources: its seed "
                          "would count twice; give each run once (a --from-report selection can leave a cell out)")
    same_id = rows["run"][rows["run"].duplicated()]
    if len(same_id):  # two reports of the same folder name, say
        raise ReportError(f"{same_id.iloc[0]}: two runs with this id from two sources; expected each id once")
    curves = [collection.curves] if collection is not None else []
    return finish(rows, curves + [p.curves for p in parts], collection.warnings if collection is not None else [])


def joined_data(frames: list, *sort_keys: tuple[str, ...]) -> tuple[pd.DataFrame, ...] | None:
    """Probe or stream tables of several sources, one per file, in run order; None where no source has any."""
    present = [f for f in frames if f is not None]
    if not present:
        return None
    return tuple(pd.concat([f[i] for f in present], ignore_index=True).sort_values(list(keys), kind="stable")
                 for i, keys in enumerate(sort_keys))


def check_runs(path: Path, report: Path) -> None:
    """A results.csv edited by hand (no rows, text in a number column) is refused in one line."""
    runs = read_runs(path)
    if runs.empty:
        raise ReportError(f"{report}: {RUNS_FILE} has no runs; expected one row per run as lstm-ablate-report writes it")
    for column in NUMERIC_COLUMNS:
        if column in runs.columns:
            bad = pd.to_numeric(runs[column], errors="coerce").isna() & runs[column].notna()
            if bad.any():
                raise ReportError(f"{report}: {RUNS_FILE} column {column!r} row {int(bad.idxmax()) + 2}: "
                                  f"{runs[column][bad].iloc[0]!r} is not a number; expected the file as lstm-ablate-report writes it")


def find_reports(root: Path) -> list[Path]:
    return sorted({p.parent for p in Path(root).rglob(META_FILE) if (p.parent / RUNS_FILE).is_file()})


def regenerate(root: Path, plots: bool = True, expectations: list[dict] | None = None) -> list[Path]:
    """Rebuild every report under root (or root itself) from its committed data; runs nothing.

    `expectations` (one report only) replaces the published expectations kept in its report.json:
    how a report made before its study listed them gets them. When root is a directory of reports,
    its README.md index is rebuilt too.
    """
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: no such directory; expected a directory of reports (each with {META_FILE} and {RUNS_FILE})")
    reports = find_reports(root)
    if not reports:
        raise ReportError(f"{root}: no report found; expected report directories holding {META_FILE} and {RUNS_FILE}")
    if expectations is not None and len(reports) != 1:
        raise ReportError(f"{root}: --expectations applies to one report; found {len(reports)} under it; "
                          "expected the path of a single report directory")
    for report in reports:
        missing = [name for name in DATA_FILES if not (report / name).is_file()]
        if missing:
            raise ReportError(f"{report}: missing {', '.join(missing)}; expected the data files {', '.join(DATA_FILES)}")

        def fill(tmp: Path, report: Path = report) -> None:
            for name in DATA_FILES + (GRAD_CURVES_FILE, GRAD_SUMMARY_FILE, *STREAM_FILES):
                if (report / name).is_file():
                    shutil.copyfile(report / name, tmp / name)
            if expectations is not None:
                meta = json.loads((tmp / META_FILE).read_text())
                (tmp / META_FILE).write_text(json.dumps({**meta, "expectations": expectations}, indent=2, sort_keys=True) + "\n")
            try:
                check_runs(tmp / RUNS_FILE, report)
                derive(tmp, tmp, plots)
            except ReportError:
                raise  # already its own line (a ValueError too, but not to be cut short below)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, json.JSONDecodeError, KeyError, ValueError, TypeError) as e:
                raise ReportError(f"{report}: cannot read its data ({type(e).__name__}: {' '.join(str(e).split())[:150]}); "
                                  "expected results.csv, curves.csv and report.json as lstm-ablate-report writes them") from None
        build_into(report, fill)
    index = root / "README.md"
    if root in reports:
        refresh_index(root)
    elif not index.exists() or literature.is_index(index):  # never overwrite a README someone wrote
        literature.write_index(root)
    return reports
