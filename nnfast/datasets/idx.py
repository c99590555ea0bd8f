"""Reader for the IDX format of MNIST: a big-endian header, then raw C-order data."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

# The third byte of the magic number names the element type.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(ValueError):
    """The bytes are not a valid IDX file."""


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array of the file's shape and dtype."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IDXFormatError(f"{source}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise IDXFormatError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{source}: truncated header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise IDXFormatError(f"{source}: expected {expected} bytes for shape {shape}, got {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed if its name ends in .gz); check its md5 if given."""
    path = Path(path)
    raw = path.read_bytes()
    if md5 is not None:
        digest = hashlib.md5(raw).hexdigest()
        if digest != md5:
            raise IDXFormatError(f"{path}: md5 {digest} does not match the expected {md5}; "
                                 "the file is corrupted or not the one shipped with nnfast")
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IDXFormatError(f"{path}: not a valid gzip file ({exc})") from exc
    return parse_idx(raw, str(path))
