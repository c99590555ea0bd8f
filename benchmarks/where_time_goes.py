"""Where one training step's time goes: for each architecture of `nnfast bench` and each
batch size, the shares of a fit() step spent in each phase, measured inside the C++ step by
the profiling trainer (nnfast.profiling), and in Python around it.

    python benchmarks/where_time_goes.py [--threads 2] [--rounds 5] [--write DIR]

Each round runs, one after the other on the bench's data (8,192 samples, Adam, softmax
cross-entropy): one fit() epoch (the bench's nnfast-cpp trainer), one epoch of the
profiling trainer's steps on the same batch size and shuffled rows, and one epoch of the
production trainer's steps called the same way (the timers' cost is the difference of the
last two). Per step:

- each C++ phase: the profiling trainer's time in it;
- other: the profiling trainer's C++ time no phase accounts for;
- Python: a fit() step's wall time less the profiling trainer's C++ step, in two parts.
  "step call": a step() call's wall time from Python less its C++ step (the executor's
  step(), the optimizer's rule, the binding's argument checks); "fit": the rest of a fit()
  step (fit's loop, shuffling, callbacks and history, and, spread over the epoch's steps,
  what each fit() call does once: input checks, building the executor, the first step's
  workspace allocation; the bench calls fit() once per epoch).

Every figure is the median over rounds; shares are of their sum. --write DIR writes
RESULTS_where_time_goes_<isa>.md and where_time_goes_<isa>.png (a stacked bar per
architecture and batch), <isa> being the GEMM ISA that ran.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nnfast
from nnfast import _core, losses, nn, optim
from nnfast.bench import peers, roofline, train_bench
from nnfast.fused import FusedTrainer
from nnfast.profiling import PhaseTimes, ProfiledStep

BATCHES = (64, 256, 1024)
COLUMNS = (*PhaseTimes.PHASES, "step_call", "fit_loop")
LABELS = {"gemm_forward": "GEMM forward", "gemm_dx": "GEMM dX", "gemm_dw": "GEMM dW",
          "activation": "activations", "loss": "loss", "bias_grad": "bias grad",
          "optimizer": "optimizer", "gather": "gather", "other": "other",
          "step_call": "Python: step call", "fit_loop": "Python: fit"}


@dataclass(frozen=True)
class Row:
    arch: str
    batch: int
    seconds: dict      # column of COLUMNS -> median seconds per step
    fit_step: float    # median wall seconds of one fit() step
    cpp_step: float    # median C++ seconds of one profiled step
    plain_step: float  # median wall seconds of one production step called from Python
    timed_step: float  # the same for the profiling trainer: its timers cost the difference
    gemm_flop: dict    # "gemm_forward" / "gemm_dx" / "gemm_dw" -> FLOP per step

    def share(self, column: str) -> float:
        return self.seconds[column] / sum(self.seconds.values())


def gemm_flop(sizes, batch: int) -> dict:
    layers = list(zip(sizes[:-1], sizes[1:]))
    product = [2 * batch * a * b for a, b in layers]
    return {"gemm_forward": sum(product), "gemm_dw": sum(product), "gemm_dx": sum(product[1:])}


def model_of(sizes):
    """The bench's model (Dense + ReLU, a Dense output) from its initial weights, and Adam."""
    layers = []
    for i, (w, b) in enumerate(peers.initial_weights(sizes)):
        dense = nn.Dense(*w.shape)
        dense.weight[...] = w
        dense.bias[...] = b
        layers += [dense, nn.ReLU()] if i < len(sizes) - 2 else [dense]
    model = nn.Sequential(*layers)
    return model, optim.Adam(model.parameters(), lr=1e-3)


def epoch_of_steps(step, X, y, batch: int, rng) -> float:
    """Wall seconds of one epoch of step.step() calls on shuffled rows, as fit() makes them."""
    order = rng.permutation(len(X))
    start = time.perf_counter()
    for first in range(0, len(X), batch):
        step.step(X, y, order[first:first + batch])
    return time.perf_counter() - start


