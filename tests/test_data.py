"""Tests for gan_lightning.data: torchvision sets offline, the batch loader, image folders, mixtures."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import inspect
import math
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace
from urllib.error import URLError

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torchvision import datasets

from gan_lightning import data
from gan_lightning.data import (
    GaussianMixtureDataModule,
    ImageFolderDataModule,
    TensorBatchLoader,
    TorchvisionDataModule,
)
from gan_lightning.data import datasets as tv_data
from gan_lightning.data.items import ItemLoader
from gan_lightning.errors import BadDataFile, UserError
from gan_lightning.metrics.mixtures import mixture_metrics

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
needs_debian_fashion = pytest.mark.skipif(
    not all((DEBIAN_FASHION / f"{f}.gz").is_file() for f in tv_data._IDX_FILES),
    reason="Debian package dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)",
)


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- Fashion-MNIST from the Debian package ------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory) -> Path:
    if not DEBIAN_FASHION.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    return tmp_path_factory.mktemp("fashion")


@needs_debian_fashion
def test_fashion_mnist_from_debian(fashion_root):
    dm = TorchvisionDataModule("fashion_mnist", str(fashion_root), subset=256, download=False)
    # Known before any data is read.
    assert dm.shape == (1, 28, 28) and dm.bounded
    assert dm.num_classes == 10 and len(dm.class_names) == 10 and dm.class_names[0] == "T-shirt/top"

    dm.setup("fit")
    for f in tv_data._IDX_FILES:
        assert (fashion_root / "FashionMNIST" / "raw" / f).is_file()
    loader = dm.train_dataloader()
    assert len(loader) == 256 // 64
    batch = next(iter(loader))
    assert batch["x"].shape == (64, 1, 28, 28) and batch["x"].dtype == torch.float32
    assert batch["y"].dtype == torch.int64

    everything = dm.real_samples(256)
    x, y = everything["x"], everything["y"]
    assert x.shape == (256, 1, 28, 28)
    assert x.min() == -1.0 and x.max() >= 0.99 and x.max() <= 1.0
    assert y.min() >= 0 and y.max() <= 9 and len(y.unique()) == 10

    test_x, test_y = dm.load_split("test")
    assert test_x.shape == (10_000, 1, 28, 28) and test_x.dtype == torch.uint8
    assert test_y.shape == (10_000,) and test_y.dtype == torch.int64


@needs_debian_fashion
@pytest.mark.parametrize(("size", "channels"), [(32, None), (64, 3)])
def test_fashion_mnist_resize(fashion_root, size, channels):
    dm = TorchvisionDataModule(
        "fashion_mnist", str(fashion_root), batch_size=16, image_size=size, channels=channels, subset=64
    )
    c = channels or 1
    assert dm.shape == (c, size, size)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (16, c, size, size)
    assert batch["x"].min() >= -1 and batch["x"].max() <= 1
    if c == 3:  # grey repeated into RGB
        assert torch.equal(batch["x"][:, 0], batch["x"][:, 2])


@needs_debian_fashion
def test_fashion_mnist_dataloader_path(fashion_root):
    dm = TorchvisionDataModule("fashion_mnist", str(fashion_root), batch_size=32, subset=100, in_memory=False)
    loader = dm.train_dataloader()
    assert isinstance(loader, ItemLoader) and len(loader) == 3  # drop_last
    batch = next(iter(loader))
    assert batch["x"].shape == (32, 1, 28, 28) and batch["x"].dtype == torch.float32
    assert batch["y"].shape == (32,) and batch["y"].dtype == torch.int64
    assert batch["x"].min() >= -1 and batch["x"].max() <= 1


# --- MNIST and CIFAR-10 from fake files in the real formats --------------------------------------


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """An idx file (big-endian magic: 0x0000, type 0x08 = uint8, number of dims), gzipped."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path, n_train: int = 40, n_test: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx_gz(root / f"{name}.gz", array)
    return arrays


