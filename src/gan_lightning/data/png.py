"""Uncompressed PNGs that read back at memory speed: how ``prepare_data.py`` stores each image of its zips.

StyleGAN2-ADA's ``dataset_tool.py`` (and Pillow, which it calls with ``compress_level=0``) writes "uncompressed"
PNGs whose rows still carry Paeth/Sub/Up filters: decoding one 64 px image then costs as much as decoding a JPEG
(about 80 us in Pillow or libpng), which is why such a zip was hardly faster to train from than a JPEG folder.
The PNGs written here use filter type 0 (None) on every row inside stored deflate blocks (PNG spec, sections 9 and
10; RFC 1951 section 3.2.4), so the file holds the pixels as they are: ``read_plain`` reads them with one
``zlib.decompress`` and a numpy view, checking the PNG's own CRCs. They stay ordinary PNGs: Pillow, libpng and
dataset_tool's readers decode them to the same values. Any other PNG (filtered, compressed, interlaced, 16-bit,
palette) is left to Pillow by returning ``None``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import torch
from torch import Tensor

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type (grey, truecolour)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_plain(array: np.ndarray) -> bytes:
    """An H x W (grey) or H x W x 3 (RGB) uint8 array as an 8-bit PNG with unfiltered rows in stored deflate
    blocks."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in _COLOR_TYPE:
        raise ValueError(f"a PNG of {channels} channels: use 1 (grey) or 3 (RGB)")
    rows = np.zeros((h, 1 + w * channels), dtype=np.uint8)  # first byte of each row: filter type 0
    rows[:, 1:] = array.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[channels], 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
            + _chunk(b"IEND", b""))


def read_plain(data: bytes, channels: int) -> Tensor | None:
    """``data`` as a uint8 ``channels`` x H x W tensor when it is an 8-bit, non-interlaced PNG of exactly
    ``channels`` whose rows are all unfiltered (what ``write_plain`` makes) and whose chunks' CRCs hold; ``None``
    for any other file, which the caller decodes another way (and which names what is wrong with a damaged one)."""
    if len(data) < 45 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or interlace or color != _COLOR_TYPE.get(channels) or not w or not h:
        return None
    view, idat, pos = memoryview(data), [], 8  # slices of the view copy nothing
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            return None
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT" and not idat and (length < 3 or data[pos + 10] & 0b110):
            return None  # compressed deflate blocks (an ordinary PNG): Pillow's, without inflating it here first
        if kind == b"IDAT" or kind == b"IHDR":
            if zlib.crc32(view[pos + 4 : end]) != struct.unpack(">I", data[end : end + 4])[0]:
                return None
        if kind == b"IDAT":
            idat.append(view[pos + 8 : end])
        elif kind == b"IEND":
            break
        elif kind[0] & 0x20 == 0 and kind != b"IHDR":  # a critical chunk this reader does not know (PLTE, ...)
            return None
        pos = end + 4
    else:
        return None  # no IEND: truncated
    try:
        raw = zlib.decompress(idat[0] if len(idat) == 1 else b"".join(idat))
    except zlib.error:
        return None
    stride = 1 + w * channels
    if len(raw) != h * stride:
        return None
    if raw[::stride] != bytes(h):
        return None  # filtered rows: not this reader's
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, stride)
    pixels = rows[:, 1:].reshape(h, w, channels)
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())  # C-contiguous, writable
