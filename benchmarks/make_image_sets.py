"""Image sets of realistic content for the loader benchmarks (benchmarks/bench_loaders.py), made from Fashion-MNIST.

Each image is a Fashion-MNIST item upscaled (bicubic) to 75-95% of the frame at a random place, tinted with a
random hue and shaded by the item's own grey levels, over a soft two-colour gradient background with a little
low-frequency texture and per-pixel noise (so that JPEG sizes and decoding times are those of photographs rather
than of flat drawings), saved as JPEG quality 90. Everything is seeded: the same arguments give the same files.

    python benchmarks/make_image_sets.py                      # everything, into /tmp/gan_image_sets
    python benchmarks/make_image_sets.py --sizes 64 --counts 500 --pairs 200 --out /tmp/small_sets

Writes, under --out:
- ``folder-{size}-{n}k/``: ``{i:08d}.jpg``, a flat folder of ``n`` thousand images of ``size`` px (the smaller
  counts are hard links to the first files of the largest, so they cost no disk);
- ``pairs-286-{n}k/train/`` and ``test/`` (200 pairs): edges|image pair files (572 x 286: Canny edges of the image,
  dark lines on white, left; the image right), the pix2pix layout of edges2shoes;
- ``zip-{size}-{n}k.zip`` for ``--zip-sizes``: the folder as a prepared zip (uncompressed PNGs and
  ``dataset.json``), by ``prepare_data.py`` when the repository has it (``--zip-with``), else written here to
  the same format (StyleGAN2-ADA's: ZIP_STORED, PNG compress_level 0, ``00000/img00000000.png``);
- ``dtzip-{size}-{n}k.zip``: the same images encoded as dataset_tool.py encodes them (Pillow, ``compress_level=0``,
  rows filtered), the zip a StyleGAN2-ADA user already has;
- ``litdata-{size}-{n}k/`` for ``--litdata-sizes``: LitData chunks of the zip, by ``prepare_data.py
  format=litdata`` (skipped, saying why, where that is not available).

A set that is complete (``.complete`` holds the options it was made with) is not made again.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SEED = 2026
PAIR_SIZE = 286
TEST_PAIRS = 200
VERSION = 1  # bump when the images change
ZIP_PNG = "unfiltered"  # prepare_data.py's PNG encoding (data/png.py): zips of another are made again


# --- Fashion-MNIST -------------------------------------------------------------------------------------------------
def load_items(root: Path) -> np.ndarray:
    """All 70,000 Fashion-MNIST images (train then test), uint8 N x 28 x 28, from torchvision's idx(.gz) files."""
    out = []
    for split in ("train", "t10k"):
        for name in (f"{split}-images-idx3-ubyte.gz", f"{split}-images-idx3-ubyte",
                     f"FashionMNIST/raw/{split}-images-idx3-ubyte"):
            path = root / name
            if path.is_file():
                data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
                break
        else:
            raise SystemExit(f"no Fashion-MNIST {split} images under {root}: apt-get install dataset-fashion-mnist "
                             "or give --fashion-mnist DIR (torchvision's files)")
        n, h, w = (int.from_bytes(data[k : k + 4], "big") for k in (4, 8, 12))
        out.append(np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w))
    return np.concatenate(out)


# --- one image -----------------------------------------------------------------------------------------------------
def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour in [0, 1] from hue, saturation and value in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def _upscale(a: np.ndarray, size: int) -> np.ndarray:
    """A float array in [0, 1] (H x W) resized bicubically to size x size."""
    image = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255


