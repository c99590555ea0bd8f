#!/usr/bin/env python3
"""Prove that nnfast._core runs on any x86-64 CPU: no instruction beyond the x86-64
baseline (SSE2) runs unless a cpuid check chose it. Such code may live only in
  - the microkernels, sources named *_avx2_* / *_avx512_*, compiled with ISA flags and
    called through the dispatch table once cpuid allowed them, and
  - GCC target_clones clones (`f.arch_x86_64_v3`), which only the ifunc resolver
    `f.resolver` hands out, after its own cpuid check (`f.default` is baseline).

    scripts/check_baseline_isa.py [--build-temp DIR] [EXTENSION_OR_WHEEL ...]

1. Objects: disassembles (objdump -d) every object file under the build-temp directory
   (default: setuptools' build/temp.<platform>-<tag> for this interpreter, in the
   checkout that holds this script). Outside microkernels and clones no function may hold
   an AVX/AVX2/FMA/AVX-512 instruction (a ymm, zmm or mask register, or a VEX/EVEX
   v-mnemonic) nor SSE3..SSE4.2, POPCNT, LZCNT or BMI. Each microkernel object must hold
   AVX instructions: the control that shows the detector and the per-file flags work.
2. Linked extension (a .so, or the _core inside a wheel): every function holding such an
   instruction must be a microkernel function defined by no generic object, or a clone; and
   no other function may call or jump to one directly (only a pointer or an ifunc lets a
   cpuid check come first). This catches what (1) cannot: an inline function or template
   instantiated both in a microkernel object (compiled with -mavx2) and in a generic one,
   where the linker may keep the AVX2 copy for every caller.

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
# A call or jump to a fixed address: `call 5a3b0 <name>`, `jne 1f0 <name+0x10>`, or through
# the PLT, `jmp 1040 <name@plt>` (an ifunc's PLT entry leads to its resolver, not a clone).
DIRECT_BRANCH = re.compile(r"^(?:bnd\s+|notrack\s+)?(?:call|jmp|j[a-z]+)q?\s+[0-9a-f]+ "
                           r"<(?P<name>[^>+@]+)(?:@plt)?(?:\+0x[0-9a-f]+)?>$")
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


class Function:
    """What the check needs to know of one function: its instructions beyond baseline, and
    the functions it calls or jumps to directly (not through a pointer or the PLT)."""

    def __init__(self):
        self.total = 0
        self.beyond: dict[str, int] = {}
        self.example = ""
        self.direct_targets: set[str] = set()


def scan(path: Path) -> dict[str, Function]:
    functions: dict[str, Function] = {}
    for name, text in disassemble(path):
        f = functions.setdefault(name, Function())
        f.total += 1
        if (kind := beyond_baseline(text)) is not None:
            f.beyond[kind] = f.beyond.get(kind, 0) + 1
            f.example = f.example or f"{kind}: {text}"
        if (target := DIRECT_BRANCH.match(text)) and target["name"] != name:
            f.direct_targets.add(target["name"])
    return functions


def defined_functions(path: Path) -> set[str]:
    out = subprocess.run(["nm", "--defined-only", "-P", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return {fields[0] for fields in map(str.split, out.splitlines())
            if len(fields) >= 2 and fields[1] in ("T", "t", "W", "w", "i", "u")}


def ifunc_clone_target(name: str, resolved: set[str]) -> str | None:
    """The target of a GCC target_clones clone (`f.arch_x86_64_v3`), which only the ifunc
    resolver `f.resolver` hands out, after its cpuid check; None for other functions and
    for `f.default`, the clone every CPU may run."""
    base, _, rest = name.partition(".")
    target = rest.split(".")[0]
    return target if base in resolved and target not in ("default", "resolver") else None


def resolved_functions(symbols: set[str]) -> set[str]:
    return {name[:-len(".resolver")] for name in symbols if name.endswith(".resolver")}


def is_microkernel(path: Path) -> bool:
    return any(marker in path.name for marker in MICROKERNEL_MARKERS)


def summary(functions: dict[str, Function]) -> str:
    counts: dict[str, int] = {}
    for f in functions.values():
        for kind, n in f.beyond.items():
            counts[kind] = counts.get(kind, 0) + n
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


def check_objects(objects: list[Path], root: Path) -> list[str]:
    problems = []
    for obj in objects:
        functions = scan(obj)
        resolved = resolved_functions(defined_functions(obj))
        total = sum(f.total for f in functions.values())
        name = obj.relative_to(root)
        clones = {f for f in functions if ifunc_clone_target(f, resolved)}
        beyond = {f for f, info in functions.items() if info.beyond}
        if is_microkernel(obj):
            status = "ok (microkernel)" if beyond else "FAIL"
            if not beyond:
                problems.append(f"{name}: a microkernel object without any AVX instruction "
                                "(per-file ISA flags not applied, or the detector is broken)")
        else:
            bad = sorted(beyond - clones)
            status = "FAIL" if bad else "ok"
            problems += [f"{name}: {f}: {functions[f].example} in baseline code" for f in bad]
        in_clones = beyond & clones
        note = f" (in {len(in_clones)} ifunc clones)" if in_clones and not is_microkernel(obj) else ""
        print(f"  {status:<17} {name}: {total} instructions, beyond baseline: "
              f"{summary(functions)}{note}")
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
    functions = scan(extension)
    resolved = resolved_functions(defined_functions(extension))
    # Code that runs only after a cpuid check: microkernel functions (called through the
    # dispatch table) and ifunc clones (picked by their resolver).
    dispatched = {f for f in functions if (f in micro and f not in generic)
                  or ifunc_clone_target(f, resolved)}
    beyond = {f for f, info in functions.items() if info.beyond}
    total = sum(f.total for f in functions.values())
    print(f"  linked {extension.name}: {total} instructions; {len(beyond)} functions use "
          f"instructions beyond baseline, {len(beyond - dispatched)} of them outside the "
          f"microkernels and ifunc clones")
    problems = []
    for f in sorted(beyond - dispatched):
        origin = ("also defined in a generic object: the linker may have kept the microkernel's "
                  "copy (an inline function or template shared across ISA files)"
                  if f in micro else "neither a microkernel function nor an ifunc clone")
        problems.append(f"{extension.name}: {f} has {sum(functions[f].beyond.values())} such "
                        f"instructions (e.g. {functions[f].example}); {origin}")
    # Baseline code may reach that code only through a pointer or an ifunc, never by a
    # direct call, which no cpuid check could guard.
    for f in sorted(set(functions) - dispatched):
        for target in sorted(functions[f].direct_targets & beyond):
            problems.append(f"{extension.name}: baseline function {f} calls {target}, which uses "
                            f"{', '.join(sorted(functions[target].beyond))}, directly: call it "
                            "through the dispatch table instead")
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
          "OK, no instruction beyond x86-64 baseline outside the microkernels and ifunc "
          "clones, and none of those called directly"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
