"""The profiling trainer (nnfast.profiling, _core.ProfilingTrainer) trains exactly as the
production trainer, and its phase times account for its steps; the "where the time goes"
and roofline reports run end to end on tiny cases. No timing is asserted: only that each
phase the step ran was seen, and that the phases add up to the step."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import nnfast
from nnfast import fused, losses, nn, optim
from nnfast.bench import roofline, train_bench

pytestmark = pytest.mark.skipif("cpp" not in nnfast.available_backends(),
                                reason="the compiled backend is not available")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def relu_mlp(dtype):
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype), nn.ReLU(),
                         nn.Dense(17, 9, seed=1, dtype=dtype), nn.ReLU(),
                         nn.Dense(9, 5, seed=2, dtype=dtype))


def mixed_mlp(dtype):
    """Every op kind, an activation outside a Dense epilogue and a weight penalty."""
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype, l2=1e-3),
                         nn.BatchNorm1d(17, dtype=dtype),
                         nn.Tanh(), nn.Dropout(0.2, seed=3),
                         nn.Residual(nn.Sequential(nn.Dense(17, 17, seed=1, dtype=dtype), nn.GELU())),
                         nn.Dense(17, 5, seed=2, dtype=dtype))


CASES = {
    "relu_adam_f32": (relu_mlp, lambda p: optim.Adam(p, lr=1e-2), np.float32),
    "mixed_sgd_clipnorm_f64": (mixed_mlp, lambda p: optim.SGD(p, lr=0.05, momentum=0.9, clipnorm=0.5),
                               np.float64),
    "relu_adamw_clipvalue_f32": (relu_mlp, lambda p: optim.AdamW(p, lr=1e-2, clipvalue=0.1),
                                 np.float32),
}


def train(step_type, make_model, make_opt, dtype, steps=12, batch=16):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((101, 13)).astype(dtype)
    y = rng.integers(0, 5, len(X)).astype(np.int64)
    model = make_model(dtype)
    opt = make_opt(model.parameters())
    with nnfast.backend("cpp"):
        step = step_type(model, losses.get("cross_entropy"), opt)
        results = [step.step(X, y, rng.permutation(len(X))[:batch]) for _ in range(steps)]
    return model, results, step


@pytest.mark.parametrize("case", sorted(CASES))
def test_profiled_step_trains_bitwise_as_the_production_step(case):
    from nnfast.profiling import ProfiledStep
    make_model, make_opt, dtype = CASES[case]
    plain, plain_results, _ = train(fused.FusedTrainer, make_model, make_opt, dtype)
    timed, timed_results, _ = train(ProfiledStep, make_model, make_opt, dtype)
    assert timed_results == plain_results
    for p, q in zip(plain.parameters(), timed.parameters()):
        assert np.array_equal(p.data, q.data)
    for a, b in zip(plain.buffers(), timed.buffers()):
        assert np.array_equal(a, b)


def test_phase_times_cover_every_phase_the_step_ran_and_add_up_to_it():
    from nnfast.profiling import PhaseTimes, ProfiledStep
    _, _, step = train(ProfiledStep, mixed_mlp, lambda p: optim.Adam(p, lr=1e-2, clipnorm=1.0),
                       np.float64, steps=5)
    t = step.times()
    assert t.steps == 5
    for phase in ("gemm_forward", "gemm_dx", "gemm_dw", "activation", "loss", "bias_grad",
                  "optimizer", "gather"):
        assert getattr(t, phase) > 0, phase
    named = sum(getattr(t, p) for p in PhaseTimes.PHASES if p != "other")
    assert t.other == pytest.approx(t.step - named) and t.other >= 0
    per_step = t.per_step()
    assert per_step.steps == 1 and per_step.step == pytest.approx(t.step / 5)
    step.reset_times()
    assert step.times().steps == 0 and step.times().step == 0


def test_flop_per_sample_counts_forward_and_gradients():
    # The figure for 784-128-64-10: 4 x 784 x 128 + 6 x 128 x 64 + 6 x 64 x 10.
    assert roofline.flop_per_sample([784, 128, 64, 10]) == 454_400
    assert roofline.flop_per_sample([784, 512, 512, 512, 512, 10]) == 6_354_944


def test_roofline_table_and_plot_from_bench_rows(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"arch": "784-128-64-10", "batch": b, "rates": {"nnfast-cpp": 2e5, "numpy-blueprint": 5e4}}
            for b in (64, 1024)]
    text = roofline.markdown(rows, train_bench.ARCHITECTURES, 200.0, 2)
    # 2e5 samples/s x 454,400 FLOP = 90.9 GFLOP/s, 45% of 200.
    assert "| 784-128-64-10 | 64 | 90.9 (45%) | 22.7 (11%) |" in text
    roofline.plot(rows, train_bench.ARCHITECTURES, 200.0, 2, tmp_path / "roofline.png")
    assert (tmp_path / "roofline.png").stat().st_size > 0


def test_bench_roofline_option_writes_the_plot_and_table(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    rows = [{"arch": "784-128-64-10", "batch": 1024, "rates": {"nnfast-cpp": 1e5}, "compile": {},
             "contended": 0, "rounds": 1}]
    monkeypatch.setattr(train_bench, "run", lambda *args: (rows, {}))  # the timing is tested above
    table, png = tmp_path / "results.md", tmp_path / "roofline.png"
    assert train_bench.main(["--arch", "784-128-64-10", "--batch", "1024", "--peers", "nnfast-cpp",
                             "--no-latency", "--mnist-epochs", "0", "--markdown", str(table),
                             "--roofline", str(png)]) == 0
    assert png.stat().st_size > 0
    assert re.search(r"\| 784-128-64-10 \| 1024 \| \d+\.\d \(\d+%\) \|", table.read_text())


def load_where_time_goes():
    spec = importlib.util.spec_from_file_location("where_time_goes", BENCHMARKS / "where_time_goes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_where_time_goes_writes_its_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    script = load_where_time_goes()
    assert script.main(["--arch", "784-128-64-10", "--batch", "8", "16", "--rounds", "1",
                        "--samples", "32", "--threads", "1", "--write", str(tmp_path)]) == 0
    isa = nnfast._core.gemm_isa()
    text = (tmp_path / f"RESULTS_where_time_goes_{isa}.md").read_text()
    assert (tmp_path / f"where_time_goes_{isa}.png").stat().st_size > 0
    share_row = next(line for line in text.splitlines() if line.startswith("| 784-128-64-10 | 16 | "))
    cells = [c.strip() for c in share_row.strip("|").split("|")]
    assert len(cells) == 3 + len(script.COLUMNS)
    assert all(re.fullmatch(r"-?\d+\.\d%", c) for c in cells[3:])
    assert sum(float(c[:-1]) for c in cells[3:]) == pytest.approx(100, abs=0.1 * len(script.COLUMNS))


def test_where_time_goes_refuses_batches_that_do_not_divide_the_epoch(capsys):
    script = load_where_time_goes()
    with pytest.raises(SystemExit):
        script.main(["--batch", "64", "100", "--samples", "256"])
    assert "--samples 256 is not a multiple of every --batch 64 100" in capsys.readouterr().err