def test_mnist_from_gz_files_in_root(tmp_path):
    arrays = fake_mnist(tmp_path)
    dm = TorchvisionDataModule("mnist", str(tmp_path), batch_size=8, download=False)
    assert dm.shape == (1, 28, 28) and dm.class_names[3] == "3 - three"
    x, y = dm.load_split("train")
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert torch.equal(x, torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.uint8)).unsqueeze(1))
    assert torch.equal(y, torch.from_numpy(arrays["train-labels-idx1-ubyte"]).long())
    test_x, _ = dm.load_split("test")
    assert test_x.shape == (12, 1, 28, 28)

    loader = dm.train_dataloader()
    assert len(loader) == 5
    batch = next(iter(loader))
    assert batch["x"].shape == (8, 1, 28, 28) and batch["y"].shape == (8,)


def test_mnist_channels_and_subset(tmp_path):
    fake_mnist(tmp_path)
    dm = TorchvisionDataModule("mnist", str(tmp_path), batch_size=4, channels=3, image_size=32, subset=10)
    dm.setup()
    assert dm.real_samples(10)["x"].shape == (10, 3, 32, 32)
    assert len(dm.train_dataloader()) == 2  # 10 images, batches of 4, last one dropped


def write_cifar(root: Path, per_batch: int = 6) -> dict[str, dict]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),  # rows: R plane, G, B
            "labels": rng.integers(0, 10, per_batch).tolist(),
        }
    batches["batches.meta"] = {"label_names": list(tv_data.TORCHVISION["cifar10"].classes)}
    for name, content in batches.items():
        (folder / name).write_bytes(pickle.dumps(content))
    return batches


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_checksum_mismatch_is_a_user_error(tmp_path):
    # torchvision checks every CIFAR-10 file against the md5 of the original release, so fake
    # files are rejected: that must surface as a one-line UserError, not a RuntimeError.
    write_cifar(tmp_path)
    dm = TorchvisionDataModule("cifar10", str(tmp_path), download=False)
    with pytest.raises(UserError, match="cannot read CIFAR-10") as excinfo:
        dm.setup()
    assert "data.root" in one_line_error(excinfo)


def test_cifar10_from_torchvision_layout(tmp_path, monkeypatch):
    # Same files, with torchvision's expected checksums replaced by the fake files' own: the
    # loader then goes through torchvision's real reading code unchanged.
    batches = write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    cls = datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5(folder / n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(folder / n)] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / "batches.meta")})

    dm = TorchvisionDataModule("cifar10", str(tmp_path), batch_size=10, download=False)
    assert dm.shape == (3, 32, 32) and dm.class_names[0] == "airplane"
    x, y = dm.load_split("train")
    expected = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert torch.equal(x, torch.from_numpy(expected))
    assert y.tolist() == sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    test_x, test_y = dm.load_split("test")
    assert test_x.shape == (6, 3, 32, 32) and test_y.tolist() == batches["test_batch"]["labels"]

    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (10, 3, 32, 32)

    grey = TorchvisionDataModule("cifar10", str(tmp_path), channels=1, image_size=16, download=False)
    gx, _ = grey.load_split("test")
    assert gx.shape == (6, 1, 16, 16) and gx.dtype == torch.uint8


# --- missing data and bad options ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10"])
def test_missing_data_is_a_user_error(tmp_path, monkeypatch, name):
    # Hide the Debian copy so that fashion_mnist is missing too.
    spec = tv_data.TORCHVISION[name]
    monkeypatch.setitem(tv_data.TORCHVISION, name, dataclasses.replace(spec, system_dir=str(tmp_path / "none")))
    dm = TorchvisionDataModule(name, str(tmp_path / "empty"), download=False)
    with pytest.raises(UserError, match=f"{spec.title} not found") as excinfo:
        dm.setup()
    message = one_line_error(excinfo)
    assert "data.root" in message and "data.download=true" in message
    assert ("apt-get install dataset-fashion-mnist" in message) == (name == "fashion_mnist")


