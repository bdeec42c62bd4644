"""The PNGs prepare_data.py stores (unfiltered rows in stored deflate blocks) and the reading paths of a prepared
zip: every PNG reader decodes them to the pixels written, the loaders read them without decoding, and anything
else (dataset_tool's filtered PNGs, damaged files, compressed zip members) still reads through PIL and zipfile,
to the same values or to one line naming the file."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.data.png import read_plain, write_plain
from gan_lightning.data.sources import ImageSource, UnreadableImage

SHAPES = [(16, 16, 3), (5, 7, 3), (1, 1, 3), (9, 13), (33, 2)]


def pixels(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def chw(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if array.ndim == 2 else tensor.permute(2, 0, 1)


def channels_of(array: np.ndarray) -> int:
    return 1 if array.ndim == 2 else 3


def pil_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="png", compress_level=0)  # as dataset_tool.py saves
    return buffer.getvalue()


def idat(data: bytes) -> bytes:
    """The inflated image data of a PNG (its rows, each after its filter-type byte)."""
    pos, parts = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            parts.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return zlib.decompress(b"".join(parts))


@pytest.mark.parametrize("shape", SHAPES)
def test_written_pngs_decode_to_their_pixels_in_every_reader(shape):
    array = pixels(shape)
    data = write_plain(array)
    with Image.open(io.BytesIO(data)) as image:
        assert np.array_equal(np.asarray(image), array)
    rows = np.frombuffer(idat(data), np.uint8).reshape(shape[0], -1)
    assert not rows[:, 0].any()  # every row unfiltered: the pixels are in the file as they are
    got = read_plain(data, channels_of(array))
    assert got.is_contiguous() and got.dtype == torch.uint8 and torch.equal(got, chw(array))
    got[0, 0, 0] += 1  # a tensor of its own, writable


def test_anything_else_is_left_to_pil():
    array = pixels((12, 10, 3))
    filtered = pil_png(array)
    assert np.frombuffer(idat(filtered), np.uint8).reshape(12, -1)[:, 0].any()  # Pillow filters the rows
    assert read_plain(filtered, 3) is None
    data = write_plain(array)
    assert read_plain(data, 1) is None  # RGB where grey is asked: converted by PIL
    assert read_plain(write_plain(array[..., 0]), 3) is None
    assert read_plain(data[:-20], 3) is None  # truncated
    damaged = bytearray(data)
    damaged[60] ^= 0xFF  # a pixel byte: the IDAT CRC no longer holds
    assert read_plain(bytes(damaged), 3) is None
    sixteen = io.BytesIO()
    Image.fromarray(pixels((6, 6)).astype(np.uint16) * 257).save(sixteen, format="png")
    assert read_plain(sixteen.getvalue(), 1) is None
    assert read_plain(b"not a png at all" * 4, 3) is None


def test_a_folder_reads_plain_filtered_and_damaged_pngs(tmp_path):
    arrays = [pixels((8, 8, 3), seed=k) for k in range(3)]
    (tmp_path / "0.png").write_bytes(write_plain(arrays[0]))
    (tmp_path / "1.png").write_bytes(pil_png(arrays[1]))
    (tmp_path / "2.png").write_bytes(write_plain(arrays[2])[:-30])  # truncated mid-IDAT
    source = ImageSource(tmp_path)
    assert torch.equal(source.read(0, 3), chw(arrays[0])) and torch.equal(source.read(1, 3), chw(arrays[1]))
    grey = np.asarray(Image.fromarray(arrays[0]).convert("L"))
    assert torch.equal(source.read(0, 1), chw(grey))  # converted as PIL converts
    with pytest.raises(UnreadableImage, match="2.png"):
        source.read(2, 3)


def test_zip_members_read_at_their_offset_as_zipfile_reads_them(tmp_path):
    arrays = [pixels((8, 8, 3), seed=k) for k in range(4)]
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("a/0.png"), write_plain(arrays[0]), compress_type=zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo("a/1.png"), pil_png(arrays[1]), compress_type=zipfile.ZIP_STORED)
        z.writestr(zipfile.ZipInfo("b/2.png"), write_plain(arrays[2]), compress_type=zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("b/3.png")
        info.extra = b"\xca\xfe\x04\x00abcd"  # an extra field moves the data: the local header says where
        z.writestr(info, write_plain(arrays[3]), compress_type=zipfile.ZIP_STORED)
    source = ImageSource(path)
    with zipfile.ZipFile(path) as z:
        for i, name in enumerate(source.names):
            assert source._bytes(i) == z.read(name)
    for i, array in enumerate(arrays):
        assert torch.equal(source.read(i, 3), chw(array))

    # a stored member whose bytes no longer match its CRC: zipfile names the problem, the reader names the file
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        start = z.getinfo("a/0.png").header_offset + 30 + len("a/0.png")
    raw[start + 50] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    source = ImageSource(damaged)
    with pytest.raises(UnreadableImage, match=r"a/0\.png"):
        source.read(0, 3)
    assert torch.equal(source.read(1, 3), chw(arrays[1]))
