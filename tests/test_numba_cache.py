"""Where the Numba backend caches compiled kernels, and that a cache it cannot write never
stops it from importing or running. Each case runs in a fresh process on a copy of the
package, so that the copy's directories can be made unwritable."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import nnfast

pytest.importorskip("numba")

# Compiles one kernel (relu forward, float64) and reports where it went.
PROBE = """
import json, numpy as np, nnfast
from nnfast.backends import numba_backend as nb
from nnfast.backends.numba_backend import _activations
assert (nb.activation_forward("relu", np.array([-1.0, 2.0])) == [0.0, 2.0]).all()
stats = _activations._forward_kernel.stats
print(json.dumps({"package": nnfast.__file__, "cache": nb.cache_location(),
                  "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


@pytest.fixture
def package_copy(tmp_path):
    """A copy of nnfast under tmp_path/site (without data files or the compiled extension)."""
    site = tmp_path / "site"
    shutil.copytree(Path(nnfast.__file__).parent, site / "nnfast",
                    ignore=shutil.ignore_patterns("__pycache__", "_data", "*.so", "*.pyd"))
    yield site
    for path in (site / "nnfast" / "backends" / "numba_backend",):  # let pytest delete tmp_path
        path.chmod(stat.S_IRWXU)


def make_unwritable(directory: Path) -> None:
    """No cache can be created in `directory`, even for root: a file sits where
    __pycache__ would go, and the directory is read-only."""
    (directory / "__pycache__").write_text("not a directory")
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)


def run_probe(site: Path, tmp_path: Path, **env_overrides) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "NNFAST_BACKEND", "PYTHONPATH")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(site))
    env.update(env_overrides)
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=site,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["package"].startswith(str(site)), report  # the copy, not the installed package
    return report


def cached_files(directory: Path) -> list:
    return sorted(p.name for p in directory.rglob("*.nbi"))


def test_cache_goes_next_to_the_package_and_is_reused(package_copy, tmp_path):
    first = run_probe(package_copy, tmp_path)
    in_tree = package_copy / "nnfast" / "backends" / "numba_backend" / "__pycache__"
    assert first["cache"] == str(in_tree)
    assert (first["hits"], first["misses"]) == (0, 1)
    assert cached_files(in_tree)
    second = run_probe(package_copy, tmp_path)
    assert (second["hits"], second["misses"]) == (1, 0)


def test_numba_cache_dir_is_honoured(package_copy, tmp_path):
    cache = tmp_path / "numba-cache"
    report = run_probe(package_copy, tmp_path, NUMBA_CACHE_DIR=str(cache))
    assert report["cache"].startswith(str(cache))
    assert cached_files(cache)


def test_read_only_package_caches_in_the_user_cache_dir(package_copy, tmp_path):
    make_unwritable(package_copy / "nnfast" / "backends" / "numba_backend")
    report = run_probe(package_copy, tmp_path)
    user_cache = tmp_path / "xdg" / "nnfast" / "numba"
    assert report["cache"].startswith(str(user_cache))
    assert cached_files(user_cache)
    assert run_probe(package_copy, tmp_path)["hits"] == 1


def test_no_writable_location_still_imports_and_runs(package_copy, tmp_path):
    make_unwritable(package_copy / "nnfast" / "backends" / "numba_backend")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    report = run_probe(package_copy, tmp_path, NUMBA_CACHE_DIR=str(blocker / "cache"),
                       XDG_CACHE_HOME=str(blocker / "xdg"))
    assert report["cache"] is None
    assert report["misses"] == 1


def test_editing_any_backend_file_invalidates_the_cache(package_copy, tmp_path):
    """Kernels inline helpers from other files: a change to any of them must recompile."""
    assert run_probe(package_copy, tmp_path)["misses"] == 1
    helper_file = package_copy / "nnfast" / "backends" / "numba_backend" / "_scalar.py"
    helper_file.write_text(helper_file.read_text() + "\n# edited\n")
    assert run_probe(package_copy, tmp_path)["misses"] == 1
