"""lstm-ablation: which parts of the LSTM cell matter, on which long-range problems."""
from .layer import LSTMLayer
from .spec import CellSpec, ConfigError, load_variant

__all__ = ["CellSpec", "ConfigError", "LSTMLayer", "load_variant"]
