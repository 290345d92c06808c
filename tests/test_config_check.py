"""Mistakes a new user makes on the command line: one line naming the field, exit 2, before any job."""
from pathlib import Path

import pytest

from lstm_ablation.config_check import known_keys
from lstm_ablation.train import check_overrides


@pytest.mark.parametrize("args, line", [
    (["seed=abc"], "seed: got 'abc'; allowed: an integer >= 0"),
    (["seed=1.5"], "seed: got 1.5; allowed: an integer >= 0"),
    (["seed=-1"], "seed: got -1; allowed: an integer >= 0"),
    (["cell.impl=bogus"], "cell.impl: got 'bogus'; allowed: auto, reference, fast"),
    (["cell.forget_bias=abc"], "cell.forget_bias: got 'abc'; allowed: a number"),
    (["trainer.max_steps=abc"], "trainer.max_steps: got 'abc'; allowed: a positive integer"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval: got 0; allowed: a positive integer (steps) or a fraction in (0, 1]"),
    (["checkpoint.keep=all"], "checkpoint.keep: got 'all'; allowed: both, best, last, none"),
    (["task.seq_len=1000000000"], "task.seq_len: 1000000000 x 12000 sequences needs at least"),
    (["+model.hiden_size=16"], "model.hiden_size: unknown key; allowed under model: model.dropout, model.hidden_size, model.match_params, model.num_layers (did you mean model.hidden_size?)"),
    (["+foo=1"], "foo: unknown key; allowed at the top level: cell, checkpoint, init, model"),
    (["+optim.momentum=0.9"], "optim.momentum: unknown key; allowed under optim: optim.batch_size, optim.lr"),
    (["+probe.every=3"], "probe.every: unknown key; allowed under probe: probe.batch_size, probe.enabled, probe.every_n_steps"),
    (["model.hiden_size=16"], "model.hiden_size: unknown key; allowed under model: model.dropout, model.hidden_size, model.match_params, model.num_layers (did you mean model.hidden_size?); a new key needs +model.hiden_size="),
    (["cell.forget_bia=1"], "cell.forget_bia: unknown key; allowed under cell: cell.candidate_activation"),
    (["+trainer.max_step=10"], "trainer.max_step: not an argument of pytorch_lightning.Trainer (did you mean max_steps"),
    (["-m", "seed=0,1", "model.hiden_size=16"], "model.hiden_size: unknown key"),
    # Hydra's own settings: its messages are four lines and a hint about HYDRA_FULL_ERROR
    (["-m", "hydra.sweeper.params.seed=1,2"], "hydra.sweeper.params.seed: Hydra's own settings cannot be swept; a sweeper parameter takes its list quoted: hydra.sweeper.params.seed='1,2'"),
    (["-m", "experiment=seed_gates_tuned", "hydra/sweeper=basic", "hydra.sweeper.params.seed='1,2'"], "hydra.sweeper.params.seed: this sweeper has no parameter 'seed'; a job setting is swept on the command line (seed=a,b)"),
    (["-m", "hydra/launcher=slurm", "hydra.launcher.partitio=gpu", "seed=0,1"], "hydra.launcher.partitio: not a setting of Hydra's config"),
])
def test_bad_command_line_is_one_line_and_exit_2(args, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        check_overrides(args)
    assert exit_.value.code == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith(f"lstm-ablate: error: {line}"), err


def test_good_command_lines_pass(capsys):
    check_overrides(["cell=no_forget_gate", "seed=3", "+trainer.limit_val_batches=2", "trainer.max_steps=5", "checkpoint.keep=none"])
    check_overrides(["-m", "experiment=seed_gates", "seed=0,1"])
    check_overrides(["-m", "experiment=seed_gates_tuned", "hydra/sweeper=basic", "hydra.sweeper.params.cell=rnn", "cell=rnn",
                     "seed=1,2", "+hydra.sweeper.params.task=adding", "hydra/launcher=local", "hydra.launcher.tasks_per_node=1", "hydra.sweep.dir=/tmp/x"])
    assert capsys.readouterr().err == ""


def test_known_keys_come_from_the_shipped_configs():
    keys = known_keys()
    assert {"model.hidden_size", "optim.lr", "checkpoint.keep", "resume", "report.reference"} <= keys
    assert not any(k.startswith(("cell.", "task.", "hydra.")) for k in keys)


def test_a_cell_added_through_hydra_searchpath_passes_the_check(tmp_path, capsys):
    """`hydra.searchpath=[file://DIR]` adds DIR/cell/*.yaml: the pre-check composes with Hydra's own settings,
    so it finds the user's cell as Hydra will (it refused the command before: 'Could not find cell/mycell')."""
    source = Path(__file__).resolve().parents[1] / "conf" / "cell" / "vanilla.yaml"
    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / "mycell.yaml").write_text(source.read_text().replace("name: vanilla", "name: mycell"))
    check_overrides([f"hydra.searchpath=[file://{tmp_path}]", "cell=mycell", "trainer.max_steps=2"])
    assert capsys.readouterr().err == ""


def test_checkpoint_keep_names_every_set_of_files_checkpointing_keeps():
    from lstm_ablation.checkpointing import BEST, KEEP, LAST
    from lstm_ablation.config_check import CHECKPOINT_KEEP

    assert list(KEEP) == list(CHECKPOINT_KEEP)  # zip() would silently drop a name added to one side only
    assert KEEP["both"] == (BEST, LAST) and KEEP["none"] == ()


PROBE = """
import sys
from lstm_ablation.train import main
sys.argv = ["lstm-ablate", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    print(e.code, "torch" in sys.modules, "pytorch_lightning" in sys.modules)
"""


@pytest.mark.parametrize("args, loaded", [
    (["cell=nope"], "2 False False"),                    # answered from the config files alone
    (["+trainer.max_step=10"], "2 True True"),           # a Trainer argument: only Lightning knows its own
    (["-m", "hydra/sweeper=tune", "cell=vanilla", "tune.n_trials=0"], "2 True False"),  # the tasks need torch, not Lightning
])
def test_a_mistake_is_answered_without_loading_more_than_its_check_needs(tmp_path, args, loaded):
    """Loading Lightning takes seconds; a typo should not wait for it (nor for torch, where the check needs none)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PROBE, *args, f"hydra.sweep.dir={tmp_path / 's'}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1:] == [loaded], done.stderr[-2000:]
