"""Hydra instantiates sweepers only from the `hydra_plugins` namespace: this names lstm_ablation's
tuning sweeper there (conf/hydra/sweeper/tune.yaml). The code lives in lstm_ablation/tune.py."""
from lstm_ablation.tune import TuneSweeper as _TuneSweeper


class TuneSweeper(_TuneSweeper):
    """Per-cell Optuna tuning, then fresh confirmation seeds (see lstm_ablation.tune)."""
