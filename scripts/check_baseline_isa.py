#!/usr/bin/env python3
"""Prove that nnfast._core runs on any x86-64 CPU: outside the ISA-specific microkernels
(sources named *_avx2_* / *_avx512_*, which the library calls only after its cpuid check)
there is no instruction beyond the x86-64 baseline (SSE2).

    scripts/check_baseline_isa.py [--build-temp DIR] [EXTENSION_OR_WHEEL ...]

1. Objects: disassembles (objdump -d) every object file under the build-temp directory
   (default: setuptools' build/temp.<platform>-<tag> for this interpreter, in the
   checkout that holds this script). A
   non-microkernel object may not contain an AVX/AVX2/FMA/AVX-512 instruction (a ymm, zmm
   or mask register, or a VEX/EVEX-encoded v-mnemonic) nor SSE3..SSE4.2, POPCNT, LZCNT or
   BMI. Each microkernel object must contain AVX instructions: the control that shows the
   detector and the per-file flags work.
2. Linked extension (a .so, or the _core inside a wheel): every function that holds such an
   instruction must be defined only by microkernel objects. This catches what (1) cannot:
   an inline function or template instantiated both in a microkernel object (compiled with
   -mavx2) and in a generic one, where the linker may keep the AVX2 copy for every caller.

Exit status 0 when clean, 1 on any violation (each listed), 2 on a usage error.
"""
from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

MICROKERNEL_MARKERS = ("_avx2_", "_avx512_")

# x86 virtualization instructions also start with "v" but are no vector extension.
VMX = {"verr", "verw", "vmcall", "vmlaunch", "vmresume", "vmxoff", "vmxon", "vmread", "vmwrite",
       "vmptrld", "vmptrst", "vmclear", "vmfunc", "vmrun", "vmload", "vmsave", "vmmcall"}
SSE3_TO_SSE42 = set("""
addsubps addsubpd haddps haddpd hsubps hsubpd lddqu movddup movshdup movsldup fisttp
pabsb pabsw pabsd palignr phaddw phaddd phaddsw phsubw phsubd phsubsw pmaddubsw pmulhrsw pshufb
psignb psignw psignd
blendpd blendps blendvpd blendvps dppd dpps extractps insertps movntdqa mpsadbw packusdw pblendvb
pblendw pcmpeqq pextrb pextrd pextrq phminposuw pinsrb pinsrd pinsrq pmaxsb pmaxsd pmaxuw pmaxud
pminsb pminsd pminuw pminud pmovsxbw pmovsxbd pmovsxbq pmovsxwd pmovsxwq pmovsxdq pmovzxbw
pmovzxbd pmovzxbq pmovzxwd pmovzxwq pmovzxdq pmuldq pmulld ptest roundpd roundps roundsd roundss
pcmpestri pcmpestrm pcmpistri pcmpistrm pcmpgtq crc32b crc32w crc32l crc32q
""".split())
# tzcnt is absent on purpose: gcc emits `rep bsf` (which objdump prints as tzcnt) for
# baseline code, because it executes as bsf on CPUs without BMI.
BIT_MANIPULATION = set("""
popcnt lzcnt andn bextr blsi blsmsk blsr bzhi mulx pdep pext rorx sarx shlx shrx movbe adcx adox
""".split())
PREFIXES = {"rep", "repz", "repnz", "repe", "repne", "lock", "data16", "addr32", "notrack", "bnd",
            "cs", "ds", "es", "ss", "fs", "gs"}
FUNCTION = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]+)>:$")
INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+(?P<text>\S.*)$")
# zmm, mask registers and vector registers 16..31 exist only with AVX-512 (EVEX).
AVX512_REGISTER = re.compile(r"%zmm\d|%k[0-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b")


def beyond_baseline(text: str) -> str | None:
    """The extension an instruction needs beyond x86-64 (SSE2), or None."""
    words = text.split()
    while words and words[0] in PREFIXES:
        words = words[1:]
    if not words:
        return None
    mnemonic, operands = words[0], " ".join(words[1:])
    if AVX512_REGISTER.search(operands):
        return "AVX-512"
    if "%ymm" in operands or (mnemonic.startswith("v") and mnemonic not in VMX):
        return "AVX/AVX2/FMA"
    if mnemonic in SSE3_TO_SSE42:
        return "SSE3..SSE4.2"
    if mnemonic in BIT_MANIPULATION:
        return "POPCNT/LZCNT/BMI"
    return None


