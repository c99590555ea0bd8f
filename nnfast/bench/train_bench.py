"""The training benchmark: nnfast against PyTorch (eager, torch.compile), JAX (jit) and the
NumPy blueprint, in one process, with the same threads, data and initial weights.

Each point is the median samples/s over several rounds of one epoch each, after warm-up;
compile time is reported separately. Only ratios measured in one run are meaningful: the
machines are shared and their absolute speed moves.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ARCHITECTURES = {
    "784-128-64-10": [784, 128, 64, 10],
    "784-256-128-10": [784, 256, 128, 10],
    "784-512x4-10": [784, 512, 512, 512, 512, 10],
}
BATCHES = (32, 64, 256, 1024)
PEERS = ("nnfast-cpp", "nnfast-numba", "torch-eager", "torch-compile", "jax-jit", "numpy-blueprint")
N_SAMPLES = 8192  # a multiple of every batch size, so each epoch has only full batches


def synthetic_data(n=N_SAMPLES, features=784, classes=10, seed=0):
    """Fixed-seed data with learnable structure: labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, features), dtype=np.float32)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    y = (X @ teacher).argmax(axis=1).astype(np.int64)
    return X, y


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_trainers(names, sizes, X, y, batch, notes, warm_up=True):
    """The trainers of `names` (a peer that fails to build is noted and left out); warm_up:
    run (and so compile) their first two training steps, which only training needs."""
    from . import peers
    makers = {
        "nnfast-cpp": lambda: peers.NnfastTrainer("cpp", sizes, X, y, batch, warm_up=warm_up),
        "nnfast-numba": lambda: peers.NnfastTrainer("numba", sizes, X, y, batch, warm_up=warm_up),
        "torch-eager": lambda: peers.TorchTrainer(sizes, X, y, batch, warm_up=warm_up),
        "torch-compile": lambda: peers.TorchTrainer(sizes, X, y, batch, compiled=True,
                                                    warm_up=warm_up),
        "jax-jit": lambda: peers.JaxTrainer(sizes, X, y, batch, warm_up=warm_up),
        "numpy-blueprint": lambda: peers.NumpyBlueprintTrainer(sizes, X, y, batch),
    }
    trainers = []
    for name in names:
        try:
            trainers.append(makers[name]())
        except ImportError as exc:
            notes.setdefault(name, f"skipped: not installed ({exc})")
        except Exception as exc:  # a peer that fails to build is reported, not fatal
            notes.setdefault(name, f"skipped: {type(exc).__name__}: {exc}")
    return trainers


def cpp_contention_stats():
    """The C++ backend's contention_stats() (its parallel regions that met a descheduled
    thread, two in four of which make nnfast run on one thread for 50 to 400 ms, and
    whether it does now), as a function; None without that backend."""
    import nnfast
    if "cpp" not in nnfast.available_backends():
        return None
    return getattr(nnfast.get_backend("cpp"), "contention_stats", None)


def settle(seconds: float = 0.2) -> None:
    """Wait until the previous framework's idle threads stop spinning (OpenBLAS's, libgomp's
    and XLA's spin for up to about 0.1 s after their last call) and nnfast's contention
    backoff has expired, so that no framework is timed against another one's leftovers."""
    time.sleep(seconds)
    stats = cpp_contention_stats()
    while stats is not None and stats()["backing_off"]:
        time.sleep(0.05)


def measure(trainers, rounds: int, samples: int):
    """Median samples/s of each trainer over `rounds` epochs, and for each, how many of its
    epochs had nnfast's threads meet contention (another process on the cores: part of that
    epoch ran on one thread). The trainers take turns, one epoch each per round, so a burst
    of load from another process hits them all alike."""
    rates = {t.name: [] for t in trainers}
    contended = {t.name: 0 for t in trainers}
    stats = cpp_contention_stats()
    for _ in range(rounds):
        for t in trainers:
            settle()
            before = stats()["contended_regions"] if stats else 0
            start = time.perf_counter()
            t.epoch()
            rates[t.name].append(samples / (time.perf_counter() - start))
            if stats and stats()["contended_regions"] > before:
                contended[t.name] += 1
    return {name: statistics.median(r) for name, r in rates.items()}, contended


LATENCY_CALLS = 1000  # single-sample predict calls per timed block


