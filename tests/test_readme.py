"""Every Python snippet of README.md runs, in order, in one fresh interpreter (a later snippet
may use what an earlier one defined), so that the README stays true.

A snippet may be left out only with its reason, written on the line before it:
<!-- readme-test: skip: why this snippet cannot run here -->
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
SKIP = re.compile(r"<!-- readme-test: skip: (.*?) -->")


def python_snippets(text: str):
    """(first line number, code, skip reason or None) of each ```python block."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            marker = SKIP.search(lines[i - 1]) if i else None
            found.append((start + 1, "\n".join(lines[start:end]), marker and marker.group(1).strip()))
            i = end
        i += 1
    return found


def test_the_readme_has_python_snippets_and_skips_only_with_a_reason():
    snippets = python_snippets(open(README, encoding="utf-8").read())
    assert len(snippets) >= 4
    for line, _, reason in snippets:
        assert reason is None or len(reason) > 10, f"README.md:{line}: skipped without a reason"


def test_every_readme_python_snippet_runs(tmp_path):
    pytest.importorskip("nnfast._core")
    snippets = python_snippets(open(README, encoding="utf-8").read())
    parts = []
    for line, code, reason in snippets:
        if reason is None:  # each snippet reports where it starts, so a failure names it
            parts.append(f"print('README.md:{line}', flush=True)\n{code}")
    script = tmp_path / "readme_snippets.py"
    script.write_text("\n".join(parts), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (f"a README snippet failed after "
                                    f"{result.stdout.strip().splitlines()[-1:]}:\n{result.stderr}")
