"""prepare_data.py: every image checked once and packed into StyleGAN2-ADA's dataset zip (uncompressed PNGs,
dataset.json labels) that the folder data modules read as they read the folder; bad input is one line and
writes nothing."""

from __future__ import annotations

import io
import json
import re
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.data import prepare as prepare_module
from gan_lightning.data.folders import ImageFolderDataModule
from gan_lightning.data.png import read_plain
from gan_lightning.data.prepare import ZIP_DATE, prepare, summary
from gan_lightning.data.sources import ImageSource
from gan_lightning.data.super_resolution import ImageFolderSRDataModule
from gan_lightning.data.translation import AlignedFolderDataModule, UnalignedFolderDataModule
from gan_lightning.errors import UserError

from .conftest import run_cli, run_entry

NAME = re.compile(r"\d{5}/img\d{8}\.png")


def pattern(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth, seeded uint8 image (H x W x C, or H x W for one channel)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:h, 0:w]
    planes = [(rows * rng.uniform(1, 9) + cols * rng.uniform(1, 9) + rng.uniform(0, 99)) % 256 for _ in range(channels)]
    image = np.stack(planes, axis=-1).astype(np.uint8)
    return image[..., 0] if channels == 1 else image


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def stored(zip_path: Path, name: str) -> np.ndarray:
    with zipfile.ZipFile(zip_path) as z:
        return np.asarray(Image.open(io.BytesIO(z.read(name))))


def meta(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return json.loads(z.read("dataset.json"))


def items(collection, n: int | None = None) -> list[dict[str, torch.Tensor]]:
    """Examples 0..n-1 of an ``Items``, each from the same seeded stream (so random crops match across sources)."""
    return [collection.item(i, torch.Generator().manual_seed(i)) for i in range(n or len(collection))]


def same(xs: list[dict], ys: list[dict]) -> bool:
    return len(xs) == len(ys) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                      for x, y in zip(xs, ys))


@pytest.fixture
def classes(tmp_path) -> Path:
    """Two class folders of RGB images of several sizes (one already 16 x 16)."""
    root = tmp_path / "photos"
    sizes = [(16, 16), (20, 30), (40, 24)]
    for c, name in enumerate(("cat", "dog")):
        for k, (h, w) in enumerate(sizes):
            save(root / name / f"{k}.png", pattern(h, w, seed=10 * c + k))
    return root