def test_failed_download_is_a_user_error(tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    dm = TorchvisionDataModule("mnist", str(tmp_path), download=True)
    with pytest.raises(UserError, match="download failed") as excinfo:
        dm.setup()
    assert "data.root" in one_line_error(excinfo)


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="fashion_mnist, mnist, cifar10"):
        TorchvisionDataModule("imagenet", str(tmp_path))
    with pytest.raises(UserError, match="data.channels"):
        TorchvisionDataModule("mnist", str(tmp_path), channels=2)
    with pytest.raises(UserError, match="data.kind"):
        GaussianMixtureDataModule(kind="spiral")
    with pytest.raises(UserError, match="data.batch_size"):  # fewer examples than one batch
        GaussianMixtureDataModule(n_samples=10, batch_size=64).train_dataloader()


# --- TensorBatchLoader ----------------------------------------------------------------------------


def ids(batches) -> list[list[int]]:
    """Batches of the id-valued loader below as lists of ids."""
    return [b["x"][:, 0].long().tolist() for b in batches]


def id_loader(n: int = 100, **kwargs) -> TensorBatchLoader:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)  # example i holds the value i
    return TensorBatchLoader(x, torch.arange(n) % 7, **{"batch_size": 10, **kwargs})


def test_loader_epoch_covers_every_example_once():
    loader = id_loader(103)
    assert len(loader) == 10  # drop_last
    batches = list(loader)
    assert len(batches) == 10 and all(len(b["x"]) == 10 for b in batches)
    seen = sum(ids(batches), [])
    assert len(set(seen)) == 100 and set(seen) <= set(range(103))
    assert all(torch.equal(b["y"], b["x"][:, 0].long() % 7) for b in batches)

    full = sum(ids(id_loader(100)), [])
    assert sorted(full) == list(range(100))


def test_loader_shuffle_is_seeded_and_changes_every_epoch():
    a, b, c = id_loader(seed=1), id_loader(seed=1), id_loader(seed=2)
    a0, a1 = ids(a), ids(a)
    assert a0 == ids(b) and a1 == ids(b)
    assert a0 != a1 and sorted(sum(a0, [])) == sorted(sum(a1, []))
    assert a0 != ids(c)


def test_loader_normalizes_uint8():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8).view(3, 1, 1, 1)
    batch = next(iter(TensorBatchLoader(x, batch_size=3, shuffle=False)))
    assert set(batch) == {"x"}
    assert batch["x"].dtype == torch.float32
    assert batch["x"].flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)


