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


def test_bench_lists_its_frameworks_and_architectures(capsys):
    assert train_bench.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in train_bench.PEERS)
    assert all(arch in out for arch in train_bench.ARCHITECTURES)


def test_unknown_peer_is_refused_with_the_valid_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_bench.main(["--peers", "foo"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'foo'" in err and all(name in err for name in train_bench.PEERS)


def tables(text):
    """Each Markdown table of `text` as a list of its rows' cell counts."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(len(line.strip().strip("|").split("|")))
        elif current:
            found.append(current)
            current = []
    return found


def test_peers_without_nnfast_still_measure_nnfast_and_tables_are_well_formed(tmp_path, capsys):
    table, plot = tmp_path / "results.md", tmp_path / "plot.png"
    assert train_bench.main(["--arch", "784-128-64-10", "--batch", "256", "1024", "--rounds", "1",
                             "--peers", "numpy-blueprint", "--mnist-epochs", "0",
                             "--markdown", str(table), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "adding nnfast-cpp" in out
    assert "[row 1/2," in out and "[row 2/2," in out and "left]" in out
    text = table.read_text()
    found = tables(text)
    assert len(found) == 2  # throughput and latency
    for counts in found:
        assert len(set(counts)) == 1, (counts, text)
    row = next(line for line in text.splitlines() if line.startswith("| 784-128-64-10 | 1024 |"))
    assert re.search(r"\| \d+\.\d\dx \|", row), row


def test_plot_labels_the_batch_axis_with_the_batch_sizes(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    rows = [{"arch": "784-128-64-10", "batch": b, "rates": {"nnfast-cpp": 1000.0 * b}}
            for b in train_bench.BATCHES]
    train_bench.plot(rows, tmp_path / "plot.png")
    ax = plt.gcf().get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "256", "1024"]
    plt.close("all")


def test_latency_only_times_single_sample_predict_without_training(tmp_path, monkeypatch):
    monkeypatch.setattr(train_bench, "settle", lambda seconds=0.2: None)
    epochs = []
    monkeypatch.setattr(train_bench, "measure", lambda *args: epochs.append(args))
    table = tmp_path / "latency.md"
    assert train_bench.main(["--latency-only", "--peers", "nnfast-cpp", "torch-eager",
                             "--latency-rounds", "3", "--markdown", str(table)]) == 0
    text = table.read_text()
    assert not epochs and "Training throughput" not in text
    assert "median of 3 rounds" in text and "load average" in text
    assert re.search(r"^\| nnfast-cpp \| \d+\.\d \| 1\.00x \|$", text, re.M), text
    if "torch-eager: skipped" not in text:
        assert re.search(r"^nnfast-cpp against the fastest peer, torch-eager: \d+\.\d\dx$",
                         text, re.M), text
    assert [set(counts) for counts in tables(text)] == [{3}]