def test_the_zip_is_stylegan2_adas_format_and_reads_as_the_folder_does(classes, tmp_path):
    out = tmp_path / "sets" / "photos.zip"
    result = prepare(classes, out, 16, labels="subfolders", progress=False)
    assert result["images"] == 6 and result["class_names"] == ["cat", "dog"] and result["skipped"] == []
    with zipfile.ZipFile(out) as z:
        infos = z.infolist()
        assert [i.filename for i in infos][-1] == "dataset.json"
        assert all(i.compress_type == zipfile.ZIP_STORED and i.date_time == ZIP_DATE for i in infos)
        images = [i for i in infos if i.filename != "dataset.json"]
        assert [i.filename for i in images] == [f"00000/img{k:08d}.png" for k in range(6)]
        for info in images:
            data = z.read(info.filename)
            assert data.startswith(b"\x89PNG") and info.file_size > 16 * 16 * 3  # uncompressed
            assert read_plain(data, 3) is not None  # unfiltered: the loaders read it without decoding
            assert Image.open(io.BytesIO(data)).size == (16, 16) and Image.open(io.BytesIO(data)).mode == "RGB"
    data = meta(out)
    assert data["labels"] == [[f"00000/img{k:08d}.png", k // 3] for k in range(6)]
    assert data["class_names"] == ["cat", "dog"]
    section = data["gan_lightning"]
    assert {k: section[k] for k in ("layout", "resolution", "channels", "images", "skipped")} == {
        "layout": "image", "resolution": 16, "channels": 3, "images": 6, "skipped": []}
    assert len(section["content_hash"]) == 64 and section["source"] == str(classes.resolve())
    # the 16 x 16 file is stored untouched; the others as the data module resizes and crops them
    assert np.array_equal(stored(out, "00000/img00000000.png"), pattern(16, 16, seed=0))
    from_zip = ImageFolderDataModule(path=str(out), image_size=16, labels="auto", num_workers=0)
    from_folder = ImageFolderDataModule(path=str(classes), image_size=16, labels="subfolders", num_workers=0)
    for dm in (from_zip, from_folder):
        dm.setup()
    assert from_zip.class_names == ["cat", "dog"] and same(items(from_zip._items), items(from_folder._items))
    assert "6 images at 16x16, 3 channel(s), 2 classes" in summary(result)
    assert "model=cgan data=image_folder" in result["train"]


def test_labels_from_a_json_file_and_a_hand_made_dataset_tool_zip_loads_unchanged(classes, tmp_path):
    labels = tmp_path / "labels.json"
    names = sorted(p.relative_to(classes).as_posix() for p in classes.rglob("*.png"))
    labels.write_text(json.dumps({"labels": [[n, 2 - k % 3] for k, n in enumerate(names)]}))
    out = tmp_path / "json.zip"
    result = prepare(classes, out, 8, labels=str(labels), progress=False)
    assert [label for _, label in meta(out)["labels"]] == [2 - k % 3 for k in range(6)]
    assert result["class_names"] == ["0", "1", "2"]

    # dataset_tool.py's documented format, written by hand: 00000/img00000000.png ... and {"labels": [[...]]}
    made = tmp_path / "dataset_tool.zip"
    pictures = [pattern(8, 8, seed=k) for k in range(4)]
    with zipfile.ZipFile(made, "w", compression=zipfile.ZIP_STORED) as z:
        for k, picture in enumerate(pictures):
            buffer = io.BytesIO()
            Image.fromarray(picture).save(buffer, format="png", compress_level=0)
            z.writestr(f"00000/img{k:08d}.png", buffer.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [[f"00000/img{k:08d}.png", [1, 0, 1, 0][k]]
                                                           for k in range(4)]}))
    dm = ImageFolderDataModule(path=str(made), image_size=8, labels="auto", num_workers=0)
    dm.setup()
    got = items(dm._items)
    assert dm.num_classes == 2 and [int(x["y"]) for x in got] == [1, 0, 1, 0]
    assert all(np.array_equal(x["x"].permute(1, 2, 0).numpy(), p) for x, p in zip(got, pictures))
    # and it prepares again, at another resolution, labels kept
    again = prepare(made, tmp_path / "again.zip", 16, progress=False)
    assert again["images"] == 4 and [label for _, label in meta(tmp_path / "again.zip")["labels"]] == [1, 0, 1, 0]


