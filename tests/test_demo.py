"""The main job: the README's demo trains on real MNIST to >= 92% test accuracy."""
from __future__ import annotations

import subprocess
import sys

from nnfast.demo import run_demo


def test_demo_reaches_92_percent(backend):
    result = run_demo(verbose=0)
    assert result["backend"] == backend.name
    assert result["test_accuracy"] >= 0.92, result
    assert result["samples_per_sec"] > 0


def test_demo_command_prints_accuracy_and_speed():
    proc = subprocess.run([sys.executable, "-m", "nnfast", "demo", "--epochs", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for word in ("test accuracy", "samples/s", "backend"):
        assert word in proc.stdout
