"""A user's own images: names listed at start-up and decoded in the workers, labels from class subfolders or
dataset.json, a bad file mid-run, exact resume and disjoint shards of the per-example loader, FID references keyed
by the data's content, and a conditional model trained on a labelled folder."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.data.convert import to_uint8
from gan_lightning.data.folders import ImageFolderDataModule
from gan_lightning.data.items import ItemLoader
from gan_lightning.data.sources import ImageSource
from gan_lightning.data.translation import AlignedFolderDataModule
from gan_lightning.errors import BadDataFile, UserError
from gan_lightning.metrics.reference import reference_for

CLASSES = ("boots", "coats", "shirts")


def labelled_folder(root: Path, per_class: int = 4, size: int = 12) -> Path:
    """``root/<class>/<i>.png``: class k's images are grey level 60 k + i (so every image is told apart)."""
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((size, size + 4), 60 * k + i, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def grey_levels(batch: dict[str, torch.Tensor]) -> list[int]:
    return to_uint8(batch["x"])[:, 0, 0, 0].tolist()


def test_start_up_lists_the_files_and_decodes_none(tmp_path, monkeypatch):
    labelled_folder(tmp_path)
    opened = []
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or pytest.fail("decoded at start-up"))
    dm = ImageFolderDataModule(str(tmp_path), image_size=8, channels=1, labels="subfolders", batch_size=4)
    assert dm.spec.shapes == {"x": (1, 8, 8), "y": ()} and dm.spec.class_names == CLASSES
    dm.setup()
    dm.content_hash()
    assert not opened


@pytest.mark.parametrize("labels", ["subfolders", "json", "file"])
def test_labels_come_from_class_subfolders_or_a_dataset_json(tmp_path, labels):
    root = labelled_folder(tmp_path / "data")
    table = {"labels": [[f"{name}/{i}.png", k] for k, name in enumerate(CLASSES) for i in range(4)],
             "class_names": list(CLASSES)}
    if labels == "json":
        (root / "dataset.json").write_text(json.dumps(table))
    if labels == "file":
        (tmp_path / "mine.json").write_text(json.dumps(table))
        labels = str(tmp_path / "mine.json")
    dm = ImageFolderDataModule(str(root), image_size=8, channels=1, labels=labels, batch_size=4, num_workers=0)
    assert dm.num_classes == 3 and dm.class_names == list(CLASSES)
    for batch in dm.train_dataloader():
        for level, label in zip(grey_levels(batch), batch["y"].tolist()):
            assert level // 60 == label  # each image with its own class


def test_a_stylegan2_ada_zip_loads_with_its_labels(tmp_path):
    """A zip made to dataset_tool.py's documented format: ``00000/img00000000.png`` and dataset.json labels."""
    path = tmp_path / "ds.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        labels = []
        for i in range(6):
            name = f"00000/img{i:08d}.png"
            buf = __import__("io").BytesIO()
            Image.fromarray(np.full((8, 8, 3), 30 * i, dtype=np.uint8)).save(buf, format="PNG", compress_level=0)
            z.writestr(name, buf.getvalue())
            labels.append([name, i % 2])
        z.writestr("dataset.json", json.dumps({"labels": labels}))
    dm = ImageFolderDataModule(str(path), image_size=8, batch_size=2, num_workers=1)
    assert dm.num_classes == 2 and dm.class_names == ["0", "1"]  # labels=auto: dataset.json
    seen = {}
    for batch in dm.train_dataloader():
        for level, label in zip(grey_levels(batch), batch["y"].tolist()):
            seen[level] = label
    assert seen == {30 * i: i % 2 for i in range(6)}
    unlabelled = ImageFolderDataModule(str(path), image_size=8, labels="none", batch_size=2)
    assert unlabelled.num_classes is None and set(unlabelled.real_samples(3)) == {"x"}