def predict_latency(trainers, x, rounds: int, calls: int = LATENCY_CALLS) -> dict:
    """Median over rounds of the mean seconds per single-sample predict call, per trainer. The
    trainers take turns, one block of `calls` calls each per round (after a warm-up call that
    compiles), so a burst of load from another process hits them all alike."""
    times = {t.name: [] for t in trainers}
    for t in trainers:
        t.predict_one(x)
    for _ in range(rounds):
        for t in trainers:
            settle()
            start = time.perf_counter()
            for _ in range(calls):
                t.predict_one(x)
            times[t.name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(ts) for name, ts in times.items()}


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other processes on the cores), or "?"."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run_latency(peers_, threads, notes, rounds: int, warm_up: bool = True):
    """Single-sample predict latency on 784-128-64-10: {framework: microseconds}, and the load
    averages before and after."""
    set_threads(threads)
    X, y = synthetic_data(n=1024)
    trainers = make_trainers([p for p in peers_ if p != "numpy-blueprint"],
                             ARCHITECTURES["784-128-64-10"], X, y, 64, notes, warm_up)
    load_before = load_average()
    latency = {name: 1e6 * s for name, s in predict_latency(trainers, X[0], rounds).items()}
    load = f"{load_before} before, {load_average()} after"
    print(f"single-sample predict latency (us; load {load}): " +
          ", ".join(f"{k} {v:.1f}" for k, v in latency.items()), flush=True)
    return {"us": latency, "rounds": rounds, "load": load}


def set_threads(threads: int) -> None:
    import nnfast
    nnfast.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)  # numpy's BLAS, for the blueprint and the numpy backend
    except ImportError:
        pass


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def run(archs, batches, peers_, rounds, threads):
    set_threads(threads)
    X, y = synthetic_data()
    notes, rows = {}, []
    plan = [(arch, batch) for arch in archs for batch in batches]
    # Each row: 2 s for compilers to settle, then per round and framework 0.2 s of settling
    # and one epoch; the first row's time sets the estimate of the others.
    print(f"{len(plan)} rows x {len(peers_)} frameworks x {rounds} rounds of one epoch "
          f"({N_SAMPLES} samples); at least {_minutes(len(plan) * (2 + 0.2 * len(peers_) * rounds))} "
          "of settling alone", flush=True)
    start = time.perf_counter()
    for done, (arch, batch) in enumerate(plan, 1):
        trainers = make_trainers(peers_, ARCHITECTURES[arch], X, y, batch, notes)
        settle(2.0)  # torch.compile's worker processes finish compiling in the background
        rates, contended = measure(trainers, rounds, len(X))
        compile_s = {t.name: t.compile_seconds for t in trainers}
        rows.append({"arch": arch, "batch": batch, "rates": rates, "compile": compile_s,
                     "contended": contended.get("nnfast-cpp", 0), "rounds": rounds})
        elapsed = time.perf_counter() - start
        print(f"[row {done}/{len(plan)}, {_minutes(elapsed)} elapsed, about "
              f"{_minutes(elapsed / done * (len(plan) - done))} left] {format_row(rows[-1])}",
              flush=True)
    return rows, notes


def run_mnist(peers_, threads, notes, epochs: int = 5, batch: int = 64):
    """The real-data point: 784-128-64-10 on MNIST digits (8,000 to train, 2,000 to test, as
    the demo), every framework from the same initial weights; samples/s is the median epoch."""
    from nnfast import datasets
    set_threads(threads)
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist_split()
    trainers = make_trainers(peers_, ARCHITECTURES["784-128-64-10"], X_train, y_train, batch, notes)
    rates, contended = measure(trainers, epochs, len(X_train))
    result = {t.name: {"samples_per_sec": rates[t.name], "contended": contended[t.name],
                       "accuracy": float((np.asarray(t.predict(X_test)).argmax(1) == y_test).mean())}
              for t in trainers}
    print("MNIST: " + ", ".join(f"{k} {v['samples_per_sec']:,.0f}/s acc {v['accuracy']:.4f}"
                                for k, v in result.items()), flush=True)
    return result


