"""Speed and peak memory of LSTMLayer (fast path) against torch.nn.LSTM, CPU (issue 4).

    python benchmarks/layer_speed.py            # full grid, every variant (~10-15 min on a quiet 2-core CPU)
    python benchmarks/layer_speed.py --quick    # one config, every variant (~1 min)
    python benchmarks/layer_speed.py --scan     # minlstm: parallel scan vs its loop vs vanilla, T=1000
    python benchmarks/layer_speed.py --fgr      # fgr: C++ layer vs its reference loop (and V), study size
    ... --cpu-time --threads 1                  # on a loaded machine: CPU seconds of this process, 1 thread
    python benchmarks/layer_speed.py --study    # study sizes (issue 15): 1 thread, I=2, H 32-128, T 100/300,
                                                # every cell, the GEMM floor and the whole training step (~6 min)

Cells the C++ layer has no code for (slstm: see fast.spec_reason) run their reference path,
minlstm its parallel scan (LSTMLayer.scan_forward); the table marks them (ref) and (scan).

Time: forward + backward of y.sum() per batch (x requires grad, so dx is included), B=64,
float32, torch.set_num_threads(2). nn.LSTM and every variant are timed interleaved in one
process (one round = each implementation once, in turn), median over the rounds after warm-up.
Ratios are ours / nn.LSTM of the same config; lower is better.

Peak memory: each (config, implementation) runs once in a fresh subprocess; the number is the
peak resident set size during one forward+backward minus the resident size just before it
(Linux VmHWM, reset through /proc/self/clear_refs), so it counts every allocation: ATen tensors,
oneDNN workspaces and allocator slack alike. Parameters and the input are allocated before.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from lstm_ablation import fast
from lstm_ablation.layer import LSTMLayer
from lstm_ablation.spec import available_variants, load_variant, variant_config

B = 64
clock = time.perf_counter  # --cpu-time: time.process_time (other processes' load does not count)
FULL_GRID = [(I, H, T) for T in (200, 1000) for H in (128, 256) for I in (2, 16)]
QUICK_GRID = [(16, 128, 200)]
MEMORY_VARIANT_CONFIG = (16, 256, 1000)  # where memory matters most; variants are measured here


def lstm_variants() -> list[str]:
    """Every LSTM variant in conf/cell (the baselines rnn/gru/torch_lstm are no CellSpec), vanilla first."""
    names = [n for n in available_variants() if variant_config(n).get("kind", "lstm") == "lstm"]
    return sorted(names, key=lambda n: (n != "vanilla", n))


def path(name: str) -> str:
    """Which path a variant runs here: fast (C++), scan (minLSTM's parallel scan) or ref (Python loop)."""
    spec = load_variant(name)
    return "scan" if spec.parallel_scan else "fast" if fast.spec_reason(spec) is None else "ref"


def build(name: str, I: int, H: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "nn.LSTM":
        return torch.nn.LSTM(I, H, batch_first=True)
    if name.endswith(" loop"):  # the same cell's step-by-step reference path
        return LSTMLayer(load_variant(name.removesuffix(" loop")), I, H, impl="reference")
    return LSTMLayer(load_variant(name), I, H, impl="fast" if path(name) == "fast" else "auto")


def scan_comparison(repeats: int) -> None:
    """minlstm's scan against its own loop and against vanilla (fast path), interleaved, T=1000."""
    names = ["vanilla", "minlstm", "minlstm loop"]
    print("\nminlstm at T=1000 (B=64, float32): forward+backward seconds, median of "
          f"{repeats} interleaved rounds, and ratio to vanilla\n")
    rows = []
    for I, H in ((2, 128), (16, 256)):
        med = time_config(I, H, 1000, names, repeats, warmup=1)
        rows.append([I, H, 1000, *(f"{med[n]:.3f} ({med[n] / med['vanilla']:.2f})" for n in names)])
    print(markdown(["I", "H", "T", *names], rows))


FGR_CONFIG = (2, 64, 100)  # I, H, T of the studies fgr trains in (digits: T = 64; adding: T = 100)


def fgr_comparison(repeats: int) -> None:
    """fgr in the C++ layer against its own reference loop and against V (peephole, fgr's base cell
    in the C++ layer), interleaved in one process, at the study size: one thread, B = 64, float32,
    forward + backward of the last output (a sequence-to-one task)."""
    I, H, T = FGR_CONFIG
    names = ["fgr", "fgr loop", "peephole"]
    x = torch.randn(B, T, I)
    modules = {n: build(n, I, H) for n in names}
    assert path("fgr") == "fast" and modules["fgr loop"].impl == "reference"
    med = time_fns({n: (lambda x, m=m: last_output_step(m, x)) for n, m in modules.items()}, x, repeats, warmup=3)
    print(f"\nfgr at I={I}, H={H}, T={T}, B={B}: forward + backward of the last output, median of {repeats} "
          "interleaved rounds\n")
    print(markdown(["I", "H", "T", *(f"{n} ms" for n in names), "loop / fgr", "fgr / peephole"],
                   [[I, H, T, *(f"{med[n] * 1e3:.2f}" for n in names), f"{med['fgr loop'] / med['fgr']:.2f}",
                     f"{med['fgr'] / med['peephole']:.2f}"]]))


def step(module: torch.nn.Module, x: torch.Tensor) -> None:
    """One training step's worth of layer work: forward, backward of y.sum()."""
    module.zero_grad(set_to_none=True)
    x.grad = None
    y = module(x)[0]
    y.sum().backward()


def time_config(I: int, H: int, T: int, names: list[str], repeats: int, warmup: int) -> dict[str, float]:
    modules = {n: build(n, I, H) for n in names}
    x = torch.randn(B, T, I, requires_grad=True)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        for n, m in modules.items():  # interleaved: load changes hit every implementation alike
            t0 = clock()
            step(m, x)
            if r >= warmup:
                times[n].append(clock() - t0)
    return {n: statistics.median(ts) for n, ts in times.items()}


STUDY_GRID = [(2, H, T) for T in (100, 300) for H in (32, 64, 128)]


def gemm_floor(H: int, T: int, G: int) -> float:
    """Seconds of the matrix products a layer with G gate rows must do for T steps, as torch.mm does
    them here in one call each: forward h_{t-1} W_hh^T, backward dz_t W_hh and dW_hh = dZ^T H_prev,
    each stacked over all T*B rows (the same FLOPs as T per-step products, without per-call costs)."""
    h, z, w = torch.randn(T * B, H), torch.randn(T * B, G * H), torch.randn(G * H, H)
    products = [lambda: h.mm(w.t()), lambda: z.mm(w), lambda: z.t().mm(h)]
    times = []
    for _ in range(7):
        t0 = clock()
        for f in products:
            f()
        times.append(clock() - t0)
    return statistics.median(times[2:])


def last_output_step(module: torch.nn.Module, x: torch.Tensor) -> None:
    """Forward, backward of the last output only: what a sequence-to-one study (adding) trains."""
    module.zero_grad(set_to_none=True)
    module(x)[0][:, -1].sum().backward()


def training_step_fn(name: str, I: int, H: int):
    """The whole training step of a study job: layer, linear readout of the last output, MSE,
    backward, gradient clipping at 1, Adam."""
    layer, readout = build(name, I, H), torch.nn.Linear(H, 1)
    params = [*layer.parameters(), *readout.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    target = torch.randn(B, 1)

    def train_step(x: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(readout(layer(x)[0][:, -1]), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return train_step


def time_fns(fns: dict, x: torch.Tensor, repeats: int, warmup: int) -> dict[str, float]:
    times: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(warmup + repeats):
        for n, f in fns.items():  # interleaved, as time_config
            t0 = clock()
            f(x)
            if r >= warmup:
                times[n].append(clock() - t0)
    return {n: statistics.median(ts) for n, ts in times.items()}


def study_sizes(variants: list[str], repeats: int) -> None:
    """Issue 15's table: the sizes studies train at, one thread (two jobs side by side on 2 cores)."""
    header = ["I", "H", "T", "nn.LSTM ms", "GEMM floor ms", *(v if path(v) == "fast" else f"{v} ({path(v)})" for v in variants)]
    print("\nForward + backward of the last output per batch: ratio ours / nn.LSTM; vanilla also / GEMM floor\n")
    print(markdown(header, []), flush=True)
    ratios, floors, steps = {v: [] for v in variants}, [], []
    for I, H, T in STUDY_GRID:
        x = torch.randn(B, T, I)
        modules = {n: build(n, I, H) for n in ["nn.LSTM", *variants]}
        med = time_fns({n: (lambda x, m=m: last_output_step(m, x)) for n, m in modules.items()}, x, repeats, warmup=2)
        floor = gemm_floor(H, T, 4)
        floors.append(med["vanilla"] / floor)
        for v in variants:
            ratios[v].append(med[v] / med["nn.LSTM"])
        row = [I, H, T, f"{med['nn.LSTM'] * 1e3:.1f}", f"{floor * 1e3:.1f} (vanilla {floors[-1]:.2f}x)",
               *(f"{ratios[v][-1]:.2f}" for v in variants)]
        print(markdown(header, [row]).splitlines()[-1], flush=True)
        step = time_fns({n: training_step_fn(n, I, H) for n in ("nn.LSTM", "vanilla")}, x, repeats, warmup=2)
        steps.append([I, H, T, f"{step['nn.LSTM'] * 1e3:.1f}", f"{step['vanilla'] * 1e3:.1f}",
                      f"{step['vanilla'] / step['nn.LSTM']:.2f}"])
    print(markdown(header, [["*median*", "", "", "", "", *(f"**{statistics.median(ratios[v]):.2f}**" for v in variants)]]).splitlines()[-1])
    every = [r for v in variants if path(v) == "fast" for r in ratios[v]]
    print(f"\nC++ cells: median {statistics.median(every):.2f}, max {max(every):.2f} x nn.LSTM "
          f"(targets: median <= 0.6, none above 0.8); vanilla / GEMM floor at H >= 64: "
          f"{', '.join(f'{f:.2f}' for (_, H, _), f in zip(STUDY_GRID, floors) if H >= 64)} (target <= 1.6)")
    print("\nWhole training step (layer, readout, MSE, backward, clipping, Adam), ms per batch\n")
    print(markdown(["I", "H", "T", "nn.LSTM", "vanilla", "ratio"], steps))


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def memory_child(name: str, I: int, H: int, T: int) -> None:
    """Runs in a fresh process: prints the peak RSS increase (MB) of one forward+backward."""
    torch.set_num_threads(2)
    module = build(name, I, H)
    step(module, torch.randn(B, 2, I, requires_grad=True))  # load libraries and kernels first
    x = torch.randn(B, T, I, requires_grad=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = rss_kb("VmRSS:")
    step(module, x)
    print(json.dumps((rss_kb("VmHWM:") - before) / 1024))


def peak_mb(name: str, I: int, H: int, T: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-child", name, str(I), str(H), str(T)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one config (I=16, H=128, T=200), 3 rounds")
    p.add_argument("--vanilla-only", action="store_true", help="skip the other variants")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5 at T=200, 3 at T=1000)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--scan", action="store_true", help="only minlstm's scan vs its loop vs vanilla at T=1000")
    p.add_argument("--fgr", action="store_true", help="only fgr: C++ layer vs its reference loop and V, 1 thread, study size")
    p.add_argument("--study", action="store_true", help="study sizes: 1 thread, I=2, H 32/64/128, T 100/300, GEMM floor, training step")
    p.add_argument("--variants", help="comma-separated cells to time (default: every LSTM variant)")
    p.add_argument("--cpu-time", action="store_true", help="time CPU seconds of this process, not wall time")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        name, *dims = args.memory_child
        return memory_child(name, *map(int, dims))

    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    print(f"timing {'CPU time of this process' if args.cpu_time else 'wall time'}")
    if args.scan:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average at start {os.getloadavg()[0]:.2f}")
        scan_comparison(args.repeats or 5)
        return print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    if args.fgr:
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}, 1 thread, B={B}, float32, load average at start {os.getloadavg()[0]:.2f}")
        fgr_comparison(args.repeats or 21)
        return print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    variants = ["vanilla"] if args.vanilla_only else args.variants.split(",") if args.variants else lstm_variants()
    if args.study:
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}, 1 thread, B={B}, float32, load average at start {os.getloadavg()[0]:.2f}", flush=True)
        study_sizes(variants, args.repeats or 7)
        return print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    grid = QUICK_GRID if args.quick else FULL_GRID
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={B}, float32, "
          f"load average at start {os.getloadavg()[0]:.2f}", flush=True)

    header = ["I", "H", "T", "nn.LSTM s", *(v if path(v) == "fast" else f"{v} ({path(v)})" for v in variants)]
    print("\nTime, forward+backward per batch: ratio ours / nn.LSTM (nn.LSTM column in seconds)\n")
    print(markdown(header, []), flush=True)  # rows follow as they are measured
    ratios = {v: [] for v in variants}
    for I, H, T in grid:
        repeats = args.repeats or (3 if args.quick else 5 if T <= 200 else 3)
        med = time_config(I, H, T, ["nn.LSTM", *variants], repeats, warmup=1 if args.quick else 2)
        for v in variants:
            ratios[v].append(med[v] / med["nn.LSTM"])
        row = [I, H, T, f"{med['nn.LSTM']:.3f}", *(f"{ratios[v][-1]:.2f}" for v in variants)]
        print(markdown(header, [row]).splitlines()[-1], flush=True)
    print(markdown(header, [["*median*", "", "", "", *(f"**{statistics.median(ratios[v]):.2f}**" for v in variants)]]).splitlines()[-1])
    if len(variants) > 1:
        van = statistics.median(ratios["vanilla"])
        rel = [f"{v}: {statistics.median(ratios[v]) / van:.2f}" for v in variants[1:]]
        print(f"\nVariant / vanilla (median ratios): {', '.join(rel)}")
    van = ratios["vanilla"]
    print(f"Vanilla: median {statistics.median(van):.2f}, max {max(van):.2f} "
          f"(targets: median <= 1.0, max <= 1.3, variants within 10% of vanilla)")

    if not args.no_memory:
        mem_rows = []
        for I, H, T in grid:
            ref, ours = peak_mb("nn.LSTM", I, H, T), peak_mb("vanilla", I, H, T)
            mem_rows.append([I, H, T, f"{ref:.0f}", f"{ours:.0f}", f"{ours / ref:.2f}"])
        print("\nPeak memory of one forward+backward (MB above the RSS before it), vanilla\n")
        print(markdown(["I", "H", "T", "nn.LSTM MB", "ours MB", "ratio"], mem_rows))
        if len(variants) > 1:
            I, H, T = QUICK_GRID[0] if args.quick else MEMORY_VARIANT_CONFIG
            ref = peak_mb("nn.LSTM", I, H, T)
            var_rows = [[v, f"{(mb := peak_mb(v, I, H, T)):.0f}", f"{mb / ref:.2f}"] for v in variants]
            print(f"\nPeak memory per variant at I={I}, H={H}, T={T} (nn.LSTM: {ref:.0f} MB)\n")
            print(markdown(["variant", "MB", "ratio to nn.LSTM"], var_rows))
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
