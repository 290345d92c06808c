"""Fast path for LSTMLayer (issue 4): the recurrence in C++ (csrc/lstm_fast.cpp).

The extension is compiled on first use with torch.utils.cpp_extension and cached in
~/.cache/lstm_ablation/<torch and Python version, SIMD level, checkout> (override:
LSTM_ABLATION_EXT_DIR), so later runs only load it. cpp_extension's lock file in that folder lets
concurrent processes build it once.

Which path runs (LSTMLayer(impl=...), the `impl` key of a cell config):
    reference   always the Python equations (LSTMLayer.reference_forward)
    fast        the C++ layer; a one-line error if it cannot run this input
    auto        fast when it can run, else reference, with one log line saying why
The C++ layer is CPU-only; a CUDA kernel would slot in as another branch of `unusable_reason`
and `LSTMFunction`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

log = logging.getLogger(__name__)

CSRC = Path(__file__).with_name("csrc")
ACT_CODES = {"tanh": 0, "sigmoid": 1, "identity": 2}  # enum Act in lstm_fast.cpp
FORGET_CODES = {"none": 0, "learned": 1, "coupled": 2}  # enum Forget in lstm_fast.cpp (input gate alike)

_ext = None  # the built module, once loaded
_build_error: str | None = None  # why it could not be built, once that is known
_logged: set[str] = set()  # fallback reasons already logged in this process


def simd_flags() -> list[str]:
    """Compiler flags for at::vec::Vectorized: AVX2 where ATen itself runs AVX2 or better, else scalar."""
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]
    return []


def build_dir() -> Path:
    # One folder per torch version, Python version and SIMD level: a module built against another
    # libtorch, or for another CPU, must not load. And one per checkout and torch install: ninja
    # rebuilds whenever its command changes, and the command names both paths, so two checkouts
    # sharing a folder (a study's fixed commit beside the working tree) recompiled it in turn, a
    # minute or more at every job's start.
    root = Path(os.environ.get("LSTM_ABLATION_EXT_DIR", Path.home() / ".cache" / "lstm_ablation"))
    simd = "avx2" if simd_flags() else "scalar"
    where = hashlib.sha1(f"{CSRC.resolve()}\n{Path(torch.__file__).parent.resolve()}".encode()).hexdigest()[:8]
    return root / f"torch-{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}-{simd}-{where}"


def _load():
    from torch.utils.cpp_extension import load

    path = build_dir()
    path.mkdir(parents=True, exist_ok=True)
    built = list(path.glob("lstm_ablation_fast*.so"))
    if not built or any(p.stat().st_mtime < (CSRC / "lstm_fast.cpp").stat().st_mtime for p in built):
        # about a minute, once per machine and torch version: say so, or the first job looks hung
        print(f"lstm-ablation: compiling the C++ LSTM layer into {path} (once, about a minute) ...", file=sys.stderr, flush=True)
    return load(name="lstm_ablation_fast", sources=[str(CSRC / "lstm_fast.cpp")], build_directory=str(path),
                # -fopenmp: at::parallel_for splits each step's pointwise pass over torch's OpenMP threads
                extra_cflags=["-O3", "-fopenmp", *simd_flags()], extra_ldflags=["-fopenmp"], verbose=False)


def extension():
    """The compiled module, or None if it cannot be built here (the reason is in `_build_error`)."""
    global _ext, _build_error
    if _ext is None and _build_error is None:
        try:
            _ext = _load()
        except Exception as e:  # no compiler, no ninja, compile error: all mean "use the reference path"
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            _build_error = f"the C++ extension did not build ({type(e).__name__}: {first_line})"
    return _ext


def spec_reason(spec) -> str | None:
    """Why the C++ layer has no code for this cell's equations, or None if it has."""
    if spec.input_gate_activation == "exp":
        return "sLSTM's exponential gating (cell.input_gate_activation: exp) runs in the reference path only"
    if spec.normalised_gates:
        return "normalised gates (cell.normalised_gates) run in the reference path or the scan only"
    rec = spec.recurrent_gates
    if not rec or (rec != spec.gates and rec != ("g",)):
        return f"recurrent rows {''.join(rec) or 'none'} (cell.gates_read / cell.candidate_read) run in the reference path only"
    return None