def mnist_markdown(result, epochs, batch) -> str:
    if not result:
        return ""
    peer = max((n for n in result if not n.startswith("nnfast")),
               key=lambda n: result[n]["samples_per_sec"], default=None)
    out = ["", f"## Real data: MNIST 784-128-64-10, batch {batch}, {epochs} timed epochs after a "
               "two-batch warm-up, 8,000 training and 2,000 test digits", "",
           "| framework | samples/s (median epoch) | test accuracy | speed / best peer | contended epochs |",
           "| --- | --- | --- | --- | --- |"]
    for name, r in result.items():
        ratio = f"{r['samples_per_sec'] / result[peer]['samples_per_sec']:.2f}x" if peer else "-"
        contended = f"{r['contended']}/{epochs}" if name == "nnfast-cpp" else "-"
        out.append(f"| {name} | {r['samples_per_sec']:,.0f} | {r['accuracy']:.4f} | {ratio} | {contended} |")
    return "\n".join(out) + "\n"


def best_peer(rates: dict):
    peers_ = {k: v for k, v in rates.items() if not k.startswith("nnfast")}
    if not peers_:
        return None, None
    name = max(peers_, key=peers_.get)
    return name, peers_[name]


def format_row(row) -> str:
    peer, peer_rate = best_peer(row["rates"])
    parts = [f"{row['arch']:<15} batch {row['batch']:>5}"]
    for name, rate in row["rates"].items():
        parts.append(f"{name} {rate:>10,.0f}/s")
    if peer and "nnfast-cpp" in row["rates"]:
        parts.append(f"cpp/{peer} {row['rates']['nnfast-cpp'] / peer_rate:.2f}x")
        parts.append(f"contended epochs {row['contended']}/{row['rounds']}")
    return "  ".join(parts)


def latency_markdown(latency) -> str:
    if not latency:
        return ""
    us = latency["us"]
    out = ["", f"## Single-sample predict latency, 784-128-64-10 (microseconds, median of "
               f"{latency['rounds']} rounds of {LATENCY_CALLS} calls, frameworks alternating)", "",
           f"- load average (1, 5, 15 min): {latency['load']}", "",
           "| framework | latency (us) | nnfast-cpp speed-up |", "| --- | --- | --- |"]
    ours = us.get("nnfast-cpp")
    for name, t in us.items():
        out.append(f"| {name} | {t:.1f} | {t / ours:.2f}x |" if ours else f"| {name} | {t:.1f} | - |")
    peers_ = {k: v for k, v in us.items() if not k.startswith("nnfast")}
    if ours and peers_:
        fastest = min(peers_, key=peers_.get)
        out += ["", f"nnfast-cpp against the fastest peer, {fastest}: "
                    f"{peers_[fastest] / ours:.2f}x"]
    return "\n".join(out) + "\n"


def markdown(rows, notes, threads, rounds, command) -> str:
    names = sorted({n for r in rows for n in r["rates"]}, key=lambda n: (not n.startswith("nnfast"), n))
    out = [f"## Training throughput (samples/s, median of {rounds} epochs of {N_SAMPLES} samples)", "",
           f"- machine: {cpu_model()}, {os.cpu_count()} cores, {threads} thread(s) for every framework",
           f"- date: {datetime.date.today().isoformat()}", f"- command: `{command}`",
           "- Adam lr 1e-3, softmax cross-entropy, float32, same initial weights and data for all",
           "- contended epochs: nnfast-cpp's epochs in which its threads met a descheduled thread "
           "(another process on the cores; two such regions in four make nnfast run on one "
           "thread for 50 to 400 ms, see `contention_stats()`); a row with many of them "
           "measured the machine, not nnfast", ""]
    header = ("| arch | batch | " + " | ".join(names) +
              " | best peer | nnfast-cpp / best peer | contended epochs |")
    out += [header, "|" + " --- |" * (len(names) + 5)]
    for r in rows:
        peer, peer_rate = best_peer(r["rates"])
        cells = [f"{r['rates'][n]:,.0f}" if n in r["rates"] else "-" for n in names]
        ratio = (f"{r['rates']['nnfast-cpp'] / peer_rate:.2f}x"
                 if peer and "nnfast-cpp" in r["rates"] else "-")
        contended = f"{r['contended']}/{r['rounds']}" if "nnfast-cpp" in r["rates"] else "-"
        out.append(f"| {r['arch']} | {r['batch']} | " + " | ".join(cells) +
                   f" | {peer or '-'} | {ratio} | {contended} |")
    compile_names = sorted({n for r in rows for n, s in r["compile"].items() if s > 0.05})
    if compile_names:
        out += ["", "Warm-up / compile seconds (first two steps, excluded above): " + ", ".join(
            f"{n} {max(r['compile'].get(n, 0) for r in rows):.2f} s" for n in compile_names)]
    for name, note in sorted(notes.items()):
        out.append(f"- {name}: {note}")
    return "\n".join(out) + "\n"