def measure_row(arch: str, batch: int, X, y, rounds: int) -> Row:
    sizes = train_bench.ARCHITECTURES[arch]
    steps = len(X) // batch
    fit = peers.NnfastTrainer("cpp", sizes, X, y, batch)  # warm: its constructor trains 2 steps
    loss = losses.get("cross_entropy")
    with nnfast.backend("cpp"):
        model, opt = model_of(sizes)
        profiled = ProfiledStep(model, loss, opt)
        model, opt = model_of(sizes)
        plain = FusedTrainer(model, loss, opt)
        rng = np.random.default_rng(0)
        for warm in (profiled, plain):
            warm.step(X, y, rng.permutation(len(X))[:batch])
        per_round = {c: [] for c in COLUMNS}
        fit_s, cpp_s, plain_s, timed_s = [], [], [], []
        for _ in range(rounds):
            train_bench.settle()
            start = time.perf_counter()
            fit.epoch()
            fit_s.append((time.perf_counter() - start) / steps)
            train_bench.settle()
            profiled.reset_times()
            timed_s.append(epoch_of_steps(profiled, X, y, batch, rng) / steps)
            t = profiled.times().per_step()
            for phase in PhaseTimes.PHASES:
                per_round[phase].append(getattr(t, phase))
            per_round["step_call"].append(timed_s[-1] - t.step)
            per_round["fit_loop"].append(fit_s[-1] - timed_s[-1])
            cpp_s.append(t.step)
            train_bench.settle()
            plain_s.append(epoch_of_steps(plain, X, y, batch, rng) / steps)
    median = statistics.median
    return Row(arch, batch, {c: median(v) for c, v in per_round.items()}, median(fit_s),
               median(cpp_s), median(plain_s), median(timed_s), gemm_flop(sizes, batch))


def header(threads: int, rounds: int, peak: float, command: str, load: str) -> list[str]:
    return [f"# Where a training step's time goes ({threads} thread(s), median of {rounds} rounds)",
            "",
            f"- machine: {train_bench.cpu_model()}, {os.cpu_count()} cores; GEMM ISA "
            f"{_core.gemm_isa()}; FMA peak {peak / threads:.1f} GFLOP/s per core (measured), "
            f"{peak:.1f} for {threads} thread(s)",
            f"- command: `{command}`; load average at the start: {load}",
            f"- {train_bench.N_SAMPLES} samples per epoch, Adam lr 1e-3, softmax cross-entropy, "
            "float32; phases measured inside the C++ step by the profiling trainer "
            "(nnfast.profiling); Python: step call = a step() call's wall time less its C++ "
            "step, fit = a fit() step's wall time less a step() call's (one fit() call per "
            "epoch, as the bench)",
            "- GEMM forward includes its fused bias and ReLU epilogue; activations are what "
            "runs outside it (ReLU's backward)"]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def markdown(rows, peak: float, lines: list[str]) -> str:
    out = [*lines, "", "## Shares of one fit() step", "",
           "| arch | batch | fit step (us) | " + " | ".join(LABELS[c] for c in COLUMNS) + " |",
           "|" + " --- |" * (len(COLUMNS) + 3)]
    for r in rows:
        out.append(f"| {r.arch} | {r.batch} | {1e6 * r.fit_step:,.0f} | " +
                   " | ".join(f"{100 * r.share(c):.1f}%" for c in COLUMNS) + " |")
    out += ["", f"## Achieved GFLOP/s and share of the FMA peak ({peak:.1f} GFLOP/s)", "",
            "Step: training FLOP per step (nnfast.bench.roofline) over the fit() step's wall "
            "time, and over the C++ step alone. A GEMM phase: its FLOP over its time. The "
            "profiling trainer's timers cost the difference of the last two columns.", "",
            "| arch | batch | fit step | C++ step | GEMM forward | GEMM dX | GEMM dW | "
            "production step (us) | profiling step (us) |",
            "|" + " --- |" * 9]
    for r in rows:
        flop = r.batch * roofline.flop_per_sample(train_bench.ARCHITECTURES[r.arch])

        def rate(f, seconds):
            return f"{f / seconds / 1e9:.1f} ({100 * f / seconds / 1e9 / peak:.0f}%)" if seconds > 0 else "-"

        out.append(f"| {r.arch} | {r.batch} | {rate(flop, r.fit_step)} | {rate(flop, r.cpp_step)} | " +
                   " | ".join(rate(r.gemm_flop[c], r.seconds[c])
                              for c in ("gemm_forward", "gemm_dx", "gemm_dw")) +
                   f" | {1e6 * r.plain_step:,.1f} | {1e6 * r.timed_step:,.1f} |")
    return "\n".join(out) + "\n"


