"""lstm-ablate-check: the command of a check, built from a tuned sweep's own jobs, runs the trial's
settings on the confirmation seeds with the check's one change, and reproduces the confirmation runs
exactly when nothing is changed."""
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

BIN = Path(sys.executable).parent
SPACE = "tune.space={optim.lr: 'tag(log, interval(1e-3, 1e-1))', cell.input_bias: 'interval(-2.0, 0.0)'}"


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def check(capsys, *args: str) -> tuple[int, str, str]:
    """lstm-ablate-check in-process: (exit status, stdout, stderr)."""
    from lstm_ablation.check_command import main
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """A tiny tuned sweep of vanilla: 3 trials on seed 0, the best confirmed on seeds 1 and 2."""
    root = tmp_path_factory.mktemp("check")
    sweep = root / "tuned"
    done = run("lstm-ablate", "-m", "hydra/sweeper=tune", "cell=vanilla", SPACE, "tune.n_trials=3", "tune.confirm.seeds=2",
               "tune.n_jobs=1", *TINY, "num_threads=1", f"hydra.sweep.dir={sweep}", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return sweep


def settings(record: dict) -> tuple:
    c = record["config"]
    return c["optim"]["lr"], c["cell"]["input_bias"]


def test_a_check_with_nothing_changed_reproduces_the_confirmation_runs(tuned, tmp_path):
    jobs = records(tuned)
    confirmed = {r["seed"]: r for name, r in jobs.items() if name.startswith("confirm-")}
    trial = next(iter(confirmed.values()))["config"]["tune"]["trial"]
    made = run("lstm-ablate-check", str(tuned), "--out", str(tmp_path / "same"), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"trial {trial} (the trial the sweep confirmed) of vanilla on adding, seeds 1-2" in made.stderr
    argv = shlex.split(made.stdout)
    assert argv[:2] == ["lstm-ablate", "-m"] and "seed=1,2" in argv and not any(a.startswith("tune.") for a in argv)
    done = run(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    check = {r["seed"]: r for r in records(tmp_path / "same").values()}
    assert sorted(check) == sorted(confirmed) == [1, 2]
    for seed, record in check.items():
        assert record["config"]["tune"]["stage"] is None                # a plain sweep, not a tuned one
        assert settings(record) == settings(confirmed[seed])
        assert record["metrics"] == confirmed[seed]["metrics"]          # the same job, to the last digit


def test_a_check_names_another_trial_and_changes_one_thing(tuned, capsys):
    """What the command says; the test above shows such a command runs what it says."""
    stage1 = {r["config"]["tune"]["trial"]: r for name, r in records(tuned).items() if name.startswith("tune-")}
    confirmed = next(r for n, r in records(tuned).items() if n.startswith("confirm-"))["config"]["tune"]["trial"]
    other = next(t for t in sorted(stage1) if t != confirmed)
    code, out, err = check(capsys, str(tuned), "--trial", str(other), "--seeds", "3,5", "model.hidden_size=6", "optim.lr=0.02")
    assert code == 0 and f"trial {other} (named with --trial) of vanilla on adding, seeds 3,5; changed: " \
                          "model.hidden_size=6 optim.lr=0.02" in err
    argv = shlex.split(out)
    assert [a for a in argv if a.startswith("optim.lr=")] == ["optim.lr=0.02"]   # the change replaces the trial's lr
    assert f"cell.input_bias={stage1[other]['config']['cell']['input_bias']!r}" in argv
    assert "model.hidden_size=6" in argv and "seed=3,5" in argv and argv[-1] == "seed=3,5"  # no --out: Hydra's own dir


@pytest.mark.parametrize("args,line", [
    (["--trial", "7"], "--trial: got 7; allowed here: 0, 1, 2"),
    (["--cell", "gru"], "--cell: got 'gru'; allowed here: vanilla"),
    (["seed=4"], "KEY=VALUE: got 'seed=4'; the check sets seed itself"),
    (["tune.n_trials=4"], "KEY=VALUE: got 'tune.n_trials=4'; the check sets tune.n_trials itself"),
    (["lr"], "KEY=VALUE: got 'lr'; allowed: a Hydra override"),
    (["--seeds", "2-x"], "--seeds: got '2-x'; allowed: distinct integers >= 0"),
    (["--seeds", "1,1"], "--seeds: got '1,1'"),
])
def test_bad_input_is_one_line_and_exit_2(tuned, capsys, args, line):
    code, out, err = check(capsys, str(tuned), *args)
    assert code == 2 and out == ""
    assert err.startswith(f"lstm-ablate-check: error: {line}") and err.count("\n") == 1


def test_a_sweep_without_a_pick_or_of_several_cells_must_be_told_which(tuned, tmp_path, capsys):
    """A sweep still tuning has no confirmed trial; one that tuned several cells needs --cell."""
    partial = tmp_path / "partial"
    shutil.copytree(tuned, partial, ignore=shutil.ignore_patterns("confirm-*"))
    code, _, err = check(capsys, str(partial))
    assert code == 2 and "the sweep has no confirmation run yet" in err
    assert check(capsys, str(partial), "--trial", "0")[0] == 0

    two = tmp_path / "two"
    shutil.copytree(tuned, two)
    job = next(two.glob("tune-vanilla-t0"))
    record = json.loads((job / "result.json").read_text())
    record["cell"] = record["config"]["cell"]["name"] = "no_forget_gate"
    (job / "result.json").write_text(json.dumps(record))
    code, _, err = check(capsys, str(two))
    assert code == 2 and "--cell: this sweep tuned 2 cells (no_forget_gate, vanilla); name one" in err
    code, _, err = check(capsys, str(two), "--cell", "no_forget_gate")
    assert code == 2 and "--trial: the sweep has no confirmation run yet" in err
    code, out, _ = check(capsys, str(two), "--cell", "vanilla")
    assert code == 0 and "cell=vanilla" in shlex.split(out)

    empty = tmp_path / "plain"
    empty.mkdir()
    code, _, err = check(capsys, str(empty))
    assert code == 2 and "holds no job of a tuned sweep" in err


def test_the_committed_reber_check_is_what_the_tool_builds_from_the_committed_runs(capsys):
    """reports/reber_h8_lr_check ran no_forget_gate's trial 6 on seeds 1-10 with a command typed by hand;
    built from the study's committed runs (which keep each job's .hydra/), the tool gives the same settings."""
    root = Path(__file__).resolve().parents[1] / "reports"
    typed = json.loads((root / "reber_h8_lr_check" / "report.json").read_text())["launch"]
    typed = next(command for sweep, command in typed.items() if sweep.endswith("no_forget_gate_t6"))
    code, out, _ = check(capsys, str(root / "continual_reber_h8" / "runs" / "no_forget_gate"), "--trial", "6")
    assert code == 0

    def settings_of(command: str) -> dict[str, str]:
        pairs = (a.split("=", 1) for a in shlex.split(command)[2:] if not a.startswith("hydra.sweep.dir="))
        return {k.removeprefix("hydra.sweeper.params."): v.strip("'") for k, v in pairs}

    assert settings_of(out) == settings_of(typed)
    assert settings_of(out)["optim.lr"] == "0.012384930898256409" and settings_of(out)["seed"] == "1,2,3,4,5,6,7,8,9,10"