def disassemble(path: Path):
    """Yield (function, instruction text) for every instruction of every executable section."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-w", str(path)],
                         check=True, capture_output=True, text=True).stdout
    function = "?"
    for line in out.splitlines():
        if match := FUNCTION.match(line):
            function = match["name"]
        elif match := INSTRUCTION.match(line):
            yield function, match["text"]


def defined_functions(obj: Path) -> set[str]:
    out = subprocess.run(["nm", "--defined-only", "-P", str(obj)],
                         check=True, capture_output=True, text=True).stdout
    return {fields[0] for fields in map(str.split, out.splitlines())
            if len(fields) >= 2 and fields[1] in ("T", "t", "W", "w", "i", "u")}


def is_microkernel(path: Path) -> bool:
    return any(marker in path.name for marker in MICROKERNEL_MARKERS)


def check_objects(objects: list[Path], root: Path) -> list[str]:
    problems = []
    for obj in objects:
        hits: dict[str, int] = {}
        first: dict[str, str] = {}
        total = 0
        for function, text in disassemble(obj):
            total += 1
            if (kind := beyond_baseline(text)) is not None:
                hits[kind] = hits.get(kind, 0) + 1
                first.setdefault(kind, f"{function}: {text}")
        name = obj.relative_to(root)
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(hits.items())) or "none"
        if is_microkernel(obj):
            status = "ok (microkernel)" if hits else "FAIL"
            print(f"  {status:<17} {name}: {total} instructions, beyond baseline: {summary}")
            if not hits:
                problems.append(f"{name}: a microkernel object without any AVX instruction "
                                "(per-file ISA flags not applied, or the detector is broken)")
        else:
            status = "ok" if not hits else "FAIL"
            print(f"  {status:<17} {name}: {total} instructions, beyond baseline: {summary}")
            problems += [f"{name}: {kind} instruction in baseline code, e.g. {first[kind]}"
                         for kind in sorted(hits)]
    return problems


def extension_from(path: Path, scratch: Path) -> Path:
    if path.suffix != ".whl":
        return path
    with zipfile.ZipFile(path) as wheel:
        names = [n for n in wheel.namelist() if re.fullmatch(r"nnfast/_core\.[^/]*\.so", n)]
        if len(names) != 1:
            raise SystemExit(f"{path}: expected one nnfast/_core*.so inside, found {names}")
        return Path(wheel.extract(names[0], scratch))


def check_extension(extension: Path, objects: list[Path]) -> list[str]:
    generic, micro = set(), set()
    for obj in objects:
        (micro if is_microkernel(obj) else generic).update(defined_functions(obj))
    flagged: dict[str, tuple[int, str]] = {}
    total = 0
    for function, text in disassemble(extension):
        total += 1
        if (kind := beyond_baseline(text)) is not None:
            count, example = flagged.get(function, (0, f"{kind}: {text}"))
            flagged[function] = (count + 1, example)
    allowed = {f for f in flagged if f in micro and f not in generic}
    print(f"  linked {extension.name}: {total} instructions; {len(flagged)} functions use "
          f"instructions beyond baseline, {len(allowed)} of them microkernel-only")
    problems = []
    for function, (count, example) in sorted(flagged.items()):
        if function in allowed:
            continue
        origin = ("also defined in a generic object: the linker may have kept the microkernel's "
                  "copy (an inline function or template shared across ISA files)"
                  if function in micro else "not defined by any microkernel object")
        problems.append(f"{extension.name}: {function} has {count} such instructions "
                        f"(e.g. {example}); {origin}")
    return problems


def default_build_temp() -> Path:
    # Where setuptools builds this interpreter's objects in the checkout holding this script:
    # build/temp.linux-x86_64-cpython-311
    project = Path(__file__).resolve().parent.parent
    return project / "build" / f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-temp", type=Path, default=None,
                        help="directory holding the object files (default: "
                             f"{default_build_temp()})")
    parser.add_argument("extensions", nargs="*", type=Path,
                        help="the linked nnfast._core (.so) or wheels that contain it")
    args = parser.parse_args(argv)
    if platform.machine().lower() not in ("x86_64", "amd64"):
        print(f"check_baseline_isa: {platform.machine()} is not x86-64; nothing to check")
        return 0
    build_temp = args.build_temp or default_build_temp()
    objects = sorted(build_temp.rglob("*.o"))
    if not objects:
        print(f"check_baseline_isa: no object files under {build_temp}", file=sys.stderr)
        return 2
    print(f"x86-64 baseline check of {len(objects)} objects under {build_temp}:")
    problems = check_objects(objects, build_temp)
    with tempfile.TemporaryDirectory() as scratch:
        for path in args.extensions:
            problems += check_extension(extension_from(path, Path(scratch)), objects)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("check_baseline_isa: " + ("FAILED" if problems else
          "OK, no instruction beyond x86-64 baseline outside the microkernels"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
