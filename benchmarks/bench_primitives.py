"""Every primitive of the cpp backend against the NumPy reference, at the shapes of the MLP
784-128-64-10 (batch 1, 64, 256, 1024), float32.

    python benchmarks/bench_primitives.py [--rounds 7] [--markdown FILE]   # table + ratios
    pytest benchmarks/bench_primitives.py --benchmark-enable               # pytest-benchmark

Each case first checks that cpp and numpy agree on the same inputs, then times both with
preallocated outputs (so both time the computation, not the allocation): the median of many
short samples taken in rounds, cpp and numpy interleaved so machine noise hits both alike.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import nnfast
from nnfast.backends import numpy_backend as ref

try:
    from nnfast.backends import cpp_backend as cpp
except ImportError:  # the pytest run skips; the script says why
    cpp = None

BATCHES = (1, 64, 256, 1024)
LAYERS = ((784, 128), (128, 64), (64, 10))
DTYPE = np.float32
RTOL, ATOL = 1e-4, 1e-5  # float32 kernels against the float32 reference (sums reordered)


class Buffers:
    """Outputs and in-place state: one copy of the initial arrays per backend."""

    def __init__(self, *arrays):
        self.initial, self.copies = arrays, {}

    def __call__(self, backend):
        if backend.name not in self.copies:
            self.copies[backend.name] = [a.copy() for a in self.initial]
        return self.copies[backend.name]

    def reset(self):
        self.copies.clear()


@dataclass
class Case:
    primitive: str
    shape: str
    run: Callable[[object], object]  # run(backend module) -> result, reusing `buffers`
    buffers: Buffers
    atol: float = ATOL

    def check(self):
        """cpp and numpy agree, starting from the same state."""
        self.buffers.reset()
        got, want = self.run(cpp), self.run(ref)
        for g, w in zip(_flat(got), _flat(want)):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=self.atol,
                                       err_msg=f"{self.primitive} {self.shape}")
        self.buffers.reset()


def _flat(result):
    return list(result) if isinstance(result, tuple) else [result]


def gemm_atol(a, b):
    """Rounding bound of float32 dot products of length k: 4 k eps max(|a| @ |b|)."""
    k = a.shape[1]
    return 4 * k * np.finfo(DTYPE).eps * float((np.abs(a) @ np.abs(b)).max())


def batch_cases(batch, rng):
    cases = []
    out = None  # the Buffers of the cases being added

    def add(primitive, shape, run, atol=ATOL):
        cases.append(Case(primitive, shape, run, out, atol))

    for fan_in, fan_out in LAYERS:
        x = rng.standard_normal((batch, fan_in)).astype(DTYPE)
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(DTYPE)
        b = rng.standard_normal(fan_out).astype(DTYPE)
        g = rng.standard_normal((batch, fan_out)).astype(DTYPE)
        out = Buffers(np.empty((batch, fan_out), DTYPE), np.empty((fan_in, fan_out), DTYPE),
                       np.empty((batch, fan_in), DTYPE), np.empty(fan_out, DTYPE))
        act = "relu" if fan_out != 10 else None
        add("gemm fwd +bias" + (" +relu" if act else ""), f"({batch},{fan_in})@({fan_in},{fan_out})",
            lambda B, x=x, w=w, b=b, act=act, out=out: B.gemm(x, w, out(B)[0], bias=b, activation=act),
            gemm_atol(x, w))
        add("gemm dW = x^T g", f"({fan_in},{batch})@({batch},{fan_out})",
            lambda B, x=x, g=g, out=out: B.gemm(x, g, out(B)[1], trans_a=True), gemm_atol(x.T, g))
        add("gemm dx = g W^T", f"({batch},{fan_out})@({fan_out},{fan_in})",
            lambda B, g=g, w=w, out=out: B.gemm(g, w, out(B)[2], trans_b=True), gemm_atol(g, w.T))
        add("bias_grad", f"({batch},{fan_out})",
            lambda B, g=g, out=out: B.bias_grad(g, out(B)[3]))

    for width in (128, 64):
        x = rng.standard_normal((batch, width)).astype(DTYPE)
        g = rng.standard_normal((batch, width)).astype(DTYPE)
        y = {kind: ref.activation_forward(kind, x) for kind in ("relu", "tanh")}
        out = Buffers(np.empty_like(x))
        for kind in ("relu", "tanh"):
            add(f"{kind} fwd", f"({batch},{width})",
                lambda B, kind=kind, x=x, out=out: B.activation_forward(kind, x, out(B)[0]))
            add(f"{kind} bwd", f"({batch},{width})",
                lambda B, kind=kind, x=x, g=g, y=y[kind], out=out:
                B.activation_backward(kind, g, x, y, out(B)[0]))

    if batch >= 2:  # batch norm in training mode needs two samples
        width = 128
        x = (2 * rng.standard_normal((batch, width)) + 1).astype(DTYPE)
        g = rng.standard_normal((batch, width)).astype(DTYPE)
        gamma, beta = rng.standard_normal(width).astype(DTYPE), rng.standard_normal(width).astype(DTYPE)
        _, mean, inv_std = ref.batchnorm_forward_train(x, gamma, beta, np.zeros(width, DTYPE),
                                                       np.ones(width, DTYPE))
        out = Buffers(np.empty_like(x), np.zeros(width, DTYPE), np.ones(width, DTYPE),
                      np.zeros(width, DTYPE), np.zeros(width, DTYPE))
        shape = f"({batch},{width})"
        add("batchnorm fwd train", shape, lambda B, x=x, gamma=gamma, beta=beta, out=out:
            B.batchnorm_forward_train(x, gamma, beta, out(B)[1], out(B)[2], out(B)[0]))
        add("batchnorm fwd eval", shape, lambda B, x=x, gamma=gamma, beta=beta, out=out:
            B.batchnorm_forward_eval(x, gamma, beta, mean, 1 / inv_std ** 2, out(B)[0]))
        add("batchnorm bwd", shape, lambda B, x=x, g=g, gamma=gamma, out=out:
            B.batchnorm_backward(g, x, mean, inv_std, gamma, out(B)[0], out(B)[3], out(B)[4]))
        mask = ref.dropout_forward(x, p=0.2, seed=1, offset=0)[1]
        out = Buffers(np.empty_like(x), np.empty(x.shape, np.uint8))
        add("dropout fwd", shape, lambda B, x=x, out=out:
            B.dropout_forward(x, out(B)[0], out(B)[1], p=0.2, seed=1, offset=0))
        add("dropout bwd", shape, lambda B, g=g, mask=mask, out=out:
            B.dropout_backward(g, mask, out(B)[0], p=0.2))

    classes = 10
    logits = (3 * rng.standard_normal((batch, classes))).astype(DTYPE)
    labels = rng.integers(0, classes, batch)
    onehot = np.eye(classes, dtype=DTYPE)[labels]
    g = rng.standard_normal((batch, classes)).astype(DTYPE)
    probs = ref.activation_forward("softmax", logits)
    shape = f"({batch},{classes})"
    out = Buffers(np.empty_like(logits))
    add("softmax fwd", shape, lambda B: B.activation_forward("softmax", logits, out(B)[0]))
    add("softmax bwd", shape,
        lambda B: B.activation_backward("softmax", g, logits, probs, out(B)[0]))
    add("softmax-CE fwd (labels)", shape,
        lambda B: B.softmax_cross_entropy_forward(logits, labels, out(B)[0]))
    add("softmax-CE fwd (one-hot)", shape,
        lambda B: B.softmax_cross_entropy_forward(logits, onehot, out(B)[0]))
    add("softmax-CE bwd (labels)", shape,
        lambda B: B.softmax_cross_entropy_backward(probs, labels, out(B)[0]))

    target = rng.integers(0, 2, (batch, classes)).astype(DTYPE)
    prob = rng.uniform(0.01, 0.99, (batch, classes)).astype(DTYPE)
    for loss, pred in (("mse", logits), ("bce", prob), ("bce_with_logits", logits)):
        add(f"{loss} fwd", shape,
            lambda B, loss=loss, pred=pred: getattr(B, f"{loss}_forward")(pred, target))
        add(f"{loss} bwd", shape,
            lambda B, loss=loss, pred=pred: getattr(B, f"{loss}_backward")(pred, target, out(B)[0]))
    return cases


def optimizer_cases(rng):
    cases = []
    for fan_in, fan_out in LAYERS:
        p, g = (rng.standard_normal((fan_in, fan_out)).astype(DTYPE) for _ in range(2))
        state = Buffers(p, np.zeros_like(p), np.zeros_like(p))
        shape = f"({fan_in},{fan_out})"
        cases += [
            Case("sgd_update", shape, lambda B, g=g, s=state: B.sgd_update(s(B)[0], g, lr=1e-2),
                 state),
            Case("sgd_update nesterov wd", shape,
                 lambda B, g=g, s=state: B.sgd_update(s(B)[0], g, s(B)[1], lr=1e-2, momentum=0.9,
                                                      nesterov=True, weight_decay=1e-4), state),
            Case("adam_update", shape,
                 lambda B, g=g, s=state: B.adam_update(s(B)[0], g, s(B)[1], s(B)[2], lr=1e-3,
                                                       step=1), state),
            Case("adamw_update", shape,
                 lambda B, g=g, s=state: B.adam_update(s(B)[0], g, s(B)[1], s(B)[2], lr=1e-3,
                                                       weight_decay=1e-2, step=1, decoupled=True),
                 state),
            Case("sum_squares (grad norm)", shape, lambda B, g=g: B.sum_squares(g), state),
            Case("weight_penalty fwd", shape,
                 lambda B, p=p: B.weight_penalty_forward(p, l1=1e-4, l2=1e-3), state),
            Case("weight_penalty bwd", shape,
                 lambda B, p=p, s=state: B.weight_penalty_backward(p, s(B)[1], l1=1e-4, l2=1e-3),
                 state),
            Case("scale_inplace", shape, lambda B, s=state: B.scale_inplace(s(B)[2], alpha=0.5),
                 state),
            Case("clip_inplace", shape,
                 lambda B, s=state: B.clip_inplace(s(B)[0], lo=-1.0, hi=1.0), state),
        ]
    return cases


def all_cases():
    rng = np.random.default_rng(0)
    cases = [case for batch in BATCHES for case in batch_cases(batch, rng)]
    return cases + optimizer_cases(rng)


# ----------------------------------------------------------------------------- pytest-benchmark

CASES = all_cases() if cpp is not None else []


@pytest.mark.parametrize("impl", ["cpp", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.primitive}-{c.shape}".replace(" ", "_"))
def test_primitive(benchmark, case, impl):
    if cpp is None:
        pytest.skip("cpp backend unavailable")
    case.check()
    backend = cpp if impl == "cpp" else ref
    benchmark.group = f"{case.primitive} {case.shape}"
    benchmark(case.run, backend)


# ----------------------------------------------------------------------------- script

def sample(fn, calls):
    """Seconds per call, over `calls` back-to-back calls."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls / 1e9


