"""Fair comparisons: each cell gets its own tuned settings (Optuna), then fresh seeds decide.

    lstm-ablate -m experiment=seed_gates_tuned                  # the study, search space in its YAML
    lstm-ablate -m hydra/sweeper=tune cell=vanilla,rnn 'tune.space={optim.lr: "tag(log, interval(1e-4, 1e-1))"}'

Greff et al. (2017)'s protocol on current tools. The sweeper's grid (`hydra.sweeper.params` and
command-line sweeps, Hydra's override grammar) names the points to compare, usually the cells:
- stage 1, tune: each grid point gets its own Optuna study (ask-and-tell) over `tune.space`, written
  in Hydra's sweep grammar (`interval(a, b)`, `tag(log, interval(a, b))`, `int(interval(a, b))`,
  `choice(a, b, ...)`); `tune.n_trials` trials per point, all on the tuning seed `seed`, so trials
  differ only in their settings. Objective: the task's headline validation metric (best over
  training) with its direction; a diverged trial scores the memoryless baseline, never NaN.
- between them, re-score (`tune.rescore.top_k` > 0; off by default): best-of-N on one seed favours the
  trial that was lucky on that seed (the winner's curse: a setting that solved the tuning seed but 4
  of 10 fresh ones), so the `top_k` best trials are each run again on `tune.rescore.seeds` more seeds
  (the integers after the confirmation seeds) and the one with the best mean over the tuning seed and
  these goes on to stage 2. A candidate with a failed re-score run ranks after every complete one.
- ties (`tune.tie_break`): an accuracy that saturates (1.0 on several trials) cannot tell trials apart,
  so by default the lower best validation loss decides, among the top_k and in the re-score's pick
  (`val_loss`); `earliest` leaves it to the trial number, which under random search is a random draw.
- stage 2, confirm: the chosen trial of each point (the best, or the re-score's pick) is re-run on
  `tune.confirm.seeds` fresh seeds (the first integers other than the tuning seed). The report's
  verdicts come from these runs only.
- pruning (`tune.pruner`: median | hyperband, off by default): stage-1 trials report their
  validation value at each validation and stop when the pruner says so (tune_pruning.py); a pruned
  trial is told PRUNED and holds its slot like a finished one. Stage 2 is never pruned.
Every trial is an ordinary job (result.json, W&B run, probes; `tune.stage` = tune | confirm in its
config), launched `tune.n_jobs` at a time through the configured hydra/launcher.

Storage: `tune.storage` (any SQLAlchemy URL), default an SQLite file in the sweep dir. Re-running the
same command on the same sweep dir (or storage) resumes: finished trials are kept; a trial whose
worker died, or whose job was interrupted (SIGTERM), runs again in its own job dir with its own
overrides, so it continues from its last checkpoint; a job that finished while its sweeper was being
killed is told from its result.json, not re-run. Several workers may share one
storage: trials are numbered by the database, and a trial runs only if its number ranks within the
budget among the live trials (`claims`), so no slot and no confirmation seed is ever run twice.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from .results import RESULT_FILE
from .spec import ConfigError

log = logging.getLogger("lstm_ablation")
SAMPLERS = ("random", "tpe")
STAGES = ("tune", "rescore", "confirm")  # rescore: only when tune.rescore.top_k > 0
PRUNERS = ("median", "hyperband")  # tune.pruner (tune_pruning.py)
TIE_BREAKS = ("val_loss", "earliest")  # tune.tie_break: what decides between trials with the same objective
TIE_METRIC = "val/loss_best"
FORBIDDEN = ("seed", "name", "tune", "hydra", "wandb", "report", "cell.name", "cell.kind", "task.name")
# A bias parameter exists only where its gate is learned: it is left out of the search for other cells.
BIAS_GATES = {"cell.input_bias": "input_gate", "cell.forget_bias": "forget_gate", "cell.output_bias": "output_gate"}
# A sweep in which no cell has the gate skips its bias (the GRU's update gate has no LSTM counterpart field).
GATE_NAMES = {**{key: gate.split("_")[0] for key, gate in BIAS_GATES.items()}, "cell.update_bias": "GRU's update"}
HEARTBEAT_S, GRACE_S, POLL_S = 30.0, 300.0, 2.0   # another machine's trial is stale after GRACE_S without a beat
SPACE_FORMS = "interval(low, high), tag(log, interval(low, high)), int(interval(low, high)), choice(a, b, ...)"


# ---------------------------------------------------------------------------- the objective

def objective(record: dict) -> float | None:
    """The value a trial is ranked by: best validation value of the task's headline metric.
    Diverged -> the memoryless baseline (the model is no better than ignoring the input); failed -> None."""
    if record.get("status") == "diverged":
        return record.get("baseline")
    if record.get("status") != "completed":
        return None
    value = (record.get("metrics") or {}).get(f"val/{record.get('metric')}_best")
    return float(value) if value is not None and math.isfinite(value) else None


# ---------------------------------------------------------------------------- the search space

def distribution(key: str, text: str):
    """One `tune.space` entry (Hydra sweep grammar) -> an Optuna distribution; ConfigError on bad input."""
    import optuna

    where = f"tune.space.{key}"
    try:
        override = OverridesParser.create().parse_override(f"{key}={text}")
    except HydraException as e:
        raise ConfigError(f"{where}: cannot parse {text!r} ({' '.join(str(e).split())[:120]}); allowed: {SPACE_FORMS}") from None
    value = override.value()
    if isinstance(value, ChoiceSweep) and value.list:
        if any(isinstance(v, (dict, list)) for v in value.list):
            raise ConfigError(f"{where}: choice values must be numbers, strings or booleans; got {text!r}")
        return optuna.distributions.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        raise ConfigError(f"{where}: range(...) is not a search range here; allowed: {SPACE_FORMS}")
    if not isinstance(value, IntervalSweep) or value.start is None or value.end is None:
        raise ConfigError(f"{where}: got {text!r}; allowed: {SPACE_FORMS}")
    low, high, use_log = value.start, value.end, "log" in value.tags
    if unknown := sorted(set(value.tags) - {"log"}):
        raise ConfigError(f"{where}: unknown tag {unknown[0]!r}; allowed: log")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"{where}: {text!r} needs low < high (both finite); got low={low}, high={high}")
    if use_log and low <= 0:
        raise ConfigError(f"{where}: a log range needs 0 < low < high; got low={low}")
    if isinstance(low, int) and isinstance(high, int):
        return optuna.distributions.IntDistribution(low, high, log=use_log)
    return optuna.distributions.FloatDistribution(float(low), float(high), log=use_log)


def parse_space(space: Any) -> dict[str, Any]:
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"tune.space: got {space!r}; a tuned sweep needs at least one parameter, "
                          "e.g. optim.lr: tag(log, interval(1e-4, 1e-1))")
    out = {}
    for key, text in space.items():
        if any(key == f or key.startswith(f + ".") for f in FORBIDDEN):
            raise ConfigError(f"tune.space.{key}: cannot be tuned (the sweeper sets it); allowed: model.*, optim.*, trainer.*, cell.<spec field>, task.<size>")
        if not isinstance(text, str):
            raise ConfigError(f"tune.space.{key}: got {text!r}; allowed: {SPACE_FORMS}")
        out[key] = distribution(key, text)
    return out


def applies(key: str, cfg: DictConfig) -> bool:
    """Whether a parameter exists for this job: a cell without an input gate has no b_i to tune, and
    chrono init (JANET) sets b_f ~ log U[1, T_max - 1] and b_i = -b_f itself, so neither is searched."""
    if key in BIAS_GATES:
        if key in ("cell.forget_bias", "cell.input_bias") and cfg.cell.get("chrono_t_max"):
            return False
        return (cfg.cell.get("kind", "lstm") == "lstm" and cfg.cell.get(BIAS_GATES[key]) == "learned"
                and key.split(".", 1)[1] in cfg.cell)
    return OmegaConf.select(cfg, key, default="__missing__") != "__missing__"


def check_settings(tune: DictConfig) -> None:
    def count(field: str, value: Any, least: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"tune.{field}: got {value!r}; allowed: an integer >= {least}")

    count("n_trials", tune.n_trials, 1)
    count("n_jobs", tune.n_jobs, 1)
    count("confirm.seeds", tune.confirm.seeds, 1)
    count("rescore.top_k", tune.rescore.top_k, 0)
    count("rescore.seeds", tune.rescore.seeds, 1)
    count("seed", tune.seed, 0)
    if tune.sampler not in SAMPLERS:
        raise ConfigError(f"tune.sampler: got {tune.sampler!r}; allowed: {', '.join(SAMPLERS)}")
    if tune.storage is not None and (not isinstance(tune.storage, str) or "://" not in tune.storage):
        raise ConfigError(f"tune.storage: got {tune.storage!r}; allowed: null (SQLite in the sweep dir) or an SQLAlchemy URL such as sqlite:///tune.db")
    if tune.pruner is not None and tune.pruner not in PRUNERS:
        raise ConfigError(f"tune.pruner: got {tune.pruner!r}; allowed: null (no pruning), {', '.join(PRUNERS)}")
    count("pruner_startup_trials", tune.pruner_startup_trials, 0)
    count("pruner_warmup_steps", tune.pruner_warmup_steps, 0)
    if tune.tie_break not in TIE_BREAKS:
        raise ConfigError(f"tune.tie_break: got {tune.tie_break!r}; allowed: {', '.join(TIE_BREAKS)}")


def storage_url(storage: str | None, sweep_dir: Path) -> str:
    """`tune.storage`, or the SQLite file in the sweep dir: the sweeper's and its trial jobs' (pruning)."""
    return storage or f"sqlite:///{(Path(sweep_dir) / 'optuna.db').resolve()}"


def fresh_seeds(tuning_seed: int, n: int) -> list[int]:
    """The first n integers other than the tuning seed: the confirmation seeds, then the re-score seeds."""
    return [s for s in range(tuning_seed + n + 1) if s != tuning_seed][:n]


def format_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


# ---------------------------------------------------------------------------- trial bookkeeping

def worker_id() -> str:
    """host:pid of this sweeper process (computed per call: a forked worker is another process)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def finished(trial) -> bool:
    """A trial whose job ran to its end (any status, pruned included): it holds its slot for good."""
    return trial.state.name in ("COMPLETE", "PRUNED") or (trial.state.name == "FAIL" and "job_status" in trial.user_attrs)


