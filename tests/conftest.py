import pytest
from hydra import compose, initialize_config_module


@pytest.fixture
def make_cfg():
    """Compose the app's config in-process, as `lstm-ablate <overrides>` would."""
    def make(*overrides: str):
        with initialize_config_module("lstm_ablation.conf", version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=False)
    return make


TINY = ("task.seq_len=6", "task.n_train=64", "task.n_val=32", "task.n_test=32", "model.hidden_size=8",
        "trainer.max_steps=6", "trainer.val_check_interval=3", "trainer.log_every_n_steps=1", "wandb.mode=disabled")


@pytest.fixture(autouse=True)
def own_wandb_service(monkeypatch):
    """Once a test starts a W&B run in-process, wandb leaves its service's address in os.environ
    (WANDB_SERVICE); a command a later test starts would inherit it and share that service, which
    still holds the run of a command killed with SIGKILL ("run ID ... is in use" on resume). Every
    test starts without it, so each command it launches runs its own service, as a user's does."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
