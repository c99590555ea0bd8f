"""Training throughput of the Numba backend against the NumPy backend, in one process.

A 784-128-64-10 MLP (ReLU, softmax cross-entropy, Adam lr 1e-3, float32) trained through
fit(verbose=0) on fixed-seed synthetic data, batch 64 and 256. The two backends alternate
round by round (one epoch each), so both see the same machine load; each reports the
median samples/s. JIT compilation is excluded from the timing (the first fit() compiles,
or loads from the on-disk cache) and reported on its own, with the cold and cached times
of nnfast.warmup("numba"), each measured in a fresh process.

    python benchmarks/bench_numba_train.py [--rounds 7] [--threads N] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from publish import invocation, publish

SIZES = [784, 128, 64, 10]
BACKENDS = ("numba", "numpy")
WARMUP_PROBE = ("import json, time; t = time.perf_counter(); import nnfast; "
                "imported = time.perf_counter() - t; cpu = time.process_time(); "
                "seconds = nnfast.warmup('numba'); "
                "print(json.dumps({'import': imported, 'warmup': seconds, "
                "'warmup_cpu': time.process_time() - cpu}))")


def warmup_seconds(cache_dir: str) -> dict:
    """Import and warmup times in a fresh process whose kernel cache is `cache_dir`."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", WARMUP_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def train_rates(batch: int, rounds: int, samples) -> dict:
    from nnfast.bench.peers import NnfastTrainer
    X, y = samples
    trainers = {name: NnfastTrainer(name, SIZES, X, y, batch) for name in BACKENDS}
    rates = {name: [] for name in BACKENDS}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.epoch()
            rates[name].append(len(X) / (time.perf_counter() - start))
    stats = trainers["numba"].nnfast.get_backend("numba").contention_stats()
    return {"rates": {n: statistics.median(r) for n, r in rates.items()}, "contention": stats,
            "round_ratios": [a / b for a, b in zip(rates["numba"], rates["numpy"])],
            "first_fit": {n: t.compile_seconds for n, t in trainers.items()}}


def markdown(rows, compile_times, args, command) -> str:
    from nnfast.bench.train_bench import N_SAMPLES, cpu_model
    lines = [f"## Numba backend vs NumPy backend: training {'-'.join(map(str, SIZES))}", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} cores; {args.threads} thread(s) for both "
             "(Numba's pool, and OpenBLAS under the NumPy backend)",
             f"- date: {datetime.date.today().isoformat()}", f"- command: `{command}`",
             f"- fit(verbose=0), Adam lr 1e-3, softmax cross-entropy, float32, {N_SAMPLES} "
             f"fixed-seed synthetic samples; median samples/s of {args.rounds} epochs per backend, "
             "the backends alternating round by round", "",
             "| batch | numba (samples/s) | numpy (samples/s) | numba / numpy | per-round ratios (min-max) "
             "| numba calls late for a descheduled worker |",
             "| --- | --- | --- | --- | --- | --- |"]
    for batch, row in rows:
        r = row["rates"]
        ratios = row["round_ratios"]
        lines.append(f"| {batch} | {r['numba']:,.0f} | {r['numpy']:,.0f} | "
                     f"{r['numba'] / r['numpy']:.2f}x | {min(ratios):.2f}-{max(ratios):.2f} | "
                     f"{row['contention']['contended_regions']} (cumulative) |")
    lines += ["", "Excluded above: the first fit() of each trainer, which compiles the kernels or loads "
              "them from the on-disk cache: numba "
              + ", ".join(f"{row['first_fit']['numba']:.2f} s (batch {b})" for b, row in rows) + "."]
    if compile_times:
        cold, cached = compile_times
        lines += [f"nnfast.warmup('numba') (every kernel, float32 and float64) in a fresh process: "
                  f"cold cache {cold['warmup']:.1f} s ({cold['warmup_cpu']:.1f} s of CPU), "
                  f"warm cache {cached['warmup']:.2f} s ({cached['warmup_cpu']:.2f} s of CPU); "
                  f"`import nnfast` {cached['import']:.2f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-compile-times", action="store_true",
                        help="do not measure nnfast.warmup() with a cold and a warm cache")
    parser.add_argument("--markdown", help="write the results table to this file")
    args = parser.parse_args(argv)

    compile_times = None
    if not args.skip_compile_times:
        with tempfile.TemporaryDirectory() as cache_dir:
            compile_times = (warmup_seconds(cache_dir), warmup_seconds(cache_dir))

    import nnfast
    from nnfast.bench.train_bench import set_threads, synthetic_data
    set_threads(args.threads)
    nnfast.get_backend("numba")
    samples = synthetic_data()
    rows = []
    for batch in args.batch:
        rows.append((batch, train_rates(batch, args.rounds, samples)))
        r = rows[-1][1]["rates"]
        print(f"batch {batch}: numba {r['numba']:,.0f}/s  numpy {r['numpy']:,.0f}/s  "
              f"ratio {r['numba'] / r['numpy']:.2f}x", flush=True)
    command = invocation("bench_numba_train.py", argv)
    text = markdown(rows, compile_times, args, command)
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