def unusable_reason(layer, x: Tensor) -> str | None:
    """Why the fast path cannot run this layer on x, or None if it can."""
    if (reason := spec_reason(layer.spec)) is not None:
        return reason
    if x.device.type != "cpu":
        return f"input is on {x.device.type} and the fast layer is CPU-only"
    if x.dtype not in (torch.float32, torch.float64) or layer.weight_hh.dtype != x.dtype:
        return f"dtypes {x.dtype} (input) and {layer.weight_hh.dtype} (weights): fast layer needs float32/float64, both alike"
    if extension() is None:
        return _build_error
    return None


def usable(layer, x: Tensor) -> bool:
    if layer.impl == "reference":
        return False
    reason = unusable_reason(layer, x)
    if reason is None:
        return True
    if layer.impl == "fast":
        raise RuntimeError(f"LSTMLayer(impl='fast'): {reason}")
    if reason not in _logged:
        _logged.add(reason)
        log.warning("LSTMLayer: using the reference (pure PyTorch) path: %s", reason)
    return False


def variant_flags(spec) -> tuple[int, int, bool, int, int, float, int]:
    """The CellSpec as the C++ layer reads it: input and forget codes, has_o, act_g and act_h codes,
    the coupled gate's shift beta, and the first gate row (in units of H) that reads h."""
    rec_col = 0 if spec.recurrent_gates == spec.gates else spec.gates.index("g")
    return (FORGET_CODES[spec.input_gate], FORGET_CODES[spec.forget_gate], spec.output_gate == "learned",
            ACT_CODES[spec.candidate_activation], ACT_CODES[spec.output_activation], float(spec.coupling_shift), rec_col)


class LSTMFunction(torch.autograd.Function):
    """out, h_T, c_T, a_T = LSTM(x, h0, c0, a0); the hand-written backward of lstm_fast.cpp.
    w_gg, a0 and a_T are FGR's (a: the learned sigmoid gates of a step), None for other cells."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, bias, peephole, w_gg, a0, flags, save):
        out, h_T, c_T, a_T, *saved = extension().forward(x, h0, c0, w_ih, w_hh, bias, peephole, w_gg, a0, *flags, save)
        if save:  # saved = Z (T, B, G*H) activated gates, C (T, B, H) cell states, A (T, B, H) act_h(C),
            #           Hs (T + 1, B, H) h_0 .. h_T and FGR's Gs (T + 1, B, P*H) a_0 .. a_T, time-major
            ctx.save_for_backward(x, c0, w_ih, w_hh, peephole, w_gg, *saved)  # h0 is Hs[0], a0 Gs[0]
            ctx.flags = flags
        ctx.set_materialize_grads(False)  # unused outputs give None, not zeros to read
        return out, h_T, c_T, a_T

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h_T, grad_c_T, grad_a_T):
        x, c0, w_ih, w_hh, peephole, w_gg, Z, C, A, Hs, Gs = ctx.saved_tensors
        dx, dh0, dc0, dw_ih, dw_hh, db, dpeep, da0, dw_gg = extension().backward(
            grad_out, grad_h_T, grad_c_T, grad_a_T, x, c0, w_ih, w_hh, peephole, w_gg, Z, C, A, Hs, Gs,
            *ctx.flags, ctx.needs_input_grad[0])
        return dx if ctx.needs_input_grad[0] else None, dh0, dc0, dw_ih, dw_hh, db, dpeep, dw_gg, da0, None, None


def lstm_forward(layer, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Same contract as LSTMLayer.reference_forward: out (B, T, H), (h_T, c_T), or (h_T, c_T, a_T) for FGR."""
    h0, c0, *a0 = state  # FGR: a0 (B, P*H), the gates of the step before
    a0 = a0[0].contiguous() if a0 else None
    params = [layer.weight_ih, layer.weight_hh, layer.bias]
    peephole = None if layer.peephole is None else layer.peephole.contiguous()
    w_gg = None if layer.weight_gg is None else layer.weight_gg.contiguous()
    # Saving Z and C for backward costs memory; skip it when no gradient can flow.
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in [x, h0, c0, a0, peephole, w_gg, *params])
    out, h_T, c_T, a_T = LSTMFunction.apply(x, h0, c0, *(p.contiguous() for p in params), peephole, w_gg, a0,
                                            variant_flags(layer.spec), save)
    return out, (h_T, c_T) if a_T is None else (h_T, c_T, a_T)