def latency_markdown_page(latency, notes, threads, command) -> str:
    """--latency-only's report: the machine, the command and the latency table."""
    out = [f"- machine: {cpu_model()}, {os.cpu_count()} cores, {threads} thread(s) for every "
           f"framework", f"- date: {datetime.date.today().isoformat()}", f"- command: `{command}`"]
    out += [f"- {name}: {note}" for name, note in sorted(notes.items())]
    return "\n".join(out) + "\n" + latency_markdown(latency)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sub = [r for r in rows if r["arch"] == arch]
        for name in sorted({n for r in sub for n in r["rates"]}):
            pts = [(r["batch"], r["rates"][name]) for r in sub if name in r["rates"]]
            ax.plot(*zip(*pts), marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="samples/s", title=arch)
        batches = sorted({r["batch"] for r in sub})
        ax.set_xticks(batches, [str(b) for b in batches])  # 32, 64, ... not 10^2
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nnfast bench", description=__doc__)
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    parser.add_argument("--batch", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS, metavar="PEER",
                        help=f"frameworks to measure, of {', '.join(PEERS)} (nnfast-cpp is "
                             "added when no nnfast backend is named, as the ratios need it)")
    parser.add_argument("--list", action="store_true",
                        help="list the frameworks and architectures, then exit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", type=Path, help="write the results table to this file")
    parser.add_argument("--plot", type=Path, help="save samples/s against batch size (PNG)")
    parser.add_argument("--roofline", type=Path,
                        help="save training GFLOP/s against batch size with the measured FMA "
                             "peak (PNG), and add their table")
    latency = parser.add_mutually_exclusive_group()
    latency.add_argument("--no-latency", action="store_true",
                         help="skip the single-sample latency test")
    latency.add_argument("--latency-only", action="store_true",
                         help="run only the single-sample latency test (no training rows, no "
                              "MNIST run, no training warm-up)")
    parser.add_argument("--latency-rounds", type=int, default=15,
                        help="rounds of the latency test, each timing every framework in turn")
    parser.add_argument("--mnist-epochs", type=int, default=5,
                        help="timed epochs of the real MNIST run (0 skips it)")
    args = parser.parse_args(argv)
    if args.list:
        print("frameworks (--peers): " + ", ".join(PEERS))
        print("architectures (--arch): " + ", ".join(ARCHITECTURES))
        print("batch sizes (--batch, default): " + ", ".join(map(str, BATCHES)))
        return 0
    if not any(p.startswith("nnfast") for p in args.peers):
        print("--peers names no nnfast backend: adding nnfast-cpp, which every ratio compares",
              flush=True)
        args.peers = ["nnfast-cpp", *args.peers]
    command = ("python -m nnfast bench " + " ".join(argv if argv is not None else [])).strip()
    if args.latency_only:
        notes = {}
        latency = run_latency(args.peers, args.threads, notes, args.latency_rounds, warm_up=False)
        text = latency_markdown_page(latency, notes, args.threads, command)
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
        return 0
    rows, notes = run(args.arch, args.batch, args.peers, args.rounds, args.threads)
    latency = ({} if args.no_latency
               else run_latency(args.peers, args.threads, notes, args.latency_rounds))
    mnist = run_mnist(args.peers, args.threads, notes, args.mnist_epochs) if args.mnist_epochs else {}
    text = (markdown(rows, notes, args.threads, args.rounds, command) + latency_markdown(latency)
            + mnist_markdown(mnist, args.mnist_epochs, 64))
    if args.roofline:
        from . import roofline
        settle()
        peak = roofline.measured_peak_gflops(args.threads)
        text += roofline.markdown(rows, ARCHITECTURES, peak, args.threads)
        roofline.plot(rows, ARCHITECTURES, peak, args.threads, args.roofline)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plot:
        plot(rows, args.plot)
    return 0
