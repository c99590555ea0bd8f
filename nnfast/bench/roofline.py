"""Achieved training FLOP/s against the FMA peak: the training benchmark's samples/s times
the FLOP of one training sample, for nnfast and every peer, by batch size."""
from __future__ import annotations


def flop_per_sample(sizes) -> int:
    """FLOP of one sample's training step through the Dense layers of `sizes` (784, 128, ...):
    the forward and the weight gradient of every layer (2 x in x out each), and the input
    gradient of every layer but the first, which needs none."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(layers))


def measured_peak_gflops(threads: int, seconds: float = 0.2, tries: int = 3) -> float:
    """The FMA peak of `threads` cores: one core's, measured now by nnfast's FMA loop with the
    active GEMM ISA's vectors, times the threads. The best of a few tries: a try that another
    process preempted measures less than the core can do."""
    from nnfast import _core
    return threads * max(_core._fma_peak_gflops(seconds) for _ in range(tries))


def gflops(rows, architectures) -> list[tuple[str, int, str, float]]:
    """(arch, batch, framework, GFLOP/s) of each of the benchmark's rows and frameworks."""
    return [(r["arch"], r["batch"], name, rate * flop_per_sample(architectures[r["arch"]]) / 1e9)
            for r in rows for name, rate in r["rates"].items()]


def plot(rows, architectures, peak_gflops: float, threads: int, path) -> None:
    """One panel per architecture: each framework's GFLOP/s against batch size, and the FMA
    peak of the threads used as a line (PNG at path)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = gflops(rows, architectures)
    archs = list(dict.fromkeys(p[0] for p in points))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sub = [p for p in points if p[0] == arch]
        for name in sorted({p[2] for p in sub}, key=lambda n: (not n.startswith("nnfast"), n)):
            ax.plot(*zip(*[(b, g) for _, b, n, g in sub if n == name]), marker="o", label=name)
        ax.axhline(peak_gflops, color="black", linestyle="--",
                   label=f"FMA peak, {threads} thread(s): {peak_gflops:.0f}")
        batches = sorted({p[1] for p in sub})
        ax.set(xscale="log", xlabel="batch size", ylabel="training GFLOP/s", ylim=(0, None),
               title=f"{arch} ({flop_per_sample(architectures[arch]):,} FLOP/sample)")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(rows, architectures, peak_gflops: float, threads: int) -> str:
    """The GFLOP/s of each row and framework, and their share of the FMA peak."""
    points = gflops(rows, architectures)
    names = sorted({p[2] for p in points}, key=lambda n: (not n.startswith("nnfast"), n))
    out = ["", f"## Training GFLOP/s and share of the FMA peak ({peak_gflops:.0f} GFLOP/s: one "
               f"core's measured FMA peak x {threads} thread(s))", "",
           "FLOP per sample: forward and weight gradient of every layer (2 x in x out each), "
           "input gradient of every layer but the first.", "",
           "| arch | batch | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 2)]
    for arch, batch in dict.fromkeys((p[0], p[1]) for p in points):
        by_name = {n: g for a, b, n, g in points if (a, b) == (arch, batch)}
        cells = [f"{by_name[n]:.1f} ({100 * by_name[n] / peak_gflops:.0f}%)" if n in by_name else "-"
                 for n in names]
        out.append(f"| {arch} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
