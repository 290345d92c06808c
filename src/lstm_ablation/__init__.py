"""lstm-ablation: which parts of the LSTM cell matter, on which long-range problems."""
from .spec import CellSpec, ConfigError, load_variant

__all__ = ["CellSpec", "ConfigError", "LSTMLayer", "load_variant"]


def __getattr__(name: str):
    # The layer (and so torch, seconds to import) is loaded when first asked for, not by every
    # `import lstm_ablation.<module>`: the entry point answers a mistyped command line without it.
    if name == "LSTMLayer":
        from .layer import LSTMLayer
        return LSTMLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
