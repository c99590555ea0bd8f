#!/usr/bin/env bash
# nnfast._core built with AddressSanitizer and UndefinedBehaviorSanitizer, and the suites that
# drive the compiled kernels hardest run against it: primitives on awkward shapes, bad input,
# the fused training step, the GEMM on every ISA, the fuzzed bindings. Any report fails the
# run (UBSan does not recover; ASan stops at its first error); the last line says how many.
#   scripts/sanitize.sh [pytest arguments...]     (default: the suites below)
# The build goes to a temporary copy of the checkout's files (tracked and untracked, not
# ignored), so the checkout's own in-place build is untouched. PYTHON (default python3)
# needs the test extra; JOBS (default 2) parallel compiles. It took 28 minutes on a busy
# 2-core machine (the instrumented build most of it; 6 minutes of CPU), too long for every
# CI run: run it before each release.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
suites=(tests/test_primitives.py tests/test_bad_input.py tests/test_bad_input_training.py
        tests/test_fused_step.py tests/test_gemm_isa.py tests/test_fuzz_bindings.py)
[ $# -gt 0 ] && suites=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work"
cd "$work"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
echo "sanitize.sh: building nnfast._core with $flags"
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" NNFAST_CUDA=0 NNFAST_REQUIRE_EXTENSION=1 \
    "$python" setup.py build_ext --inplace -j "${JOBS:-2}" > build.log 2>&1 ||
    { tail -30 build.log; exit 1; }

# The Python executable is not instrumented: the ASan runtime must be loaded first. libstdc++
# is preloaded too, or ASan's interceptor of __cxa_throw finds no real one to call and
# aborts on the first C++ exception (every refused argument is one).
cxx=${CXX:-g++}
preload="$($cxx -print-file-name=libasan.so) $($cxx -print-file-name=libstdc++.so)"
log=$work/pytest.log
status=0
# detect_leaks=0: CPython frees little at exit by design, so leak reports would be noise.
LD_PRELOAD="$preload" PYTHONPATH="$work" NNFAST_ADAPTIVE_THREADS=0 \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$python" -m pytest -q -p no:cacheprovider -x "${suites[@]}" 2>&1 | tee "$log" || status=$?
reports=$(grep -c -E "ERROR: AddressSanitizer|runtime error:" "$log" || true)
echo "sanitize.sh: pytest exit status $status, $reports sanitizer reports"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ]
