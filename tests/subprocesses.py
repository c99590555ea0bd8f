"""Running code in a fresh interpreter from a test, with a timeout that fails instead of hanging."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, timeout: float = 60.0, env=None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter, in its own session; a hang fails the test and kills
    the session (forked grandchildren included) instead of blocking CI."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the subprocess hung for {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