def measure(case, rounds, samples, sample_seconds):
    """Median over many short samples: a sample hit by a preemption (the machine is shared)
    is an outlier the median ignores, where one long timed loop would absorb it."""
    runs = {"cpp": lambda: case.run(cpp), "numpy": lambda: case.run(ref)}
    calls = {}
    for name, fn in runs.items():
        fn()  # warm up: first-call costs (thread pool start, page faults)
        single = statistics.median(sample(fn, 1) for _ in range(5))
        calls[name] = max(1, int(sample_seconds / max(single, 1e-9)))
    times = {name: [] for name in runs}
    for _ in range(rounds):  # cpp and numpy interleaved, so slow phases hit both
        for name, fn in runs.items():
            times[name] += [sample(fn, calls[name]) for _ in range(samples)]
    return {name: statistics.median(values) for name, values in times.items()}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=5, help="samples per round")
    parser.add_argument("--sample-seconds", type=float, default=50e-6,
                        help="calls per sample: enough for about this long")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if cpp is None:
        sys.exit(f"cpp backend unavailable: {nnfast.backends.unavailable_reason('cpp')}")
    cases = all_cases()
    for case in cases:
        case.check()
    lines = [
        f"Command: `python benchmarks/bench_primitives.py --rounds {args.rounds}"
        f" --samples {args.samples} --sample-seconds {args.sample_seconds}`  ",
        f"Date: {datetime.date.today().isoformat()}; CPU: {cpu_model()}, "
        f"{nnfast.get_num_threads()} threads (cpp), numpy {np.__version__}; "
        f"gemm microkernel: {nnfast._core.gemm_isa()}; float32.  ",
        f"Per call: median of {args.rounds} x {args.samples} samples of about "
        f"{args.sample_seconds * 1e6:.0f} us each. Speedup = numpy time / cpp time "
        "(> 1: cpp faster). Every case checked against numpy first "
        f"(rtol {RTOL}, atol {ATOL}).",
        "",
        "| primitive | shape | cpp us | numpy us | speedup |",
        "|---|---|---:|---:|---:|",
    ]
    print("\n".join(lines[:3]), flush=True)
    print(f"\n{'primitive':<28} {'shape':<22} {'cpp us':>10} {'numpy us':>10} {'speedup':>8}")
    for case in cases:
        t = measure(case, args.rounds, args.samples, args.sample_seconds)
        speedup = t["numpy"] / t["cpp"]
        print(f"{case.primitive:<28} {case.shape:<22} {t['cpp'] * 1e6:>10.2f} "
              f"{t['numpy'] * 1e6:>10.2f} {speedup:>8.2f}", flush=True)
        lines.append(f"| {case.primitive} | {case.shape} | {t['cpp'] * 1e6:.2f} | "
                     f"{t['numpy'] * 1e6:.2f} | {speedup:.2f} |")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
