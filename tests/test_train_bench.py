"""`nnfast bench`, the training benchmark: it runs end to end on a small configuration and
reports, beside each ratio, how many of nnfast's epochs met contention."""
from __future__ import annotations

import re

import pytest

from nnfast.bench import train_bench

pytest.importorskip("nnfast._core")


class FakeTrainer:
    def __init__(self, name, on_epoch=lambda: None):
        self.name = name
        self.on_epoch = on_epoch

    def epoch(self):
        self.on_epoch()


def test_measure_counts_the_epochs_that_met_contention(monkeypatch):
    regions = [0]

    def contended_region():
        regions[0] += 1

    monkeypatch.setattr(train_bench, "cpp_contention_stats",
                        lambda: (lambda: {"contended_regions": regions[0], "backing_off": False}))
    monkeypatch.setattr(train_bench, "settle", lambda seconds=0.2: None)
    trainers = [FakeTrainer("nnfast-cpp", contended_region), FakeTrainer("peer")]
    rates, contended = train_bench.measure(trainers, rounds=3, samples=100)
    assert contended == {"nnfast-cpp": 3, "peer": 0}
    assert set(rates) == {"nnfast-cpp", "peer"} and all(r > 0 for r in rates.values())


def test_bench_writes_a_table_with_ratios_and_contended_epochs(tmp_path):
    table = tmp_path / "results.md"
    assert train_bench.main(["--arch", "784-128-64-10", "--batch", "1024", "--rounds", "1",
                             "--peers", "nnfast-cpp", "numpy-blueprint", "--no-latency",
                             "--mnist-epochs", "0", "--markdown", str(table)]) == 0
    row = next(line for line in table.read_text().splitlines()
               if line.startswith("| 784-128-64-10 | 1024 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-3] == "numpy-blueprint"
    assert re.fullmatch(r"\d+\.\d\dx", cells[-2]) and float(cells[-2][:-1]) > 0
    assert re.fullmatch(r"[01]/1", cells[-1])