def compose(item: np.ndarray, size: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(the coloured image, uint8 size x size x 3; the same without noise or texture, for edge maps) of one item."""
    rng = np.random.default_rng([seed, index])
    # layout and colours: drawn first, in the same order at every size, so the sizes show the same picture
    scale, fx, fy = rng.uniform(0.75, 0.95), rng.uniform(), rng.uniform()
    tint = _hsv(rng.uniform(), rng.uniform(0.35, 0.9), rng.uniform(0.6, 1.0))
    c0 = _hsv(rng.uniform(), rng.uniform(0.05, 0.5), rng.uniform(0.45, 0.95))
    c1 = _hsv(rng.uniform(), rng.uniform(0.05, 0.5), rng.uniform(0.45, 0.95))
    angle, texture_amp, noise_sd = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.07), rng.uniform(2.5, 5.0)
    field = rng.standard_normal((6, 6)).astype(np.float32)
    noise_rng = np.random.default_rng([seed, index, size])

    inner = max(4, round(size * scale))
    value = np.zeros((size, size), np.float32)
    top, left = int(fy * (size - inner)), int(fx * (size - inner))
    value[top : top + inner, left : left + inner] = _upscale(item / 255.0, inner)
    alpha = np.clip(value * 3.0, 0, 1)[..., None]  # the garment is opaque wherever it shows
    shade = (0.25 + 0.75 * value)[..., None]

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    t = ((t - t.min()) / (np.ptp(t) + 1e-6))[..., None]
    background = c0 * (1 - t) + c1 * t
    clean = background * (1 - alpha) + tint * shade * alpha
    texture = Image.fromarray(((field - field.min()) / (np.ptp(field) + 1e-6) * 255).astype(np.uint8))
    texture = np.asarray(texture.resize((size, size), Image.BICUBIC), np.float32)[..., None] / 255 - 0.5
    noisy = clean + texture_amp * texture + noise_rng.normal(0, noise_sd / 255, clean.shape).astype(np.float32)
    to_uint8 = lambda a: np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    return to_uint8(noisy), to_uint8(clean)


def edges(clean: np.ndarray) -> np.ndarray:
    """Canny edges of clean images (N x H x W x 3; the package's ``canny``, blurred and thresholded for ~286 px,
    a batch at a time: far faster than one by one), as dark lines on white, uint8 N x H x W x 3 (edges2shoes-like
    inputs)."""
    import torch

    from gan_lightning.data.translation import canny

    x = torch.from_numpy(clean).permute(0, 3, 1, 2).contiguous()
    e = canny(x, sigma=1.5, low=0.01, high=0.025)[:, 0].numpy()
    return np.repeat((255 - e)[..., None], 3, axis=3)


# --- the work, in chunks ---------------------------------------------------------------------------------------------
_ITEMS: np.ndarray | None = None


def _init(items_root: str) -> None:
    global _ITEMS
    _ITEMS = load_items(Path(items_root))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _write_jpeg(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="JPEG", quality=90)


def _images(task: tuple[str, int, list[tuple[int, int]], int]) -> int:
    folder, size, jobs, seed = task
    for name, i in jobs:
        image, _ = compose(_ITEMS[i % len(_ITEMS)], size, seed, i)
        _write_jpeg(image, Path(folder) / f"{name:08d}.jpg")
    return len(jobs)


def _pairs(task: tuple[str, int, list[tuple[int, int]], int]) -> int:
    folder, size, jobs, seed = task
    for k in range(0, len(jobs), 50):
        images, cleans = zip(*(compose(_ITEMS[i % len(_ITEMS)], size, seed, i) for _, i in jobs[k : k + 50]))
        for (name, _), image, edge in zip(jobs[k : k + 50], images, edges(np.stack(cleans))):
            _write_jpeg(np.concatenate([edge, image], axis=1), Path(folder) / f"{name:08d}.jpg")
    return len(jobs)


def _run(pool, fn, folder: Path, size: int, items: list[int], seed: int, chunk: int = 250) -> None:
    """``fn`` over Fashion-MNIST ``items`` in chunks, writing files named 0, 1, ... into ``folder``."""
    jobs = list(enumerate(items))
    tasks = [(str(folder), size, jobs[k : k + chunk], seed) for k in range(0, len(jobs), chunk)]
    done, start = 0, time.time()
    for n in pool.imap_unordered(fn, tasks):
        done += n
        if done % 5000 < n or done == len(jobs):
            print(f"  {folder.name}: {done}/{len(jobs)} ({time.time() - start:.0f} s)", flush=True)


# --- sets ----------------------------------------------------------------------------------------------------------
def _complete(folder: Path, options: dict) -> bool:
    marker = folder / ".complete"
    return marker.is_file() and json.loads(marker.read_text()) == options


def _mark(folder: Path, options: dict) -> None:
    (folder / ".complete").write_text(json.dumps(options))


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def make_folders(pool, out: Path, sizes: list[int], counts: list[int], seed: int) -> None:
    counts = sorted(counts)
    for size in sizes:
        big = out / f"folder-{size}-{label(counts[-1])}"
        options = {"version": VERSION, "seed": seed, "size": size, "count": counts[-1]}
        if not _complete(big, options):
            _run(pool, _images, _fresh(big), size, list(range(counts[-1])), seed)
            _mark(big, options)
        for n in counts[:-1]:  # the first n images of the largest set, as hard links
            small = out / f"folder-{size}-{label(n)}"
            opts = {**options, "count": n, "of": big.name}
            if not _complete(small, opts):
                _fresh(small)
                for i in range(n):
                    os.link(big / f"{i:08d}.jpg", small / f"{i:08d}.jpg")
                _mark(small, opts)
            print(f"  {small.name}: {n} images (hard links to {big.name})")


def make_pairs(pool, out: Path, counts: list[int], seed: int, items: int) -> None:
    counts = sorted(counts)
    big = out / f"pairs-{PAIR_SIZE}-{label(counts[-1])}"
    options = {"version": VERSION, "seed": seed + 1, "size": PAIR_SIZE, "count": counts[-1], "test": TEST_PAIRS}
    if not _complete(big, options):
        _fresh(big)
        for split in ("train", "test"):
            (big / split).mkdir()
        _run(pool, _pairs, big / "train", PAIR_SIZE, list(range(counts[-1])), seed + 1)
        # held-out pairs from Fashion-MNIST's test items (the last 10,000), numbered from 0
        _run(pool, _pairs, big / "test", PAIR_SIZE, list(range(items - 10_000, items - 10_000 + TEST_PAIRS)),
             seed + 1)
        _mark(big, options)
    for n in counts[:-1]:
        small = out / f"pairs-{PAIR_SIZE}-{label(n)}"
        opts = {**options, "count": n, "of": big.name}
        if not _complete(small, opts):
            _fresh(small)
            for split, m in (("train", n), ("test", TEST_PAIRS)):
                (small / split).mkdir()
                for i in range(m):
                    os.link(big / split / f"{i:08d}.jpg", small / split / f"{i:08d}.jpg")
            _mark(small, opts)
        print(f"  {small.name}: {n} pairs (hard links to {big.name})")


def _png_bytes(path: Path) -> bytes:
    buf = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def _png_chunk(paths: list[str]) -> list[bytes]:
    return [_png_bytes(Path(p)) for p in paths]


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip member with a fixed time stamp, so the same images give the same zip."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def write_zip(pool, folder: Path, target: Path) -> None:
    """``folder``'s images as a StyleGAN2-ADA dataset zip (what dataset_tool.py writes, and prepare_data.py)."""
    files = sorted(folder.glob("*.jpg"))
    chunks = [[str(p) for p in files[k : k + 500]] for k in range(0, len(files), 500)]
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        i = 0
        for pngs in pool.imap(_png_chunk, chunks):
            for data in pngs:
                z.writestr(_entry(f"{i // 1000:05d}/img{i:08d}.png"), data)
                i += 1
        z.writestr(_entry("dataset.json"), json.dumps({"labels": None}))
    tmp.rename(target)


def make_zips(pool, out: Path, sizes: list[int], counts: list[int], how: str) -> None:
    """``zip-*``: by prepare_data.py (``how``); ``dtzip-*``: the same images as dataset_tool.py encodes them."""
    prepare = ROOT / "prepare_data.py"
    use_prepare = how == "prepare_data" or (how == "auto" and prepare.is_file())
    for size in sizes:
        for n in counts:
            folder = out / f"folder-{size}-{label(n)}"
            dt_target, dt_marker = out / f"dtzip-{size}-{label(n)}.zip", out / f".dtzip-{size}-{label(n)}.complete"
            dt_options = {"version": VERSION, "of": folder.name, "by": "builtin"}
            if not (dt_target.is_file() and dt_marker.is_file() and json.loads(dt_marker.read_text()) == dt_options):
                start = time.time()
                dt_target.unlink(missing_ok=True)
                write_zip(pool, folder, dt_target)
                dt_marker.write_text(json.dumps(dt_options))
                print(f"  {dt_target.name}: {dt_target.stat().st_size / 2**20:.0f} MiB as dataset_tool.py writes it "
                      f"({time.time() - start:.0f} s)")
            target, marker = out / f"zip-{size}-{label(n)}.zip", out / f".zip-{size}-{label(n)}.complete"
            options = {"version": VERSION, "of": folder.name, "by": "prepare_data.py" if use_prepare else "builtin",
                       "png": ZIP_PNG}
            if target.is_file() and marker.is_file() and json.loads(marker.read_text()) == options:
                continue
            start = time.time()
            target.unlink(missing_ok=True)
            if use_prepare:
                done = subprocess.run([sys.executable, str(prepare), f"input={folder}", f"out={target}",
                                       f"resolution={size}", f"num_workers={os.cpu_count()}"], cwd=ROOT,
                                      capture_output=True, text=True)
                if done.returncode and how == "prepare_data":
                    raise SystemExit(f"prepare_data.py failed:\n{done.stderr[-2000:]}")
                if done.returncode:  # auto: write the same format here
                    print(f"  prepare_data.py failed ({done.stderr.strip().splitlines()[-1:]}): writing the zip "
                          "here instead")
                    options["by"] = "builtin"
                    target.unlink(missing_ok=True)
            if options["by"] == "builtin":
                write_zip(pool, folder, target)
            marker.write_text(json.dumps(options))
            print(f"  {target.name}: {target.stat().st_size / 2**20:.0f} MiB by {options['by']} "
                  f"({time.time() - start:.0f} s)")


def make_litdata(out: Path, sizes: list[int], counts: list[int]) -> None:
    """LitData chunks of the prepared zips, by ``prepare_data.py format=litdata`` (skipped, saying why, where the
    repository or the environment cannot make them)."""
    prepare = ROOT / "prepare_data.py"
    for size in sizes:
        for n in counts:
            source, target = out / f"zip-{size}-{label(n)}.zip", out / f"litdata-{size}-{label(n)}"
            marker = out / f".litdata-{size}-{label(n)}.complete"
            if target.is_dir() and marker.is_file():
                continue
            if not source.is_file() or not prepare.is_file():
                print(f"  {target.name}: skipped (needs {source.name} and prepare_data.py)")
                continue
            shutil.rmtree(target, ignore_errors=True)
            start = time.time()
            done = subprocess.run([sys.executable, str(prepare), f"input={source}", f"out={target}",
                                   f"resolution={size}", "format=litdata", f"num_workers={os.cpu_count()}"], cwd=ROOT,
                                  capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
                print(f"  {target.name}: skipped (prepare_data.py format=litdata failed: {last})")
                shutil.rmtree(target, ignore_errors=True)
                continue
            marker.write_text(json.dumps({"version": VERSION, "of": source.name}))
            print(f"  {target.name}: LitData chunks ({time.time() - start:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/gan_image_sets", help="where the sets go (not inside the repository)")
    p.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256])
    p.add_argument("--counts", type=int, nargs="*", default=[5000, 50000])
    p.add_argument("--pairs", type=int, nargs="*", default=[5000, 50000], help="aligned pair counts (none: skip)")
    p.add_argument("--zip-sizes", type=int, nargs="*", default=[64, 256])
    p.add_argument("--zip-counts", type=int, nargs="*", default=None,
                   help="counts for the zips (default: --counts at 64 px; only the smallest above 128 px)")
    p.add_argument("--zip-with", choices=["auto", "prepare_data", "builtin"], default="auto")
    p.add_argument("--litdata-sizes", type=int, nargs="*", default=[64],
                   help="LitData chunks of these zips (prepare_data.py format=litdata; at --zip-counts)")
    p.add_argument("--fashion-mnist", default=str(FASHION_MNIST))
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    args = p.parse_args()
    out = Path(args.out).expanduser().resolve()
    if out == ROOT or ROOT in out.parents:
        raise SystemExit(f"--out {out} is inside the repository: put the sets elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    items = len(load_items(Path(args.fashion_mnist)))
    start = time.time()
    with mp.get_context("fork").Pool(args.workers, _init, (args.fashion_mnist,)) as pool:
        if args.sizes and args.counts:
            make_folders(pool, out, args.sizes, args.counts, args.seed)
        if args.pairs:
            make_pairs(pool, out, args.pairs, args.seed, items)
        for size in args.zip_sizes:
            if size not in args.sizes:
                continue
            counts = args.zip_counts or (args.counts if size <= 128 else [min(args.counts)])
            make_zips(pool, out, [size], counts, args.zip_with)
    for size in args.litdata_sizes:
        if size in args.zip_sizes and size in args.sizes:
            make_litdata(out, [size], args.zip_counts or (args.counts if size <= 128 else [min(args.counts)]))
    sizes = {d.name: sum(f.stat().st_size for f in d.rglob("*.jpg")) / max(1, len(list(d.rglob("*.jpg"))))
             for d in sorted(out.glob("*-*")) if d.is_dir() and any(d.rglob("*.jpg"))}
    for name, mean in sizes.items():
        print(f"{name}: mean file {mean / 1024:.1f} KiB")
    print(f"done in {time.time() - start:.0f} s: {out}")


if __name__ == "__main__":
    main()