@pytest.mark.parametrize("make,labels,message", [
    (lambda r: (r / "loose.png").write_bytes((r / "boots" / "0.png").read_bytes()), "subfolders",
     r"1 image\(s\) lie directly in .*loose\.png.*put every image in a folder named after its class"),
    (lambda r: (r / "dataset.json").write_text(json.dumps({"labels": [["boots/9.png", 0]]})), "json",
     r"dataset\.json names 1 file\(s\) that are not among the images .*boots/9\.png"),
    (lambda r: (r / "dataset.json").write_text(json.dumps({"labels": [["boots/0.png", 0]]})), "json",
     r"11 image\(s\) of .* have no label in .*dataset\.json"),
    (lambda r: (r / "dataset.json").write_text("{not json"), "json", r"dataset\.json is not a labels file"),
    (lambda r: None, "json", r"data\.labels=json but .* has no dataset\.json"),
    (lambda r: None, "nowhere.json", r"data\.labels=nowhere\.json: no such file"),
])
def test_labels_that_do_not_fit_the_images_are_one_line(tmp_path, make, labels, message):
    root = labelled_folder(tmp_path)
    make(root)
    with pytest.raises(UserError, match=message) as err:
        ImageFolderDataModule(str(root), image_size=8, labels=labels).spec
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_a_dataset_is_one_line(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    (tmp_path / "empty.zip").write_bytes(zipfile.ZipFile(tmp_path / "e.zip", "w").close() or
                                         (tmp_path / "e.zip").read_bytes())
    for path, message in [("fake.zip", "is not a readable zip"), ("empty.zip", "no images"),
                          ("missing.zip", "does not exist")]:
        with pytest.raises(UserError, match=message) as err:
            ImageFolderDataModule(str(tmp_path / path)).spec
        assert "\n" not in str(err.value)


def test_a_bad_file_is_skipped_and_counted_or_stops_with_its_name(tmp_path):
    root = labelled_folder(tmp_path)
    (root / "coats" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    skip = ImageFolderDataModule(str(root), image_size=8, channels=1, labels="subfolders", batch_size=3,
                                 num_workers=2, bad_files="skip")
    loader = skip.train_dataloader()
    for _ in range(2):
        levels = [lv for batch in loader for lv in grey_levels(batch)]
        assert len(levels) == 12 and 62 not in levels  # the bad image's place taken by a readable one
    assert [ImageSource(root).path_of(i) for i in loader.skipped] == [str(root / "coats" / "2.png")]
    stop = ImageFolderDataModule(str(root), image_size=8, channels=1, batch_size=3, num_workers=2)
    loader = stop.train_dataloader()
    with pytest.raises(BadDataFile, match=r"image .*coats/2\.png cannot be decoded .*bad_files=skip") as err:
        list(loader)
    assert "\n" not in str(err.value)
    done = loader.state_dict()["batch"]
    assert done < len(loader)  # stopped at the batch that holds it: a resume starts there


@pytest.mark.parametrize("workers", [0, 2])
def test_the_per_example_loader_resumes_to_the_batch_and_shards_disjointly(tmp_path, workers):
    root = labelled_folder(tmp_path, per_class=6)
    dm = ImageFolderDataModule(str(root), image_size=8, channels=1, labels="subfolders", batch_size=2,
                               num_workers=workers)
    dm.setup()
    straight = ItemLoader(dm._items, 2, workers, seed=3)
    epochs = [[grey_levels(b) for b in straight] for _ in range(2)]
    first = ItemLoader(dm._items, 2, workers, seed=3)
    it = iter(first)
    head = [grey_levels(next(it)) for _ in range(4)]  # 4 of 9 batches (the workers have read further ahead)
    resumed = ItemLoader(dm._items, 2, workers, seed=3)
    resumed.load_state_dict(first.state_dict())
    assert head + [grey_levels(b) for b in resumed] == epochs[0]
    assert [grey_levels(b) for b in resumed] == epochs[1]
    assert sorted(sum(epochs[0], [])) == sorted(sum(epochs[1], [])) and epochs[0] != epochs[1]
    shards = [sum((grey_levels(b) for b in ItemLoader(dm._items, 2, workers, seed=3, rank=r, world_size=2)), [])
              for r in range(2)]
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(shards[1]) == 8


def test_aligned_pairs_from_a_zip_are_read_as_from_the_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "pairs"
    for split, n in (("train", 4), ("test", 2)):
        (folder / split).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / split / f"{i}.png")
    with zipfile.ZipFile(tmp_path / "pairs.zip", "w") as z:
        for f in sorted(folder.rglob("*.png")):
            z.write(f, f.relative_to(folder).as_posix())
    dms = [AlignedFolderDataModule(str(p), load_size=12, crop=8, batch_size=2, num_workers=w)
           for p, w in ((folder, 0), (tmp_path / "pairs.zip", 2))]
    batches = [list(dm.train_dataloader()) for dm in dms]
    for x, y in zip(*batches):
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"])
        assert torch.equal(to_uint8(x["b"]), 255 - to_uint8(x["a"]))
    assert torch.equal(dms[0].fixed_batch(2)["a"], dms[1].fixed_batch(2)["a"]) and dms[1].split_size() == 2


class _Space:
    """A stand-in feature space: the mean grey level of each image."""

    name, weights_sha256, classes, description = "grey", "none", None, {}

    def extract(self, images):
        return images.float().mean((1, 2, 3))[:, None], None


def test_fid_references_of_user_data_are_cached_by_content_and_read_no_image_on_a_hit(tmp_path):
    root = labelled_folder(tmp_path / "data")
    dm = ImageFolderDataModule(str(root), image_size=8, channels=1, batch_size=2)
    reads = []

    def images():
        reads.append(1)
        return to_uint8(dm.real_samples(6)["x"]), "6 drawn"

    kwargs = {"dataset": "mine", "split": "train", "cache_dir": tmp_path / "cache"}
    before = dm.content_hash()
    first = reference_for(_Space(), images, content_hash=dm.content_hash(), **kwargs)
    again = reference_for(_Space(), images, content_hash=dm.content_hash(), **kwargs)
    assert (first.cache_hit, again.cache_hit, len(reads)) == (False, True, 1)
    assert torch.equal(first.features, again.features) and again.meta["selection"] == "6 drawn"
    Image.fromarray(np.zeros((12, 20), dtype=np.uint8)).save(root / "boots" / "0.png")  # a changed file
    changed = ImageFolderDataModule(str(root), image_size=8, channels=1, batch_size=2).content_hash()
    assert changed != before
    assert ImageFolderDataModule(str(root), image_size=16, channels=1).content_hash() != changed  # another size
    assert not reference_for(_Space(), images, content_hash=changed, **kwargs).cache_hit


@pytest.mark.slow
def test_a_conditional_model_trains_on_a_labelled_folder_and_samples_a_class_by_name(make_cfg, tmp_path):
    from gan_lightning.sampling import generate
    from gan_lightning.train.fit import train

    root = labelled_folder(tmp_path / "data", per_class=8, size=28)
    cfg = make_cfg("model=cgan", "data=image_folder", f"data.path={root}", "data.labels=subfolders",
                   "data.image_size=28", "data.channels=1", "data.batch_size=8", "data.num_workers=0",
                   "metrics=none", "max_iterations=3", "callbacks.samples.every_n_iterations=0")
    result = train(cfg)
    out = generate(result["last_checkpoint"], n=4, out=str(tmp_path / "coats.npz"), label="coats")
    saved = np.load(out["out"])
    assert saved["images"].shape[0] == 4 and set(saved["labels"].tolist()) == {1}


@pytest.mark.slow
def test_a_bad_file_mid_run_saves_the_run_and_a_resume_continues(make_cfg, tmp_path):
    from gan_lightning.train.checkpoints import read_checkpoint
    from gan_lightning.train.fit import train

    root = labelled_folder(tmp_path / "data", per_class=8, size=28)
    overrides = ["data=image_folder", f"data.path={root}", "data.image_size=28", "data.channels=1",
                 "data.batch_size=4", "data.num_workers=0", "metrics=none", "max_iterations=20",
                 "callbacks.samples.every_n_iterations=0"]
    run = tmp_path / "run"
    good = (root / "shirts" / "7.png").read_bytes()
    (root / "shirts" / "7.png").write_bytes(b"broken")
    with pytest.raises(BadDataFile, match=r"shirts/7\.png cannot be decoded"):
        train(make_cfg(*overrides, output_dir=run))
    saved = read_checkpoint(str(run / "checkpoints" / "last.ckpt"))
    stopped = saved["gan_lightning"]["iteration"]
    assert 0 <= stopped < 20
    (root / "shirts" / "7.png").write_bytes(good)  # the user replaces the file and resumes
    result = train(make_cfg(*overrides, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", output_dir=run))
    assert read_checkpoint(result["last_checkpoint"])["gan_lightning"]["iteration"] == 20


@pytest.mark.slow
def test_a_run_on_a_folder_resumed_mid_epoch_ends_with_the_weights_of_an_uninterrupted_one(make_cfg, tmp_path):
    from gan_lightning.train.checkpoints import read_checkpoint
    from gan_lightning.train.fit import train

    root = labelled_folder(tmp_path / "data", per_class=8, size=28)  # 24 images: 6 batches an epoch
    common = ["data=image_folder", f"data.path={root}", "data.image_size=28", "data.channels=1",
              "data.batch_size=4", "data.num_workers=1", "metrics=none", "callbacks.samples.every_n_iterations=0"]
    full = train(make_cfg(*common, "max_iterations=8", output_dir=tmp_path / "full"))
    half = train(make_cfg(*common, "max_iterations=4", output_dir=tmp_path / "half"))  # mid-epoch 2
    resumed = train(make_cfg(*common, "max_iterations=8", f"ckpt_path={half['last_checkpoint']}",
                             output_dir=tmp_path / "resumed"))
    a, b = read_checkpoint(full["last_checkpoint"]), read_checkpoint(resumed["last_checkpoint"])
    assert b["gan_lightning"]["iteration"] == 8
    for key, value in a["state_dict"].items():  # the same batches, in the same order, as the uninterrupted run
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-6), key


@pytest.mark.parametrize("model", ["acgan", "stylegan2"])
def test_the_other_conditional_families_build_on_a_labelled_folder(make_cfg, tmp_path, model):
    from hydra.utils import instantiate

    from gan_lightning.train.build import build_module

    root = labelled_folder(tmp_path / "data", size=32)
    extra = ["model.conditional=true"] if model == "stylegan2" else []
    cfg = make_cfg(f"model={model}", *extra, "data=image_folder", f"data.path={root}", "data.labels=subfolders",
                   "data.image_size=32", "data.channels=1")
    module = build_module(cfg, instantiate(cfg.data))
    assert module.family.num_classes == 3
    inputs = module.family.sample_inputs(3, labels=torch.tensor([0, 1, 2]))
    assert module.generate(inputs).shape == (3, 1, 32, 32)
