"""A strict reader and a writer for the IDX format of MNIST and EMNIST.

IDX: a 4-byte big-endian magic (0x00 0x00 dtype ndim), then ``ndim`` big-endian
uint32 dimensions, then the payload. EMNIST uses dtype 0x08 (uint8) with
ndim 3 for images (magic 2051) and ndim 1 for labels (magic 2049).

Every defect (wrong magic, short header, payload longer or shorter than the header
says, a truncated or corrupt gzip stream) raises ``DataError`` naming the file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from letterbench.core.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def decompress(raw: bytes, name: str) -> bytes:
    """The IDX bytes inside a gzip stream, or ``raw`` itself when it is not gzip."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{name}: the gzip stream is truncated or corrupt ({exc}); "
            "download or import the file again (letterbench data fetch / data import)"
        ) from None


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into a uint8 array, checking every size."""
    data = decompress(raw, name)
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short to be an IDX file (no header)")
    magic = struct.unpack(">I", data[:4])[0]
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        hint = " (it looks like an HTML page)" if data.lstrip()[:1] == b"<" else ""
        raise DataError(
            f"{name}: not an IDX file: magic number {magic}, expected {IMAGES_MAGIC} (images) "
            f"or {LABELS_MAGIC} (labels){hint}"
        )
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: header cut short: {len(data)} bytes, the header needs {header_len}")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header_len
    if payload != expected:
        state = "truncated" if payload < expected else "longer than its header says"
        raise DataError(
            f"{name}: file is {state}: header says {'x'.join(map(str, dims))} = {expected:,} bytes "
            f"of data, the file holds {payload:,}; download or import it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_idx(raw, str(path))


def encode_idx(array: np.ndarray, compress: bool = True) -> bytes:
    """IDX bytes for a uint8 array of 1 (labels) or 3 (images) dimensions."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim not in (1, 3):
        raise ValueError(f"IDX arrays here are 1-D labels or 3-D images, got {array.ndim}-D")
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    return gzip.compress(data, mtime=0) if compress else data