def test_every_layout_reads_back_through_its_data_module(tmp_path):
    # aligned: A|B pairs in train/ and test/ (one already 8 + 8 wide), one file that is not a pair
    pairs = tmp_path / "pairs"
    save(pairs / "train" / "0.png", pattern(8, 16, seed=1))
    save(pairs / "train" / "1.png", pattern(12, 24, seed=2))
    save(pairs / "train" / "2.png", pattern(12, 12, seed=3))  # not twice as wide: skipped
    save(pairs / "test" / "0.png", pattern(10, 20, seed=4))
    aligned = prepare(pairs, tmp_path / "pairs.zip", 8, layout="aligned", progress=False)
    assert aligned["images"] == 3 and [n for n, _ in aligned["skipped"]] == ["train/2.png"]
    assert np.array_equal(stored(tmp_path / "pairs.zip", "train/0.png"), pattern(8, 16, seed=1))
    assert stored(tmp_path / "pairs.zip", "test/0.png").shape == (8, 16, 3)
    options = {"load_size": 8, "crop": 8, "flip": False, "num_workers": 0}
    from_zip = AlignedFolderDataModule(path=str(tmp_path / "pairs.zip"), **options)
    (pairs / "train" / "2.png").unlink()
    from_folder = AlignedFolderDataModule(path=str(pairs), **options)
    for dm in (from_zip, from_folder):
        dm.setup()
    assert len(from_zip._items) == 2 and same(items(from_zip._items), items(from_folder._items))
    assert same(items(from_zip._held["test"][0]), items(from_folder._held["test"][0]))
    first = items(from_zip._items, 1)[0]
    assert torch.equal(first["a"].permute(1, 2, 0), torch.from_numpy(pattern(8, 16, seed=1)[:, :8]))

    # unaligned: trainA/ trainB/ testA/ testB/, greyscale, max_images per folder
    domains = tmp_path / "domains"
    for k, folder in enumerate(("trainA", "trainB", "testA", "testB")):
        for i in range(3):
            save(domains / folder / f"{i}.png", pattern(6 + 2 * i, 10, seed=10 * k + i, channels=1))
    save(domains / "extra" / "x.png", pattern(8, 8, seed=99, channels=1))
    unaligned = prepare(domains, tmp_path / "domains.zip", 8, layout="unaligned", max_images=2, progress=False)
    assert unaligned["images"] == 8 and unaligned["channels"] == 1 and unaligned["ignored"] == 1
    with zipfile.ZipFile(tmp_path / "domains.zip") as z:
        assert sorted(n for n in z.namelist() if n.endswith(".png")) == [
            f"{f}/{i}.png" for f in ("testA", "testB", "trainA", "trainB") for i in range(2)]
    for folder in ("trainA", "trainB", "testA", "testB"):
        (domains / folder / "2.png").unlink()
    options = {"load_size": 8, "crop": 8, "flip": False, "num_workers": 0}
    from_zip = UnalignedFolderDataModule(path=str(tmp_path / "domains.zip"), **options)
    from_folder = UnalignedFolderDataModule(path=str(domains), **options)
    for dm in (from_zip, from_folder):
        dm.setup()
    assert from_zip.channels == 1
    for split in ("train", "test"):
        for a, b in zip(from_zip._held[split], from_folder._held[split]):
            assert same(items(a), items(b))

    # sr: kept at their own size; smaller than the crop: skipped
    photos = tmp_path / "hr"
    save(photos / "a.png", pattern(16, 24, seed=5))
    save(photos / "b" / "c.png", pattern(20, 16, seed=6))
    save(photos / "small.png", pattern(8, 30, seed=7))
    sr = prepare(photos, tmp_path / "hr.zip", 12, layout="sr", progress=False)
    assert sr["images"] == 2 and [n for n, _ in sr["skipped"]] == ["small.png"]
    assert np.array_equal(stored(tmp_path / "hr.zip", "b/c.png"), pattern(20, 16, seed=6))
    (photos / "small.png").unlink()
    options = {"scale": 2, "crop": 12, "val_fraction": 0.5, "num_workers": 0}
    from_zip = ImageFolderSRDataModule(path=str(tmp_path / "hr.zip"), **options)
    from_folder = ImageFolderSRDataModule(path=str(photos), **options)
    for dm in (from_zip, from_folder):
        dm.setup()
    assert same(items(from_zip._items), items(from_folder._items))
    assert same(items(from_zip._held), items(from_folder._held))


def test_bad_files_are_skipped_and_counted_or_refused(tmp_path):
    root = tmp_path / "in"
    for k in range(3):
        save(root / f"{k}.png", pattern(8, 8, seed=k))
    good = root / "0.png"
    (root / "junk.jpg").write_bytes(b"not an image")
    buffer = io.BytesIO()
    Image.fromarray(pattern(32, 32, seed=9)).save(buffer, format="jpeg")
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[:300])
    result = prepare(root, tmp_path / "ok.zip", 8, progress=False)
    assert result["images"] == 3 and [n for n, _ in result["skipped"]] == ["junk.jpg", "truncated.jpg"]
    assert [n for n, _ in meta(tmp_path / "ok.zip")["gan_lightning"]["skipped"]] == ["junk.jpg", "truncated.jpg"]
    assert "skipped 2 unreadable file(s): junk.jpg, truncated.jpg" in summary(result)
    with pytest.raises(UserError, match=r"image .*junk\.jpg cannot be decoded .*bad_files=skip"):
        prepare(root, tmp_path / "no.zip", 8, bad_files="error", progress=False)
    assert not (tmp_path / "no.zip").exists() and good.exists()


