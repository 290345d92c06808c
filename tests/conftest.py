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
