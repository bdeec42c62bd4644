"""LitData chunks (``data=streaming``): written from a StyleGAN2-ADA zip and read back unchanged, trained from
through the configs, resumed exactly (the loader's position is in the checkpoint), no network connection, and
bad paths as one line."""

from __future__ import annotations

import io
import json
import shutil
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.data.convert import to_uint8
from gan_lightning.data.sources import ImageSource
from gan_lightning.data.streaming import META_FILE, StreamingDataModule, litdata, write_chunks
from gan_lightning.errors import UserError

CLASSES = ("boots", "coats", "shirts")


def stylegan2_ada_zip(path: Path, n: int = 40, size: int = 8, channels: int = 3) -> Path:
    """A zip in ``dataset_tool.py``'s format: ``00000/img00000000.png`` (uncompressed PNGs, stored) and dataset.json
    labels with class names. Image i is told apart by its top-left pixel (i) and label i % 3."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        labels = []
        for i in range(n):
            name = f"{i // 1000:05d}/img{i:08d}.png"
            rows, cols = np.mgrid[0:size, 0:size]
            image = ((rows * 16 + cols * 8 + i * 3) % 256).astype(np.uint8)
            image[0, 0] = i
            if channels == 3:
                image = np.stack([image, 255 - image, np.full_like(image, i % 3 * 100)], axis=-1)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG", compress_level=0)
            z.writestr(name, buffer.getvalue())
            labels.append([name, i % len(CLASSES)])
        z.writestr("dataset.json", json.dumps({"labels": labels, "class_names": list(CLASSES)}))
    return path


@pytest.fixture(scope="module")
def chunks(tmp_path_factory) -> Path:
    """44 labelled 8 px RGB images as LitData chunks (small chunks: several per rank and worker; 5 batches of 8 an
    epoch, 4 images left over)."""
    root = tmp_path_factory.mktemp("streaming")
    source = ImageSource(stylegan2_ada_zip(root / "ds.zip", n=44))
    write_chunks(source, root / "chunks", chunk_bytes=1024)
    return root / "chunks"


def ids(batch: dict[str, torch.Tensor]) -> list[int]:
    return to_uint8(batch["x"])[:, 0, 0, 0].tolist()


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_hold_the_zips_images_and_labels(tmp_path, workers):
    source = ImageSource(stylegan2_ada_zip(tmp_path / "ds.zip", n=12, size=16, channels=1))
    meta = write_chunks(source, tmp_path / "chunks", num_workers=workers)
    assert meta["count"] == 12 and meta["channels"] == 1 and meta["resolution"] == 16
    assert meta["class_names"] == list(CLASSES) and meta["content_hash"] == source.content_hash()
    assert json.loads((tmp_path / "chunks" / META_FILE).read_text()) == meta
    assert not (tmp_path / "chunks.partial").exists()

    expected = {i: (source.read(i, 1), i % 3) for i in range(12)}
    dataset = litdata().StreamingDataset(str(tmp_path / "chunks"))
    read = [dataset[i] for i in range(len(dataset))]
    assert len(read) == 12
    for item in read:
        x, y = expected.pop(int(item["x"][0, 0, 0]))
        assert item["x"].dtype == torch.uint8 and torch.equal(item["x"], x) and item["y"] == y
    assert not expected  # every image once

    dm = StreamingDataModule(str(tmp_path / "chunks"), batch_size=4, num_workers=0)
    assert dm.spec.shapes == {"x": (1, 16, 16), "y": ()} and dm.spec.class_names == CLASSES
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].dtype == torch.float32 and batch["y"].dtype == torch.int64
    assert -1 <= batch["x"].min() and batch["x"].max() <= 1
    samples = dm.real_samples(5, seed=3)
    assert samples["x"].shape == (5, 1, 16, 16) and torch.equal(samples["x"], dm.real_samples(5, seed=3)["x"])
    assert [i % 3 for i in ids(samples)] == samples["y"].tolist()


def test_unlabelled_chunks_give_images_only(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)).save(root / f"{i}.png")
    meta = write_chunks(ImageSource(root), tmp_path / "chunks")
    assert meta["class_names"] is None and meta["channels"] == 3
    dm = StreamingDataModule(str(tmp_path / "chunks"), batch_size=2, num_workers=0)
    assert dm.num_classes is None and set(dm.spec.shapes) == {"x"}
    assert set(next(iter(dm.train_dataloader()))) == {"x"} and set(dm.real_samples(2)) == {"x"}


def test_images_of_another_size_are_one_line_and_write_nothing(tmp_path):
    root = tmp_path / "folder"
    root.mkdir()
    for i, size in enumerate((8, 8, 12)):
        Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(root / f"{i}.png")
    with pytest.raises(UserError, match=r"2\.png is 12x12 px but the first image is 8x8") as err:
        write_chunks(ImageSource(root), tmp_path / "chunks")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "chunks").exists() and not (tmp_path / "chunks.partial").exists()


def lightning_reads(loader, n: int, done: int = 0) -> list[list[int]]:
    """``n`` batches as Lightning's fit loop reads them: a new ``iter()`` each epoch, ``len(loader)`` batches an
    epoch (the first from batch ``done``), and no epoch's iterator run to its end."""
    out = []
    while len(out) < n:
        batches = iter(loader)
        for _ in range(min(len(loader) - done, n - len(out))):
            out.append(ids(next(batches)))
        done = 0
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_resumes_to_the_batch_across_epochs(chunks, workers):
    dm = StreamingDataModule(str(chunks), batch_size=8, num_workers=workers)
    loader = dm.train_dataloader()
    epoch = len(loader)
    assert epoch == 44 // 8
    straight = lightning_reads(loader, 2 * epoch + 2)
    assert len(set(sum(straight[:epoch], []))) == 8 * epoch  # no image twice in an epoch
    assert straight[epoch : 2 * epoch] != straight[:epoch]  # reshuffled
    for k in (3, epoch, epoch + 2):  # mid-epoch, after the epoch's last full batch, in the second epoch
        first = dm.train_dataloader()
        head = lightning_reads(first, k)
        resumed = dm.train_dataloader()
        resumed.load_state_dict(first.state_dict())
        assert head + lightning_reads(resumed, len(straight) - k, done=k % epoch) == straight, k