def test_the_content_hash_follows_the_pixels_and_a_rerun_is_identical_with_or_without_workers(tmp_path):
    root = tmp_path / "in"
    picture = pattern(8, 8, seed=1)
    save(root / "a.png", picture)
    save(root / "b.png", pattern(8, 8, seed=2))
    first = prepare(root, tmp_path / "1.zip", 8, progress=False)
    second = prepare(root, tmp_path / "2.zip", 8, num_workers=2, progress=False)  # read in 2 processes
    assert first["content_hash"] == second["content_hash"]
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    picture[3, 4, 0] ^= 1
    save(root / "a.png", picture)
    assert prepare(root, tmp_path / "3.zip", 8, progress=False)["content_hash"] != first["content_hash"]


def test_an_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    root = tmp_path / "in"
    for k in range(4):
        save(root / f"{k}.png", pattern(8, 8, seed=k))
    calls = []

    def add(archive, name, data):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        archive.writestr(name, data)

    monkeypatch.setattr(prepare_module, "_add", add)
    with pytest.raises(KeyboardInterrupt):
        prepare(root, tmp_path / "new" / "folder" / "x.zip", 8, progress=False)
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_format_litdata_prepares_a_zip_and_hands_it_to_write_chunks(tmp_path, monkeypatch):
    """The wiring only (a stand-in write_chunks); LitData's own chunks are data/streaming.py's tests."""
    root = tmp_path / "in"
    for k in range(3):
        save(root / f"{k}.png", pattern(8, 8, seed=k))
    seen = {}

    def write_chunks(source, out_dir, num_workers=1, channels=None):
        seen.update(n=len(source), labels=source.labels("auto"), zip=source.root, channels=channels)
        Path(out_dir).mkdir()
        (Path(out_dir) / "index.json").write_text("{}")

    monkeypatch.setitem(sys.modules, "gan_lightning.data.streaming", types.SimpleNamespace(write_chunks=write_chunks))
    result = prepare(root, tmp_path / "chunks", 8, format="litdata", progress=False)
    assert seen["n"] == 3 and seen["labels"] is None and seen["zip"].suffix == ".zip" and seen["channels"] == 3
    assert (tmp_path / "chunks" / "index.json").is_file() and not seen["zip"].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks", "in"]
    assert result["train"].startswith("python train.py data=streaming")


def test_format_litdata_writes_chunks_and_leaves_no_zip(tmp_path):
    """With the real write_chunks (data/streaming.py's tests check the chunks themselves)."""
    pytest.importorskip("litdata")
    pytest.importorskip("gan_lightning.data.streaming")
    root = tmp_path / "in"
    for k in range(4):
        save(root / f"c{k % 2}" / f"{k}.png", pattern(12, 12, seed=k))
    prepare(root, tmp_path / "chunks", 8, labels="subfolders", format="litdata", progress=False)
    assert (tmp_path / "chunks" / "index.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks", "in"]


def _mixed(root: Path) -> None:
    save(root / "grey.png", pattern(8, 8, seed=1, channels=1))
    save(root / "rgb.png", pattern(8, 8, seed=2))


def _labels_naming_missing(root: Path) -> None:
    save(root / "a.png", pattern(8, 8, seed=1))
    (root.parent / "labels.json").write_text(json.dumps({"labels": [["a.png", 0], ["gone.png", 1]]}))


def _one_image(root: Path) -> None:
    save(root / "a.png", pattern(8, 8, seed=1))


def _unreadable(root: Path) -> None:
    save(root / "a.png", pattern(8, 8, seed=1))
    (root / "b.png").write_bytes(b"\x89PNG broken")


def _zip_without_images(root: Path) -> None:
    with zipfile.ZipFile(root.parent / "in.zip", "w") as z:
        z.writestr("readme.txt", "hello")