def test_loader_ddp_shards_are_disjoint_and_equal():
    for n in (100, 103):
        ranks = [id_loader(n, seed=3, rank=r, world_size=2) for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == (n // 2) // 10
        for _epoch in range(2):
            shards = [sum(ids(loader), []) for loader in ranks]
            assert len(shards[0]) == len(shards[1]) == len(ranks[0]) * 10
            assert not set(shards[0]) & set(shards[1])
            assert len(set(shards[0])) == len(shards[0])


def test_loader_resumes_at_the_exact_next_batch():
    reference = id_loader(seed=5)
    uninterrupted = ids(reference) + ids(reference) + ids(reference)

    first = id_loader(seed=5)
    seen = ids(first)  # epoch 0
    it = iter(first)
    seen += ids([next(it) for _ in range(3)])  # part of epoch 1
    state = first.state_dict()
    assert state == {"epoch": 1, "batch": 3}
    assert all(isinstance(v, int) for v in state.values())

    resumed = id_loader(seed=5)
    resumed.load_state_dict(state)
    seen += ids(resumed)  # rest of epoch 1
    assert len(seen) == 20
    seen += ids(resumed)  # epoch 2
    assert seen == uninterrupted

    # A state saved at the end of an epoch resumes with the next epoch.
    end_of_epoch = id_loader(seed=5)
    end_of_epoch.load_state_dict({"epoch": 0, "batch": 10})
    assert ids(end_of_epoch) == uninterrupted[10:20]


def test_loader_unused_iter_does_not_consume_an_epoch():
    loader = id_loader(seed=4)
    iter(loader)  # Lightning does this to check that the loader is iterable
    assert ids(loader) == ids(id_loader(seed=4))


class _RecordBatches(pl.LightningModule):
    def __init__(self, record: list) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.record = record

    def training_step(self, batch, batch_idx):
        self.record.append(batch["x"][:, 0].long().tolist())
        return (self.weight * batch["x"].mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_loader_resumes_mid_epoch_in_lightning(tmp_path):
    """A checkpoint saved mid-epoch restores the loader's position through Lightning 2.6's
    CombinedLoader state (``state_dict`` / ``load_state_dict``)."""
    flags = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}

    def fit(record, max_steps, ckpt_path=None, callbacks=()):
        trainer = pl.Trainer(
            max_steps=max_steps,
            callbacks=list(callbacks),
            enable_checkpointing=bool(callbacks),
            default_root_dir=tmp_path,
            **flags,
        )
        trainer.fit(_RecordBatches(record), train_dataloaders=id_loader(60, seed=9), ckpt_path=ckpt_path)

    uninterrupted: list = []
    fit(uninterrupted, max_steps=15)  # 6 batches per epoch: ends in the middle of epoch 2

    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=8, save_top_k=-1)
    before: list = []
    fit(before, max_steps=8, callbacks=[checkpoint])  # saved after batch 2 of epoch 1
    after: list = []
    fit(after, max_steps=15, ckpt_path=str(next((tmp_path / "ckpt").glob("*.ckpt"))))
    assert before + after == uninterrupted


def test_datamodule_shards_by_trainer_rank():
    dm = GaussianMixtureDataModule(n_samples=1000, batch_size=100)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2,  # what Lightning sets under DDP
                                 strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loader = dm.train_dataloader()
    assert (loader.rank, loader.world_size, len(loader)) == (1, 2, 5)


# --- image folders --------------------------------------------------------------------------------


def write_images(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size, mode in [("a.png", (40, 30), "RGB"), ("b.PNG", (20, 50), "L"), ("sub/c.png", (64, 64), "RGBA")]:
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(folder / name)
    Image.new("RGB", (33, 17), (255, 0, 0)).save(folder / "sub" / "d.jpg")
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_reads_and_resizes(tmp_path):
    write_images(tmp_path)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=2, num_workers=0)
    assert dm.shape == (3, 16, 16) and dm.num_classes is None and dm.bounded
    loader = dm.train_dataloader()
    assert len(loader) == 2  # 4 images
    batches = list(loader)
    assert all(set(b) == {"x"} and b["x"].shape == (2, 3, 16, 16) for b in batches)
    x = torch.cat([b["x"] for b in batches])
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert dm.real_samples(6)["x"].shape == (6, 3, 16, 16)  # more than the folder holds: with replacement

    grey = ImageFolderDataModule(str(tmp_path), image_size=8, channels=1, batch_size=4, num_workers=0)
    assert next(iter(grey.train_dataloader()))["x"].shape == (4, 1, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist") as excinfo:
        ImageFolderDataModule(str(tmp_path / "nowhere")).setup()
    one_line_error(excinfo)

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images") as excinfo:
        ImageFolderDataModule(str(tmp_path / "empty")).setup()
    one_line_error(excinfo)

    write_images(tmp_path / "broken")
    (tmp_path / "broken" / "sub" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    broken = ImageFolderDataModule(str(tmp_path / "broken"), image_size=8, batch_size=1, num_workers=0)
    broken.setup()  # start-up lists the files and decodes none: the bad one is found when it is read
    with pytest.raises(BadDataFile, match=r"image .*bad\.png cannot be decoded .*data\.bad_files=skip") as excinfo:
        list(broken.train_dataloader())
    one_line_error(excinfo)


# --- Gaussian mixtures ----------------------------------------------------------------------------


def test_mixture_modes_and_data():
    ring = GaussianMixtureDataModule("ring", n_samples=2000, batch_size=100, seed=1)
    assert ring.shape == (2,) and not ring.bounded and ring.std == 0.02
    assert ring.num_classes == 8 and ring.class_names[7] == "mode 7"
    assert ring.modes.shape == (8, 2)
    assert torch.allclose(ring.modes.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(ring.modes[0], torch.tensor([2.0, 0.0]))
    assert torch.allclose(ring.modes[2], torch.tensor([0.0, 2.0]), atol=1e-6)

    grid = GaussianMixtureDataModule("grid")
    assert grid.std == 0.05 and grid.num_classes == 25
    assert {tuple(m) for m in grid.modes.tolist()} == {(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)}

    batch = next(iter(ring.train_dataloader()))
    assert batch["x"].shape == (100, 2) and batch["x"].dtype == torch.float32 and batch["y"].dtype == torch.int64
    assert torch.equal(torch.cdist(batch["x"], ring.modes).argmin(1), batch["y"])
    same = GaussianMixtureDataModule("ring", n_samples=2000, batch_size=100, seed=1)
    assert torch.equal(ring.real_samples(50)["x"], same.real_samples(50)["x"])


@pytest.mark.parametrize("kind", ["ring", "grid"])
def test_mixture_metrics(kind):
    dm = GaussianMixtureDataModule(kind, n_samples=5000)
    k = len(dm.modes)

    real = mixture_metrics(dm.real_samples(2500)["x"], dm.modes, dm.std)
    assert real["high_quality_frac"] > 0.98
    assert real["modes_covered"] == k
    assert real["mode_kl"] < 0.05

    one_mode = dm.modes[3] + dm.std * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    collapsed = mixture_metrics(one_mode, dm.modes, dm.std)
    assert collapsed["modes_covered"] == 1
    assert collapsed["mode_kl"] == pytest.approx(math.log(k), abs=1e-3)

    noise = torch.rand(2500, 2, generator=torch.Generator().manual_seed(0)) * 12 - 6
    assert mixture_metrics(noise, dm.modes, dm.std)["high_quality_frac"] < 0.03

    far = mixture_metrics(torch.full((10, 2), 100.0), dm.modes, dm.std)
    assert far["high_quality_frac"] == 0 and far["modes_covered"] == 0 and math.isnan(far["mode_kl"])


# --- Hydra configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "image_folder", "gaussian_mixture"])
def test_config_lists_every_argument_and_instantiates(tmp_path, name):
    node = OmegaConf.load(CONF / f"{name}.yaml")
    if "defaults" in node:  # the torchvision sets: the shared options, then the file's own
        bases = [OmegaConf.load(CONF / f"{d}.yaml") for d in node.pop("defaults") if d != "_self_"]
        node = OmegaConf.merge(*bases, node)
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "seed": 7, "data": node})
    if name == "image_folder":
        assert OmegaConf.is_missing(cfg.data, "path")
        cfg.data.path = str(tmp_path)
    target = cfg.data._target_
    cls = getattr(data, target.rsplit(".", 1)[1])  # re-exported by the package, where old configs find it
    assert target == f"{cls.__module__}.{cls.__name__}" and cls.__module__.startswith("gan_lightning.data.")
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(cfg.data) - {"_target_"} == params
    dm = instantiate(cfg.data)
    assert isinstance(dm, cls) and dm.seed == 7
    if name in ("fashion_mnist", "mnist", "cifar10"):
        assert dm.name == name and dm.root == str(tmp_path) and dm.batch_size == 64