@pytest.mark.parametrize("workers", [0, 2])
def test_every_rank_reads_its_own_equal_share(chunks, monkeypatch, workers):
    """LitData takes the ranks from torch.distributed, or from these variables: 4 ranks over 2 nodes."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("NNODES", "2")
    shares = []
    for rank in range(4):
        monkeypatch.setenv("GLOBAL_RANK", str(rank))
        loader = StreamingDataModule(str(chunks), batch_size=4, num_workers=workers).train_dataloader()
        shares.append(sum((ids(batch) for batch in loader), []))
    assert {len(share) for share in shares} == {8}  # 44 // 4 = 11 each, in whole batches of 4
    assert len(set(sum(shares, []))) == 32  # disjoint
    dm = StreamingDataModule(str(chunks), batch_size=4, num_workers=workers)
    assert sorted(ids(dm.real_samples(44))) == list(range(44))  # every image, whatever the rank
    if workers == 0:  # writing under a distributed job's variables: one writer all the same
        write_chunks(ImageSource(chunks.parent / "ds.zip"), chunks.parent / "under_ranks")


def test_a_resume_reads_the_same_chunks_moved_elsewhere_and_refuses_others(chunks, tmp_path):
    first = StreamingDataModule(str(chunks), batch_size=8, num_workers=0).train_dataloader()
    straight = lightning_reads(first, 4)
    first = StreamingDataModule(str(chunks), batch_size=8, num_workers=0).train_dataloader()
    state = (lightning_reads(first, 2), first.state_dict())[1]
    moved = shutil.copytree(chunks, tmp_path / "staged")  # e.g. staged onto a node's local disk
    resumed = StreamingDataModule(str(moved), batch_size=8, num_workers=0).train_dataloader()
    resumed.load_state_dict(state)
    assert lightning_reads(resumed, 2, done=2) == straight[2:]

    other = StreamingDataModule(str(chunks), batch_size=8, num_workers=0, seed=1).train_dataloader()
    with pytest.raises(UserError, match=r"data\.seed=1 but the checkpoint's run read its chunks with seed 0"):
        other.load_state_dict(state)
    write_chunks(ImageSource(stylegan2_ada_zip(tmp_path / "other.zip", n=48)), tmp_path / "other", chunk_bytes=1024)
    other = StreamingDataModule(str(tmp_path / "other"), batch_size=8, num_workers=0).train_dataloader()
    with pytest.raises(UserError, match=r"data\.path: .*other holds other images than the chunks this checkpoint"):
        other.load_state_dict(state)


def test_chunks_in_object_storage_stream_through_the_local_cache(chunks, tmp_path):
    """``local:DIR`` takes LitData's remote path (index, chunks fetched into ``cache_dir``) without a network."""
    dm = StreamingDataModule(f"local:{chunks}", cache_dir=str(tmp_path / "cache"), max_cache_size="1GB",
                             batch_size=8, num_workers=0)
    assert dm.spec.class_names == CLASSES
    batches = [ids(b) for b in dm.train_dataloader()]
    assert len(batches) == 5 and len(set(sum(batches, []))) == 40
    assert list((tmp_path / "cache").rglob("chunk-*.bin"))  # read from the cache