def abandoned(trial) -> bool:
    """Failed without a job outcome: its worker died, or it was asked beyond the budget. Holds nothing."""
    return trial.state.name == "FAIL" and "job_status" not in trial.user_attrs


def claims(trials: list, pool: list) -> dict[int, Any]:
    """Trial number -> the slot (stage 1: an index; stage 2: a seed) it holds, None if it holds none.

    A deterministic replay over the live trials in number order, so every worker that sees the same
    trials agrees, whatever order they were asked in: a trial keeps the slot it was given; a new one
    takes the lowest slot no earlier trial holds; beyond the pool it holds nothing (surplus).
    """
    held, out = set(), {}
    for t in sorted((t for t in trials if not abandoned(t)), key=lambda t: t.number):
        slot = t.user_attrs.get("slot")
        if slot is None or slot in held:
            slot = next((s for s in pool if s not in held), None)
        if slot is not None:
            held.add(slot)
        out[t.number] = slot
    return out


def stale(trial, now: float) -> bool:
    """A running trial nobody will finish: its worker on this machine is gone, or it stopped beating."""
    if trial.state.name != "RUNNING":
        return False
    host, _, pid = str(trial.user_attrs.get("worker", ":")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    started = trial.datetime_start.timestamp() if trial.datetime_start else now  # just asked: no beat yet
    return now - max(float(trial.user_attrs.get("heartbeat", 0.0)), started) > GRACE_S


@dataclass
class Job:
    """One trial of one study, launched as one Hydra job."""
    point: "Point"
    stage: str
    trial: Any            # optuna.Trial (RUNNING, owned by this worker)
    slot: Any
    overrides: list[str]
    job_dir: Path


@dataclass
class Point:
    """One point of the grid: its overrides, its two studies and what it tunes."""
    overrides: list[str]           # every override of its jobs (Hydra recomposes each job from these)
    key: list[str]                 # the swept ones: what names its studies
    label: str
    seed: int                      # the tuning seed
    space: dict[str, Any]          # only the parameters that exist for this point
    confirm_seeds: list[int]
    direction: str = "minimize"    # the task's: maximize for accuracies
    studies: dict[str, Any] = field(default_factory=dict)   # stage -> optuna.Study
    top_k: int = 0                 # re-score the top_k stage-1 trials (0: confirm the best-of-N)
    rescore_seeds: list[int] = field(default_factory=list)
    tie_break: str = "earliest"    # tune.tie_break
    unconfirmed_pick: tuple[int, int] | None = None   # (confirmed trial, re-score's pick) when they differ


def tell(study, trial_id: int, record: dict | None, error: str | None) -> None:
    """Record a job's outcome on its trial: COMPLETE with the objective, PRUNED (with its last reported
    value, as Optuna's own tell does), or FAIL with the error."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage  # the public Study.tell needs the Trial object; after a restart we hold only ids
    status = (record or {}).get("status", "failed")
    value = objective(record) if record else None
    try:
        storage.set_trial_user_attr(trial_id, "job_status", status)
        if record and (loss := tie_loss(record)) is not None:
            storage.set_trial_user_attr(trial_id, "val_loss_best", loss)
        if record and record.get("error") or error:
            storage.set_trial_user_attr(trial_id, "error", str(error or record.get("error"))[:500])
        if status == "pruned":
            trial = storage.get_trial(trial_id)
            last = trial.intermediate_values.get(trial.last_step) if trial.last_step is not None else None
            storage.set_trial_state_values(trial_id, TrialState.PRUNED, [last] if last is not None and math.isfinite(last) else None)
        elif value is None:
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        else:
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])
    except UpdateFinishedTrialError:  # another worker took it for dead (no beat for GRACE_S) and asked it again
        log.warning("tune: trial id %d was already closed by another worker; its result stays on disk only", trial_id)


def read_record(job_dir: Path) -> dict | None:
    try:
        return json.loads((job_dir / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None


def reap(study, room: int = 0) -> list:
    """Trials left running by a dead worker. One whose job finished is told from its result.json. One
    whose job did not finish (killed: no record; SIGTERM/SIGINT: an `interrupted` record) runs again
    in its own job dir with its own overrides, so it continues from its last checkpoint: up to `room`
    of them are taken over by this worker and returned (the rest wait for the next call). A trial
    asked before overrides were stored is marked failed, its dir removed and its parameters asked again."""
    from optuna.trial import TrialState

    now, again = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not stale(t, now):
            continue
        job_dir = Path(t.user_attrs.get("job_dir", "/nonexistent"))
        record = read_record(job_dir)
        if record is not None and record.get("status") != "interrupted":
            log.info("tune: trial %d of %s finished while its sweeper was stopped: told from %s", t.number, study.study_name, job_dir)
            tell(study, t._trial_id, record, None)
            continue
        if "overrides" in t.user_attrs:
            if len(again) < room:
                log.warning("tune: trial %d of %s was interrupted (worker %s): run again in %s, from its last checkpoint",
                            t.number, study.study_name, t.user_attrs.get("worker"), job_dir)
                study._storage.set_trial_user_attr(t._trial_id, "worker", worker_id())
                study._storage.set_trial_user_attr(t._trial_id, "heartbeat", time.time())
                again.append(t)
            continue
        log.warning("tune: trial %d of %s was interrupted (worker %s): marked failed, asked again",
                    t.number, study.study_name, t.user_attrs.get("worker"))
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if job_dir.is_dir():
            shutil.rmtree(job_dir, ignore_errors=True)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
    return again


def rerun(point: "Point", stage: str, study, trial) -> "Job":
    """The Job that runs an interrupted trial again: same overrides, same dir (train.py resumes it)."""
    import optuna

    return Job(point, stage, optuna.trial.Trial(study, trial._trial_id), trial.user_attrs.get("slot"),
               list(trial.user_attrs["overrides"]), Path(trial.user_attrs["job_dir"]))


class Heartbeat:
    """Stamps this worker's running trials while their jobs run, so other machines see them alive."""

    def __init__(self) -> None:
        self.trials: list[tuple[Any, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            for storage, trial_id in list(self.trials):
                try:
                    storage.set_trial_user_attr(trial_id, "heartbeat", time.time())
                except Exception as e:  # noqa: BLE001 -- a missed beat is retried; the storage may be busy
                    log.debug("tune: heartbeat failed: %s", e)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()


# ---------------------------------------------------------------------------- the loop

def plan(point: Point, room: int, n_trials: int, sweep_dir: Path) -> tuple[list[Job], bool]:
    """Up to `room` new jobs of this point, and whether the point is done (both stages finished)."""
    tune_study, confirm_study = point.studies["tune"], point.studies["confirm"]
    # an interrupted trial runs again first; the room it leaves goes to new trials of the same stage, so a
    # resumed sweep with n_jobs > 1 does not run its one cut job alone
    again = [rerun(point, "tune", tune_study, t) for t in reap(tune_study, room)]
    live = [t for t in tune_study.get_trials(deepcopy=False) if not abandoned(t)]
    need = n_trials - sum(t.state.name != "WAITING" for t in live)  # ask() runs a waiting (re-asked) trial first
    if again or need > 0:
        return again + ask(point, "tune", tune_study, min(room - len(again), need), list(range(n_trials)), sweep_dir), False
    if not all(finished(t) for t in live):
        return [], False  # another worker's trials are still running: stage 2 waits for the best of all
    if not any(t.state.name == "COMPLETE" for t in live):
        log.error("tune: %s: no trial of %d finished with a value (all failed); nothing to confirm", point.label, len(live))
        return [], True
    if point.top_k:
        rescore_study = point.studies["rescore"]
        again = [rerun(point, "rescore", rescore_study, t) for t in reap(rescore_study, room)]
        pool = [f"t{t.number}-s{s}" for t in candidates(point) for s in point.rescore_seeds]
        live = [t for t in rescore_study.get_trials(deepcopy=False) if not abandoned(t)]
        need = len(pool) - sum(t.state.name != "WAITING" for t in live)
        if again or need > 0:
            return again + ask(point, "rescore", rescore_study, min(room - len(again), need), pool, sweep_dir), False
        if not all(finished(t) for t in live):
            return [], False  # the confirmation waits for every candidate's runs
    again = [rerun(point, "confirm", confirm_study, t) for t in reap(confirm_study, room)]
    live = [t for t in confirm_study.get_trials(deepcopy=False) if not abandoned(t)]
    pick = chosen(point).number
    if other := sorted({source(t) for t in live} - {pick, None}):
        # a sweep confirmed before it was re-scored, and the re-score picks another trial: its seeds stay the
        # confirmed trial's (never two trials' seeds in one cell); the pick is reported for a check of its own
        point.unconfirmed_pick = (other[0], pick)
        return again, not again  # a cut run of the confirmed trial still finishes first
    need = len(point.confirm_seeds) - sum(t.state.name != "WAITING" for t in live)
    if again or need > 0:
        return again + ask(point, "confirm", confirm_study, min(room - len(again), need), point.confirm_seeds, sweep_dir), False
    return [], all(finished(t) for t in live)


def tie_loss(record: dict) -> float | None:
    """A finished job's best validation loss (what `tune.tie_break: val_loss` compares); None if it has none."""
    value = (record.get("metrics") or {}).get(TIE_METRIC)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def tie_key(trial, rule: str) -> float:
    """What orders trials with the same objective: their best validation loss (lower first; from the trial's
    user attrs, or its record for a trial told before they held it), or nothing under `earliest`."""
    if rule != "val_loss":
        return 0.0
    loss = trial.user_attrs.get("val_loss_best")
    if loss is None and (record := read_record(Path(trial.user_attrs.get("job_dir", "/nonexistent")))):
        loss = tie_loss(record)
    return math.inf if loss is None else float(loss)


def ranked(point: Point) -> list:
    """The completed stage-1 trials, best first (ties: `tune.tie_break`, then the earlier trial)."""
    done = [t for t in point.studies["tune"].get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    sign = -1.0 if point.direction == "maximize" else 1.0
    return sorted(done, key=lambda t: (sign * t.value, tie_key(t, point.tie_break), t.number))


def candidates(point: Point) -> list:
    """The top_k trials the re-score runs again."""
    return ranked(point)[: point.top_k]


def chosen(point: Point):
    """The stage-1 trial stage 2 confirms: the best-of-N, or with re-scoring the candidate with the best
    mean over the tuning seed and the re-score seeds. Deterministic from the storage, so every worker
    and every resumed sweep agrees."""
    if not point.top_k:
        return ranked(point)[0]
    scores, ties = {}, {}
    for t in point.studies["rescore"].get_trials(deepcopy=False):
        if finished(t):
            scores.setdefault(source(t), []).append(t.value if t.state.name == "COMPLETE" else None)
            ties.setdefault(source(t), []).append(tie_key(t, point.tie_break))
    sign = -1.0 if point.direction == "maximize" else 1.0

    def rank(i_trial):  # complete candidates first, then by the mean of the values a candidate has, then the tie rule's mean
        i, trial = i_trial
        values = [trial.value, *scores.get(trial.number, [])]
        complete = None not in values and len(values) == 1 + len(point.rescore_seeds)
        known = [v for v in values if v is not None]  # a failed run has no value (not 0: for a loss 0 is the best)
        tie = [tie_key(trial, point.tie_break), *ties.get(trial.number, [])]
        return (not complete, sign * sum(known) / len(known), sum(tie) / len(tie), i)

    return min(enumerate(candidates(point)), key=rank)[1]


def source(trial) -> int | None:
    """The stage-1 trial a confirmation (or re-score) trial runs: from the overrides it was launched with,
    or (a sweep made before trials stored their overrides) from its job's record."""
    found = next((int(o.split("=", 1)[1]) for o in trial.user_attrs.get("overrides", []) if o.startswith("tune.trial=")), None)
    if found is None and (record := read_record(Path(trial.user_attrs.get("job_dir", "/nonexistent")))):
        found = ((record.get("config") or {}).get("tune") or {}).get("trial")
    return found


def consistent(point: Point) -> None:
    """A re-scored sweep resumed without re-scoring would confirm the best-of-N beside the re-score's pick
    on one cell's seeds: ConfigError (one line) before any job. (The reverse is allowed: re-scoring a sweep
    confirmed without it runs the re-score and reports the pick if it is not the confirmed trial.)"""
    confirmed = sorted({source(t) for t in point.studies["confirm"].get_trials(deepcopy=False) if not abandoned(t)} - {None})
    if not confirmed:
        return
    if not point.top_k and confirmed != [best := ranked(point)[0].number]:
        raise ConfigError(f"tune.rescore.top_k: {point.label} was confirmed with trial {confirmed[0]}, not its best-of-N "
                          f"trial {best} (it was re-scored, or ranked under another tune.tie_break); allowed: the sweep's "
                          "own tune.rescore and tune.tie_break settings, or a new sweep dir")


def suggest(trial, name: str, d) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    if isinstance(d, FloatDistribution):
        return trial.suggest_float(name, d.low, d.high, log=d.log)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_categorical(name, d.choices)


def ask(point: Point, stage: str, study, n: int, pool: list, sweep_dir: Path) -> list[Job]:
    from optuna.trial import TrialState

    if n <= 0:  # no room left beside the trials run again
        return []
    asked = []
    for _ in range(n):
        trial = study.ask()
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("heartbeat", time.time())
        asked.append(trial)
    slots = claims(study.get_trials(deepcopy=False), pool)
    jobs = []
    best = chosen(point) if stage == "confirm" else None
    by_number = {t.number: t for t in point.studies["tune"].get_trials(deepcopy=False)} if stage == "rescore" else {}
    for trial in asked:
        slot = slots.get(trial.number)
        if slot is None:  # asked beyond the budget while another worker asked too: give it back
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        trial.set_user_attr("slot", slot)
        if stage == "tune":
            params = {k: suggest(trial, k, d) for k, d in point.space.items()}
            seed, name, source = point.seed, f"tune-{point.label}-t{trial.number}", trial.number
        elif stage == "rescore":  # slot "t<stage-1 trial>-s<seed>"
            number, seed = (int(part[1:]) for part in slot.split("-"))
            params, name, source = by_number[number].params, f"rescore-{point.label}-t{number}-s{seed}", number
        else:
            params, seed, name, source = best.params, slot, f"confirm-{point.label}-c{trial.number}-s{slot}", best.number
        job_dir = sweep_dir / name
        trial.set_user_attr("job_dir", str(job_dir))
        overrides = [*point.overrides, *(f"{k}={format_value(v)}" for k, v in params.items()), f"seed={seed}",
                     f"tune.stage={stage}", f"tune.trial={source}", f"hydra.sweep.subdir={name}"]
        if stage == "tune":  # where the job reports its validations when pruning is on (tune_pruning.py)
            overrides.append(f"tune.study_id={study._study_id}")
        trial.set_user_attr("overrides", overrides)  # an interrupted trial runs again with exactly these (reap)
        jobs.append(Job(point, stage, trial, slot, overrides, job_dir))
    return jobs


def run(points: list[Point], n_trials: int, n_jobs: int, sweep_dir: Path,
        launch: Callable[[list[list[str]]], list[Any]]) -> int:
    """Stage 1 then stage 2 for every point, `n_jobs` jobs per launch; returns the number of points
    left without a confirmation (all their trials failed)."""
    done: set[int] = set()
    unconfirmed = 0
    with Heartbeat() as beat:
        while len(done) < len(points):
            batch: list[Job] = []
            for i, point in enumerate(points):
                if i in done or len(batch) >= n_jobs:
                    continue
                jobs, finished_point = plan(point, n_jobs - len(batch), n_trials, sweep_dir)
                batch += jobs
                if finished_point:
                    done.add(i)
                    unconfirmed += not point.studies["confirm"].get_trials(deepcopy=False)
            if not batch:
                if len(done) < len(points):
                    time.sleep(POLL_S)  # waiting for another worker's trials
                continue
            beat.trials = [(j.trial.study._storage, j.trial._trial_id) for j in batch]
            log.info("tune: launching %d job(s): %s", len(batch), ", ".join(j.job_dir.name for j in batch))
            returns = launch([j.overrides for j in batch])
            for job, ret in zip(batch, returns):
                error = None
                if getattr(ret, "status", None) is not None and ret.status.name == "FAILED":
                    error = f"{type(ret._return_value).__name__}: {ret._return_value}"
                record = read_record(job.job_dir)
                tell(job.trial.study, job.trial._trial_id, record, error if record is None else None)
                if record is None and error is None:
                    tell(job.trial.study, job.trial._trial_id, None, f"no {RESULT_FILE} in {job.job_dir}")
            beat.trials = []
    return unconfirmed


# ---------------------------------------------------------------------------- Hydra's Sweeper interface

def study_name(cfg: DictConfig, point: list[str], stage: str) -> str:
    return f"{cfg.name}/{' '.join(point) or 'default'}/{stage}"


def direction(job_cfg: DictConfig) -> str:
    """The task's headline metric direction, from a tiny instance of the task (no full data set)."""
    from .tasks import build_task

    task = OmegaConf.to_container(job_cfg.task, resolve=True)
    small = {k: min(v, 16) if k.startswith("n_") and isinstance(v, int) else v for k, v in task.items()}
    try:
        return "maximize" if build_task(small, seed=0).higher_is_better else "minimize"
    except Exception:  # noqa: BLE001 -- a task that needs its full size to build: build it as configured
        pass
    try:
        return "maximize" if build_task(task, seed=0).higher_is_better else "minimize"
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 -- e.g. MNIST files missing: one line, before any job
        raise ConfigError(f"task: cannot build {task.get('name')!r} to learn its metric's direction "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:150]})") from None


class TuneSweeper(Sweeper):
    """`hydra/sweeper=tune`: the grid from `params` (Hydra's grammar), the search from `tune.*`."""

    def __init__(self, params: dict | None = None) -> None:
        self.params = dict(params or {})
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function, config=config)

    def points(self, arguments: list[str]) -> list[Point]:
        """Parse and check everything before any job: ConfigError (one line) on bad input."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        cfg = self.config
        check_settings(cfg.tune)
        space = parse_space(OmegaConf.to_container(cfg.tune.space, resolve=True) if cfg.tune.space is not None else None)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        seeds = [o for o in overrides if o.get_key_element() == "seed" and o.is_sweep_override()]
        if seeds:
            raise ConfigError("seed: a tuned sweep tunes on one seed and confirms on tune.confirm.seeds fresh ones; "
                              "allowed: a single value (e.g. seed=0)")
        grid = BasicSweeper.split_arguments(overrides, None)[0]
        # What names a point's studies and job dirs: the swept keys, and always the cell
        sweeping = {o.get_key_element() for o in overrides if o.is_sweep_override()} | {"cell"}
        loader = self.hydra_context.config_loader
        points, used = [], set()
        from .train import validate
        for job in grid:
            job_cfg = loader.load_sweep_config(cfg, list(job))
            mine = {k: d for k, d in space.items() if applies(k, job_cfg)}
            used |= set(mine)
            for end in (0, -1):  # both ends of every range must make a valid job
                probe = job_cfg.copy()
                for k, d in mine.items():
                    value = d.choices[end] if hasattr(d, "choices") else (d.low, d.high)[end]
                    OmegaConf.update(probe, k, value, merge=False)
                try:
                    validate(probe)
                except ConfigError as e:
                    raise ConfigError(f"{e} (from tune.space, job {' '.join(job)})") from None
            label = "-".join(o.split("=", 1)[1] for o in job if o.split("=", 1)[0] in sweeping) or "default"
            seed = int(job_cfg.seed)
            n, m = cfg.tune.confirm.seeds, cfg.tune.rescore.seeds if cfg.tune.rescore.top_k else 0
            fresh = fresh_seeds(seed, n + m)  # confirmation seeds, then re-score seeds
            points.append(Point(list(job), [o for o in job if o.split("=", 1)[0] in sweeping], label, seed, mine, fresh[:n],
                                direction(job_cfg), top_k=cfg.tune.rescore.top_k, rescore_seeds=fresh[n:n + m],
                                tie_break=cfg.tune.tie_break))
        # A gate bias that no cell of this sweep has is the study's space meeting one part of it (a
        # study run one cell per sweep: the cell without a forget gate has no b_f): say so, go on.
        # Any other parameter that applies nowhere is a typo or an unknown key.
        for key in sorted(set(space) - used):
            if key not in GATE_NAMES:
                raise ConfigError(f"tune.space.{key}: unknown parameter (no such config key, or no such gate in any cell of the sweep)")
            log.info("tune: %s is not searched: no cell of this sweep has the %s gate", key, GATE_NAMES[key])
        return points

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        from .train import fail

        cfg = self.config
        try:
            points = self.points(arguments)
        except ConfigError as e:
            fail(str(e))
        except HydraException as e:
            fail(" ".join(str(e).split()))
        sweep_dir = Path(cfg.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")
        url = storage_url(cfg.tune.storage, sweep_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {})
        for i, point in enumerate(points):
            for stage in (s for s in STAGES if s != "rescore" or point.top_k):  # a sweep without it keeps its two studies
                point.studies[stage] = optuna.create_study(
                    storage=storage, study_name=study_name(cfg, point.key, stage), load_if_exists=True,
                    direction=point.direction)
            # Seeded by the point and by how far its search got: a resumed search draws new settings,
            # not the first ones again.
            seed = cfg.tune.seed + 1000 * i + len(point.studies["tune"].get_trials(deepcopy=False))
            point.studies["tune"].sampler = (optuna.samplers.TPESampler(seed=seed) if cfg.tune.sampler == "tpe"
                                             else optuna.samplers.RandomSampler(seed=seed))
            try:
                consistent(point)
            except ConfigError as e:
                fail(str(e))
        log.info("tune: %d point(s) x %d trials%s + %d confirmation seeds; storage %s", len(points), cfg.tune.n_trials,
                 f" + the top {cfg.tune.rescore.top_k} re-scored on {cfg.tune.rescore.seeds} seed(s)" if cfg.tune.rescore.top_k else "",
                 cfg.tune.confirm.seeds, url)
        returns: list = []
        counter = [0]

        def launch(batch: list[list[str]]) -> list:
            results = self.launcher.launch(batch, initial_job_idx=counter[0])
            counter[0] += len(batch)
            returns.append(results)
            return list(results)

        unconfirmed = run(points, cfg.tune.n_trials, cfg.tune.n_jobs, sweep_dir, launch)
        if unconfirmed:
            log.error("tune: %d grid point(s) had no successful trial to confirm", unconfirmed)
        for point in (p for p in points if p.unconfirmed_pick):
            log.error("tune: %s was confirmed with trial %d before re-scoring, which picks trial %d: its verdict stays the "
                      "confirmed trial's; run the pick on the confirmation seeds as a check of its own", point.label, *point.unconfirmed_pick)
        if unconfirmed or any(p.unconfirmed_pick for p in points):
            raise SystemExit(1)
        return returns