BAD = {  # case: (set-up of tmp/in, options, a piece of the one line)
    "no images": (lambda root: (root / "notes.txt").write_text("x"), [], "no images"),
    "unreadable file": (_unreadable, ["bad_files=error"], "b.png cannot be decoded"),
    "grey and RGB": (_mixed, [], "grey and RGB images are mixed .*set channels=1 or channels=3"),
    "labels naming missing files": (_labels_naming_missing, ["labels={tmp}/labels.json"],
                                    "names 1 file.* not among the images .*gone.png"),
    "not a zip": (lambda root: (root.parent / "in.zip").write_bytes(b"plain text"), ["input={tmp}/in.zip"],
                  "is not a readable zip"),
    "zip without images": (_zip_without_images, ["input={tmp}/in.zip"], r"no images .* found in .*in\.zip"),
    "resolution StyleGAN2 cannot build": (_one_image, ["resolution=100"],
                                          "resolution=100: layout=image needs a power of two >= 8.*any_resolution"),
    "labels on a pair layout": (_one_image, ["layout=aligned", "labels=subfolders"], "layout=image only"),
    "litdata of a pair layout": (_one_image, ["layout=aligned", "format=litdata"], "format=litdata"),
    "unknown layout": (_one_image, ["layout=tiles"], "layout must be image, aligned, unaligned or sr"),
    "out not a zip": (_one_image, ["out={tmp}/made/out.tar"], "must end in .zip"),
    "out under a file": (lambda root: (root / "a_file").write_text("x"), ["out={tmp}/in/a_file/out.zip"],
                         "out: cannot create .*a_file is a file"),
    "unaligned without trainB": (lambda root: save(root / "trainA" / "a.png", pattern(8, 8, seed=1)),
                                 ["layout=unaligned"], "trainB"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path):
    setup, options, message = BAD[case]
    root = tmp_path / "in"
    root.mkdir()
    setup(root)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = {"input": str(root), "out": f"{tmp_path}/made/out.zip", "resolution": "8"}
    args.update(o.format(tmp=tmp_path).split("=", 1) for o in options)
    r = run_entry("prepare_data.py", *(f"{k}={v}" for k, v in args.items()))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and re.search(message, r.stderr), r.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_existing_out_is_refused_and_kept(tmp_path):
    _one_image(tmp_path / "in")
    (tmp_path / "out.zip").write_bytes(b"keep me")
    r = run_entry("prepare_data.py", f"input={tmp_path / 'in'}", f"out={tmp_path / 'out.zip'}", "resolution=8")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "exists" in r.stderr, r.stderr
    assert (tmp_path / "out.zip").read_bytes() == b"keep me"
    with pytest.raises(UserError, match="exists"):
        prepare(tmp_path / "in", tmp_path / "out.zip", 8, progress=False)


def test_channels_and_transform_options(tmp_path):
    root = tmp_path / "in"
    _mixed(root)
    save(root / "wide.png", pattern(8, 24, seed=3))
    grey = prepare(root, tmp_path / "grey.zip", 8, channels=1, transform="resize", progress=False)
    assert grey["channels"] == 1 and "data.channels=1" in grey["train"]
    assert all(stored(tmp_path / "grey.zip", f"00000/img{k:08d}.png").shape == (8, 8) for k in range(3))
    odd = prepare(root, tmp_path / "odd.zip", 12, channels=3, any_resolution=True, progress=False)
    assert odd["upscaled"] == 3 and stored(tmp_path / "odd.zip", "00000/img00000002.png").shape == (12, 12, 3)


@pytest.mark.slow
def test_the_command_line(tmp_path, classes):
    out = tmp_path / "photos.zip"
    r = run_cli("prepare_data.py", f"input={classes}", f"out={out}", "resolution=8", "labels=subfolders")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}: 6 images at 8x8, 3 channel(s), 2 classes" in r.stdout
    assert f"python train.py model=cgan data=image_folder data.path={out} data.image_size=8" in r.stdout
    assert ImageSource(out).labels("auto") == ([0, 0, 0, 1, 1, 1], ["cat", "dog"])