def test_making_the_dataset_and_reading_opens_no_connection(chunks, monkeypatch):
    import litdata.helpers

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    # The check is on when LitData was imported with it on: that is what is turned off.
    monkeypatch.setenv("LITDATA_CHECK_UPDATES", "1")
    monkeypatch.setenv("LITDATA_DISABLE_VERSION_CHECK", "0")
    monkeypatch.setattr(litdata.helpers, "_LITDATA_DISABLE_VERSION_CHECK", 0)
    litdata.helpers._get_newer_version.cache_clear()
    litdata.helpers._get_newer_version("0.0.1")  # the detector works: LitData's check tries to connect
    assert attempts
    attempts.clear()
    litdata.helpers._get_newer_version.cache_clear()

    dm = StreamingDataModule(str(chunks), batch_size=8, num_workers=0)
    next(iter(dm.train_dataloader()))
    dm.real_samples(2)
    assert not attempts


@pytest.mark.parametrize("path,message", [
    ("{tmp}/nowhere", r"data\.path .*nowhere does not exist: give a folder of LitData chunks"),
    ("{tmp}", r"data\.path .* holds no gan_lightning\.json: it is not a folder of image chunks"),
    ("{tmp}/file.txt", r"data\.path .*file\.txt is a file, not a folder"),
])
def test_a_bad_path_is_one_line(make_cfg, tmp_path, path, message):
    from gan_lightning.train.fit import train

    (tmp_path / "file.txt").write_text("x")
    cfg = make_cfg("data=streaming", f"data.path={path.format(tmp=tmp_path)}", "max_iterations=1")
    with pytest.raises(UserError, match=message) as err:
        train(cfg)
    assert "\n" not in str(err.value)


def test_a_size_that_does_not_match_the_chunks_is_one_line(chunks):
    with pytest.raises(UserError, match=r"data\.image_size=16 but the chunks in .* hold 8"):
        StreamingDataModule(str(chunks), image_size=16)


STREAMING = ["data=streaming", "data.batch_size=8", "data.num_workers=0", "metrics=none",
             "callbacks.samples.every_n_iterations=0"]


@pytest.mark.slow
def test_a_conditional_model_trains_from_chunks(make_cfg, chunks):
    from gan_lightning.train.checkpoints import read_checkpoint
    from gan_lightning.train.fit import train

    result = train(make_cfg("model=cgan", *STREAMING, f"data.path={chunks}", "max_iterations=2"))
    assert result["iteration"] == 2
    saved = read_checkpoint(result["last_checkpoint"])
    assert tuple(saved["gan_lightning"]["config"]["data"]["class_names"]) == CLASSES


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(make_cfg, chunks, tmp_path):
    """Bitwise: the same batches (LitData's state in the checkpoint; the epoch after the resumed one is a new one)
    and the same noise (no loader draws from the global RNG). Loader workers: see the loader's own test above."""
    from gan_lightning.train.checkpoints import read_checkpoint
    from gan_lightning.train.fit import train

    common = [*STREAMING, f"data.path={chunks}"]
    # one batch an iteration, 5 an epoch: the first half ends mid-epoch, the second crosses into the next epoch
    full = train(make_cfg(*common, "max_iterations=7", output_dir=tmp_path / "full"))
    half = train(make_cfg(*common, "max_iterations=3", output_dir=tmp_path / "half"))
    loader_state = read_checkpoint(half["last_checkpoint"])["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader_state and loader_state[0]["num_samples_yielded"] > 0  # LitData's position is in the checkpoint
    resumed = train(make_cfg(*common, "max_iterations=7", f"ckpt_path={half['last_checkpoint']}",
                             output_dir=tmp_path / "resumed"))
    assert (half["iteration"], resumed["iteration"]) == (3, 7)
    a = read_checkpoint(full["last_checkpoint"])["state_dict"]
    b = read_checkpoint(resumed["last_checkpoint"])["state_dict"]
    for key, value in a.items():
        assert torch.equal(value, b[key]), key
