"""The example scripts run from the command line, print their result and save their plot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("script,args,expect", [
    ("xor.py", ["--epochs", "300"], "accuracy"),
    ("circles.py", ["--epochs", "50"], "test accuracy"),
    ("breast_cancer.py", [], "test accuracy"),
    ("mnist.py", ["--epochs", "1"], "test accuracy"),
    ("spam.py", ["--seeds", "0", "--members", "1"], "test ROC-AUC"),
])
def test_example_runs_and_saves_its_plot(tmp_path, script, args, expect):
    if script == "spam.py":
        pytest.importorskip("sklearn", reason="the spam example scores with scikit-learn")
    plot = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--backend", "numpy",
                           "--plot", str(plot), *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})  # see test_classic_tasks
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout and str(plot) in proc.stdout
    assert plot.read_bytes()[:8] == PNG_MAGIC
    if script == "mnist.py":  # both models by default; the deep one's curves beside the plain's
        assert (tmp_path / "curves_deep.png").read_bytes()[:8] == PNG_MAGIC
    if script == "spam.py":  # the ROC and precision/recall curves beside the training curves
        for curve in ("curves_roc.png", "curves_pr.png"):
            assert (tmp_path / curve).read_bytes()[:8] == PNG_MAGIC
        assert "sklearn HistGradientBoosting" in proc.stdout  # the peers' rows in the same run
