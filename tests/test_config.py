"""Every cell YAML composes into a valid job config; overrides reach the CellSpec."""
import pytest

from lstm_ablation import ConfigError, load_variant
from lstm_ablation.model import build_recurrent
from lstm_ablation.spec import available_variants, spec_from_config
from lstm_ablation.tasks import TASKS
from lstm_ablation.train import validate
from omegaconf import OmegaConf


@pytest.mark.parametrize("cell", available_variants())
def test_every_cell_composes_and_builds(make_cfg, cell):
    cfg = make_cfg(f"cell={cell}")
    validate(cfg)
    layer = build_recurrent(OmegaConf.to_container(cfg.cell, resolve=True), input_size=2, hidden_size=4)
    assert layer.hidden_size == 4
    if cfg.cell.kind == "lstm":
        assert spec_from_config(OmegaConf.to_container(cfg.cell, resolve=True)) == load_variant(cell)


def test_command_line_overrides_reach_the_spec(make_cfg):
    cfg = make_cfg("cell=vanilla", "cell.forget_gate=none", "task.seq_len=200", "seed=3")
    spec = spec_from_config(OmegaConf.to_container(cfg.cell, resolve=True))
    assert spec == load_variant("no_forget_gate")
    assert cfg.task.seq_len == 200 and cfg.task.data_seed == 3


def test_every_task_yaml_is_registered(make_cfg):
    from importlib import resources
    yamls = {p.name[:-5] for p in resources.files("lstm_ablation.conf").joinpath("task").iterdir() if p.name.endswith(".yaml")}
    assert yamls == set(TASKS)
    for task in yamls - {"sequential_mnist", "permuted_mnist"}:
        validate(make_cfg(f"task={task}"))
    for task in ("sequential_mnist", "permuted_mnist"):  # real data: refused up front when the files are absent
        with pytest.raises(ConfigError, match=r"^task.data_dir: .*MNIST/raw"):
            validate(make_cfg(f"task={task}", "task.data_dir=/nonexistent"))


def test_experiment_configs_compose(make_cfg):
    cfg = make_cfg("experiment=seed_gates")
    assert cfg.name == "seed_gates" and cfg.task.seq_len == 100


@pytest.mark.parametrize("override,field", [
    ("cell.forget_gate=coupled", None), ("task.seq_len=1", "task.seq_len"), ("task.n_train=0", "task.n_train"),
    ("model.hidden_size=0", "model.hidden_size"), ("optim.lr=0", "optim.lr"), ("optim.lr=-1e-3", "optim.lr"),
    ("optim.batch_size=0", "optim.batch_size"), ("wandb.mode=sometimes", "wandb.mode"),
    ("cell.output_activation=relu", "cell.output_activation"),
    ("init.chrono_t_max=1", "init.chrono_t_max"), ("init.chrono_t_max=-5", "init.chrono_t_max"),
    ("init.chrono_t_max=0.5", "init.chrono_t_max"),
])
def test_validate_names_the_field(make_cfg, override, field):
    cfg = make_cfg(override)
    if field is None:  # coupled forget with a learned input gate is fine (CIFG)
        validate(cfg)
        return
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith(field)