def plot(rows, path) -> None:
    """A stacked bar of shares per batch size, one panel per architecture."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    archs = list(dict.fromkeys(r.arch for r in rows))
    fig, axes = plt.subplots(1, len(archs), figsize=(4.5 * len(archs), 4.5), squeeze=False,
                             sharey=True)
    # GEMMs in blues, the other C++ phases in distinct hues, Python in greys.
    colors = ("#08519c", "#3182bd", "#9ecae1", "#d62728", "#ff7f0e", "#bcbd22", "#2ca02c",
              "#9467bd", "#8c564b", "#525252", "#bdbdbd")
    for ax, arch in zip(axes[0], archs):
        sub = [r for r in rows if r.arch == arch]
        labels = [str(r.batch) for r in sub]
        bottom = np.zeros(len(sub))
        for column, color in zip(COLUMNS, colors, strict=True):
            share = np.array([100 * max(r.share(column), 0.0) for r in sub])
            ax.bar(labels, share, bottom=bottom, color=color, label=LABELS[column])
            bottom += share
        ax.set(title=arch, xlabel="batch size", ylim=(0, 100))
    axes[0][0].set_ylabel("share of one fit() step (%)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=list(train_bench.ARCHITECTURES),
                        choices=list(train_bench.ARCHITECTURES))
    parser.add_argument("--batch", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=train_bench.N_SAMPLES,
                        help="samples per epoch (a multiple of every batch size)")
    parser.add_argument("--write", type=Path, metavar="DIR",
                        help="write RESULTS_where_time_goes_<isa>.md and where_time_goes_<isa>.png "
                             "into DIR")
    args = parser.parse_args(argv)
    if any(args.samples % b for b in args.batch):
        parser.error(f"--samples {args.samples} is not a multiple of every --batch "
                     f"{' '.join(map(str, args.batch))}: each epoch must have only full batches")
    command = "python benchmarks/where_time_goes.py " + " ".join(argv if argv is not None else sys.argv[1:])
    nnfast.set_num_threads(args.threads)
    load = load_average()
    train_bench.settle()
    peak = roofline.measured_peak_gflops(args.threads)
    lines = header(args.threads, args.rounds, peak, command.strip(), load)
    X, y = train_bench.synthetic_data(n=args.samples)
    rows = []
    for arch in args.arch:
        for batch in args.batch:
            rows.append(measure_row(arch, batch, X, y, args.rounds))
            r = rows[-1]
            print(f"{arch:<15} batch {batch:>5}: fit step {1e6 * r.fit_step:,.0f} us, " +
                  ", ".join(f"{LABELS[c]} {100 * r.share(c):.0f}%" for c in COLUMNS), flush=True)
    text = markdown(rows, peak, lines)
    print(text)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / f"RESULTS_where_time_goes_{_core.gemm_isa()}.md").write_text(text)
        plot(rows, args.write / f"where_time_goes_{_core.gemm_isa()}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
