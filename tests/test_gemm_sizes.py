"""GEMM sizes beyond 32 bits, without the memory they would take: an (1, 2**31 + 16) output
and bias whose virtual pages all map the same 1 MiB of physical memory (Linux memfd), so a
kernel loop over every column runs in full while only 2 MiB are resident."""
from __future__ import annotations

import ctypes
import mmap
import os
import sys

import numpy as np
import pytest

import nnfast

pytestmark = [
    pytest.mark.skipif("cpp" not in nnfast.available_backends(), reason="needs nnfast._core"),
    pytest.mark.skipif(not sys.platform.startswith("linux") or sys.maxsize < 2 ** 32,
                       reason="aliased mappings are made with Linux memfd on a 64-bit system"),
]

PERIOD = 1 << 20  # bytes of physical memory behind each array
PROT_NONE, MAP_FIXED, MAP_NORESERVE = 0, 0x10, 0x4000  # <sys/mman.h> on Linux


@pytest.fixture
def aliased():
    """aliased(n, dtype): a writable 1-D array of n elements whose every PERIOD bytes are the
    same physical memory; unmapped at the end of the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    mappings = []

    def make(n, dtype):
        size = -(-n * np.dtype(dtype).itemsize // PERIOD) * PERIOD
        base = libc.mmap(None, size, PROT_NONE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            pytest.skip(f"cannot reserve {size} bytes of address space")
        mappings.append((base, size))
        fd = os.memfd_create("nnfast-test-alias")
        try:
            os.ftruncate(fd, PERIOD)
            for offset in range(0, size, PERIOD):
                placed = libc.mmap(base + offset, PERIOD, mmap.PROT_READ | mmap.PROT_WRITE,
                                   mmap.MAP_SHARED | MAP_FIXED, fd, 0)
                assert placed == base + offset, os.strerror(ctypes.get_errno())
        finally:
            os.close(fd)
        return np.frombuffer((ctypes.c_char * size).from_address(base), dtype=dtype, count=n)

    yield make
    for base, size in mappings:
        libc.munmap(base, size)


def test_gemm_epilogue_covers_more_than_2_31_columns(aliased):
    # K == 0: C = relu(bias). The column count was cast to int, so for N >= 2**31 the
    # activation silently ran on no column (or on N mod 2**32 of them).
    n = 2 ** 31 + 16
    out = aliased(n, np.float32).reshape(1, n)
    bias = aliased(n, np.float32)
    bias[:PERIOD // 4] = -1.0  # every element of the bias, through the aliasing
    out[0, :PERIOD // 4] = np.nan
    cpp = nnfast.get_backend("cpp")
    cpp.gemm(np.zeros((1, 0), np.float32), np.zeros((0, n), np.float32), out=out, bias=bias,
             activation="relu")
    # The last pass over the columns writes relu(-1) = 0 to every physical element.
    assert (out[0, :PERIOD // 4] == 0).all()
