"""Image-to-image translation data: Canny edges, Fashion-MNIST edges -> clothing and class domains, aligned pair
folders (Pix2Pix) and unaligned domain folders (CycleGAN)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from scipy import ndimage

from gan_lightning.data.convert import to_uint8
from gan_lightning.data.datasets import TorchvisionDataModule
from gan_lightning.data.translation import (
    AlignedFolderDataModule,
    FashionDomainsDataModule,
    FashionEdgesDataModule,
    UnalignedFolderDataModule,
    canny,
    resolve_class,
)
from gan_lightning.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
FASHION_CLASSES = TorchvisionDataModule("fashion_mnist", "/nowhere").class_names
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity for ndimage.label


def rows_in(rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each image of ``rows`` (uint8 N x ...), whether it is exactly one of ``pool``'s images."""
    return (pool.flatten(1)[None] == rows.flatten(1)[:, None]).all(2).any(1)


@pytest.fixture(scope="module")
def fashion_test(fmnist_root) -> tuple[torch.Tensor, torch.Tensor]:
    return TorchvisionDataModule("fashion_mnist", str(fmnist_root)).load_split("test")


# --- Canny -------------------------------------------------------------------------------------------------------
def _square() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(28, 28, dtype=torch.uint8)
    x[8:20, 6:22] = 200
    return x, x > 0


def _disc() -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    inside = (yy - 13.5) ** 2 + (xx - 13.5) ** 2 <= 64
    return inside.to(torch.uint8) * 180, inside


@pytest.mark.parametrize("shape", [_square, _disc])
def test_canny_draws_a_shape_as_a_closed_one_pixel_outline_on_its_border(shape):
    image, inside = shape()
    edges = canny(image[None, None])
    assert edges.dtype == torch.uint8 and edges.shape == (1, 1, 28, 28)
    assert set(edges.unique().tolist()) == {0, 255}
    e = edges[0, 0] > 0
    grown, shrunk = ndimage.binary_dilation(inside.numpy()), ndimage.binary_erosion(inside.numpy())
    border = torch.from_numpy(grown & ~shrunk)  # the pixels within one of the boundary, on either side
    assert not (e & ~border).any(), "edges inside the shape or away from it"
    assert not (e[:-1, :-1] & e[1:, :-1] & e[:-1, 1:] & e[1:, 1:]).any(), "an outline thicker than one pixel"
    background, _ = ndimage.label(~e.numpy())  # 4-connected: an 8-connected closed outline separates
    assert background[0, 0] != background[14, 14], "the outline is not closed"
    if shape is _square:  # straight sides: exactly one edge pixel across each, away from the corners
        assert (e[5:12, 9:19].sum(0) == 1).all() and (e[16:23, 9:19].sum(0) == 1).all()
        assert (e[11:17, 3:10].sum(1) == 1).all() and (e[11:17, 18:25].sum(1) == 1).all()


def test_canny_is_deterministic_per_image_and_reads_rgb_as_its_luminance(fashion_test):
    x = fashion_test[0][:300]
    edges = canny(x)
    assert torch.equal(edges, canny(x)) and torch.equal(edges[7:9], canny(x[7:9]))  # no dependence on the batch
    assert torch.equal(canny(x.repeat(1, 3, 1, 1)), edges)
    assert not torch.equal(canny(x, sigma=2.0), edges)


def test_canny_hysteresis_keeps_exactly_the_weak_edges_connected_to_strong_ones(fashion_test):
    x = fashion_test[0][:200]
    result = canny(x, low=0.05, high=0.1) > 0
    strong = canny(x, low=0.1, high=0.1) > 0  # thinned pixels at or above high
    weak = canny(x, low=0.05, high=0.05) > 0  # thinned pixels at or above low
    expected = torch.zeros_like(result)
    for i in range(len(x)):
        labels, _ = ndimage.label(weak[i, 0].numpy(), structure=EIGHT)
        touching = np.unique(labels[strong[i, 0].numpy()])
        expected[i, 0] = torch.from_numpy(np.isin(labels, touching[touching > 0]))
    assert torch.equal(result, expected)
    assert (result & ~strong).any() and (weak & ~result).any()  # some weak pixels kept, some dropped


def test_canny_edge_density_on_fashion_mnist_is_what_the_defaults_document(fashion_test):
    x, _ = fashion_test
    edges = canny(x[:2000]) > 0
    density = edges.float().mean().item()
    assert 0.11 <= density <= 0.14, density  # 12.6% on all 70,000 images
    assert edges.flatten(1).any(1).float().mean() > 0.99  # outlines even of dark garments
    assert (canny(x[:2000], low=0.1, high=0.2) > 0).float().mean() < density - 0.02


# --- Fashion-MNIST edges -> clothing ----------------------------------------------------------------------------
def test_fashion_edges_pairs_every_image_with_its_canny_map(fmnist_root):
    dm = FashionEdgesDataModule(root=str(fmnist_root), subset=64, batch_size=16)
    spec = dm.spec
    assert (spec.source, spec.target, spec.paired) == ("a", "b", True)
    assert spec.shapes == {"a": (1, 28, 28), "b": (1, 28, 28), "y": ()} and spec.num_classes == 10
    dm.setup()
    t = dm._tensors
    assert t["a"].dtype == t["b"].dtype == torch.uint8 and len(t["a"]) == 64
    assert torch.equal(t["a"], canny(t["b"]))
    for batch in dm.train_dataloader():
        assert set(batch) == {"a", "b", "y"} and batch["a"].shape == (16, 1, 28, 28)
        assert batch["y"].dtype == torch.int64 and set(batch["a"].unique().tolist()) <= {-1.0, 1.0}
        assert torch.equal(to_uint8(batch["a"]), canny(to_uint8(batch["b"])))  # still pairs after shuffling


def test_fashion_edges_held_out_pairs_come_from_the_test_split_and_follow_the_options(fmnist_root, fashion_test):
    dm = FashionEdgesDataModule(root=str(fmnist_root), subset=64)
    held = dm.fixed_batch(12, seed=3)
    assert set(held) == {"a", "b", "y"} and held["y"].dtype == torch.int64
    target = to_uint8(held["b"])
    assert rows_in(target, fashion_test[0]).all()
    assert torch.equal(to_uint8(held["a"]), canny(target))
    assert torch.equal(held["b"], dm.fixed_batch(12, seed=3)["b"])
    assert not torch.equal(held["b"], dm.fixed_batch(12, seed=4)["b"])
    strict = FashionEdgesDataModule(root=str(fmnist_root), subset=64, sigma=1.5, low=0.1, high=0.2)
    assert torch.equal(to_uint8(strict.fixed_batch(12, seed=3)["a"]), canny(target, 1.5, 0.1, 0.2))
    with pytest.raises(UserError, match="need 0 <= low <= high"):
        FashionEdgesDataModule(root=str(fmnist_root), low=0.3, high=0.2)


# --- Fashion-MNIST classes as domains ---------------------------------------------------------------------------
@pytest.mark.parametrize("value,index", [("tshirt", 0), ("T-shirt", 0), ("T-shirt/top", 0), ("ankle_boot", 9),
                                         ("Ankle boot", 9), ("SNEAKER", 7), (5, 5), ("5", 5)])
def test_domain_names_resolve_case_and_punctuation_blind_or_by_index(value, index):
    assert resolve_class(value, FASHION_CLASSES, "data.a") == index


@pytest.mark.parametrize("a,b,message", [
    ("Sneakers", "Sandal", "data.a=Sneakers is not a class: use one of T-shirt/top, .*Ankle boot"),
    ("Sandal", 10, "data.b=10 is not a class index"),
    ("sneaker", 7, "data.a=sneaker and data.b=7 are both Sneaker"),
])
def test_unknown_or_equal_domains_are_one_line_before_any_data_is_read(tmp_path, a, b, message):
    with pytest.raises(UserError, match=message):
        FashionDomainsDataModule(root=str(tmp_path / "none"), a=a, b=b)


def test_fashion_domains_shuffle_each_class_on_its_own(fmnist_root):
    dm = FashionDomainsDataModule(root=str(fmnist_root), a="Sandal", b="sneaker", subset=48, batch_size=8)
    assert dm.domains == (5, 7) and dm.domain_names == ("Sandal", "Sneaker") and dm.foreground_threshold == 25
    spec = dm.spec
    assert spec.shapes == {"a": (1, 28, 28), "y_a": (), "b": (1, 28, 28), "y_b": ()}
    assert (spec.source, spec.target, spec.paired, spec.num_classes) == ("a", "b", False, 10)
    dm.setup()
    x, y = dm.load_split("train")
    assert torch.equal(dm._tensors["a"], x[y == 5][:48]) and torch.equal(dm._tensors["b"], x[y == 7][:48])
    loader = dm.train_dataloader()
    pairings = []
    for _ in range(2):
        rows_a, rows_b = [], []
        for batch in loader:
            assert set(batch) == {"a", "y_a", "b", "y_b"} and (batch["y_a"] == 5).all() and (batch["y_b"] == 7).all()
            rows_a.append(to_uint8(batch["a"]))
            rows_b.append(to_uint8(batch["b"]))
        index_a = [int(np.flatnonzero(rows_in(dm._tensors["a"], r[None]))[0]) for r in torch.cat(rows_a)]
        index_b = [int(np.flatnonzero(rows_in(dm._tensors["b"], r[None]))[0]) for r in torch.cat(rows_b)]
        assert sorted(index_a) == sorted(index_b) == list(range(48))  # each image once per epoch
        pairings.append(list(zip(index_a, index_b)))
    assert sum(i == j for i, j in pairings[0]) < 10, "A and B share one permutation"
    assert len(set(pairings[0]) & set(pairings[1])) < 10, "row i of a and b come as a fixed pairing"


def test_fashion_domains_held_out_images_come_from_the_test_split_per_domain(fmnist_root, fashion_test):
    dm = FashionDomainsDataModule(root=str(fmnist_root), a="Pullover", b=4, subset=32, batch_size=8,
                                  in_memory=False)
    held = dm.fixed_batch(20, seed=1)
    x, y = fashion_test
    assert set(held) == {"a", "y_a", "b", "y_b"} and (held["y_a"] == 2).all() and (held["y_b"] == 4).all()
    assert rows_in(to_uint8(held["a"]), x[y == 2]).all() and rows_in(to_uint8(held["b"]), x[y == 4]).all()
    assert len(torch.unique(to_uint8(held["a"]), dim=0)) == 20  # without replacement
    assert torch.equal(held["a"], dm.fixed_batch(20, seed=1)["a"]) and dm.split_size("test") == 1000
    real = dm.real_samples(10, seed=0)
    assert rows_in(to_uint8(real["b"]), dm._tensors["b"]).all() and (real["y_a"] == 2).all()
    batch = next(iter(dm.train_dataloader()))  # in_memory=false: a torch DataLoader, the same batches' keys
    assert (batch["y_a"] == 2).all() and (batch["y_b"] == 4).all() and batch["b"].shape == (8, 1, 28, 28)


# --- aligned pair folders (Pix2Pix) -----------------------------------------------------------------------------
def _write_pairs(folder: Path, n: int, size: int = 16, seed: int = 0, start: int = 0) -> list[np.ndarray]:
    """n RGB pair files A|B with B = 255 - A; returns the A halves."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    halves = []
    for i in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(folder / f"pair{start + i:03d}.png")
        halves.append(a)
    return halves


def _where(crop: torch.Tensor, image: torch.Tensor) -> tuple[int, int, bool] | None:
    """(top, left, flipped) of ``crop`` (C x c x c) in ``image`` (C x H x W), or None."""
    c = crop.shape[-1]
    for top in range(image.shape[-2] - c + 1):
        for left in range(image.shape[-1] - c + 1):
            window = image[:, top : top + c, left : left + c]
            for flipped in (False, True):
                if torch.equal(window.flip(-1) if flipped else window, crop):
                    return top, left, flipped
    return None


@pytest.mark.parametrize("flip", [True, False])
def test_aligned_pairs_get_the_same_random_crop_and_flip_on_both_halves(tmp_path, flip):
    halves = _write_pairs(tmp_path / "train", 6)
    _write_pairs(tmp_path / "test", 2, seed=1)
    dm = AlignedFolderDataModule(str(tmp_path), load_size=16, crop=10, flip=flip, batch_size=3)
    assert dm.spec.shapes == {"a": (3, 10, 10), "b": (3, 10, 10)} and (dm.spec.source, dm.spec.target) == ("a", "b")
    originals = torch.stack([torch.from_numpy(h).permute(2, 0, 1) for h in halves])
    placements, loader = set(), dm.train_dataloader()
    for _ in range(4):  # 4 epochs: each draws its own crops and flips (seeded by the data seed and the epoch)
        for batch in loader:
            assert set(batch) == {"a", "b"} and batch["a"].shape == (3, 3, 10, 10)
            a, b = to_uint8(batch["a"]), to_uint8(batch["b"])
            assert torch.equal(b, 255 - a), "the halves were cropped or flipped apart"
            for row in a:
                found = [_where(row, o) for o in originals]
                assert any(found)
                placements.add(next(p for p in found if p))
    flips = {p[2] for p in placements}
    assert flips == ({False, True} if flip else {False}) and len({p[:2] for p in placements}) > 5


def test_aligned_direction_swaps_the_halves_and_held_out_pairs_are_centre_crops_of_the_test_files(tmp_path):
    _write_pairs(tmp_path / "train", 4)
    test_halves = _write_pairs(tmp_path / "test", 3, seed=1)
    ab = AlignedFolderDataModule(str(tmp_path), load_size=16, crop=12, batch_size=2)
    ba = AlignedFolderDataModule(str(tmp_path), direction="BtoA", load_size=16, crop=12, batch_size=2)
    held_ab, held_ba = ab.fixed_batch(3), ba.fixed_batch(3)
    assert torch.equal(held_ab["a"], held_ba["b"]) and torch.equal(held_ab["b"], held_ba["a"])
    centres = torch.stack([torch.from_numpy(h).permute(2, 0, 1)[:, 2:14, 2:14] for h in test_halves])
    assert rows_in(to_uint8(held_ab["a"]), centres).all() and len(torch.unique(held_ab["a"], dim=0)) == 3
    assert ab.split_size() == 3 and torch.equal(held_ab["a"], ab.fixed_batch(3)["a"])
    train_ab, train_ba = ab.fixed_batch(4, split="train"), ba.fixed_batch(4, split="train")
    assert torch.equal(train_ba["a"], train_ab["b"]) and torch.equal(train_ba["b"], train_ab["a"])


def test_aligned_pairs_are_resized_and_fall_back_to_val_then_to_the_last_files(tmp_path):
    _write_pairs(tmp_path / "val", 2, size=20, seed=1)
    _write_pairs(tmp_path / "train", 4, size=20)
    dm = AlignedFolderDataModule(str(tmp_path), load_size=14, crop=8, channels=1, batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["a"].shape == batch["b"].shape == (2, 1, 8, 8) and dm.split_size() == 2  # from val/
    flat = tmp_path / "flat"
    _write_pairs(flat, 10, size=12)
    dm = AlignedFolderDataModule(str(flat), load_size=12, crop=12, flip=False, val_split=None, val_fraction=0.2,
                                 batch_size=2)
    dm.setup()
    assert len(dm._items) == 8 and dm.split_size() == 2
    with Image.open(flat / "pair009.png") as last:
        left = torch.from_numpy(np.array(last)[:, :12]).permute(2, 0, 1)
    assert rows_in(left[None], to_uint8(dm.fixed_batch(2)["a"])).all()


@pytest.mark.parametrize("make,options,message", [
    (lambda p: Image.new("RGB", (30, 16)).save(p / "odd.png"), {}, r"odd\.png is 30x16: an aligned pair must be "
                                                                   r"twice as wide as high \(A\|B side by side\)"),
    (lambda p: (p / "bad.png").write_bytes(b"not an image"), {}, r"image .*bad\.png cannot be decoded"),
    (lambda p: None, {}, "no images"),
    (lambda p: None, {"direction": "AtoC"}, "data.direction=AtoC must be AtoB or BtoA"),
    (lambda p: None, {"crop": 20}, "data.crop=20 is larger than data.load_size=16"),
])
def test_bad_aligned_folders_and_options_are_one_line(tmp_path, make, options, message):
    folder = tmp_path / "train"
    folder.mkdir()
    make(folder)
    with pytest.raises(UserError, match=message) as err:  # options at once, an empty folder at start-up,
        dm = AlignedFolderDataModule(str(tmp_path), **{"load_size": 16, "crop": 8, "batch_size": 1, **options})
        list(dm.train_dataloader())  # a bad file when it is read
    assert "\n" not in str(err.value)


# --- unaligned domain folders (CycleGAN) ------------------------------------------------------------------------
def _write_domain(folder: Path, values: list[int], mode: str = "L", size: int = 12) -> None:
    """One constant image per value (its identity), in ``mode``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(values):
        Image.new(mode, (size, size), v if mode == "L" else (v, v, v)).save(folder / f"img{i:02d}.png")


def test_unaligned_domains_draw_each_side_on_its_own(tmp_path):
    _write_domain(tmp_path / "trainA", [10, 20, 30, 40, 50, 60])
    _write_domain(tmp_path / "trainB", [200, 210, 220])
    _write_domain(tmp_path / "testA", [70, 80])
    _write_domain(tmp_path / "testB", [230, 240, 250])
    dm = UnalignedFolderDataModule(str(tmp_path), load_size=12, crop=8, batch_size=2)
    spec = dm.spec
    assert spec.shapes == {"a": (1, 8, 8), "b": (1, 8, 8)} and not spec.paired and spec.target == "b"
    torch.manual_seed(0)
    loader, partners = dm.train_dataloader(), {}
    epochs = []
    for _ in range(4):
        seen = []
        for batch in loader:
            assert set(batch) == {"a", "b"} and batch["a"].shape == batch["b"].shape == (2, 1, 8, 8)
            a, b = to_uint8(batch["a"])[:, 0, 0, 0].tolist(), to_uint8(batch["b"])[:, 0, 0, 0].tolist()
            assert set(b) <= {200, 210, 220}
            seen += a
            for i, j in zip(a, b):
                partners.setdefault(i, set()).add(j)
        assert sorted(seen) == [10, 20, 30, 40, 50, 60]  # an epoch: every A once, as many as the larger domain
        epochs.append(seen)
    assert any(len(p) > 1 for p in partners.values()), "each A image always meets the same B"
    torch.manual_seed(0)
    assert [to_uint8(b["a"])[:, 0, 0, 0].tolist() for b in dm.train_dataloader()] == \
        [epochs[0][i : i + 2] for i in range(0, 6, 2)]  # reproducible for a seed
    held = dm.fixed_batch(5, seed=2)
    assert set(to_uint8(held["a"]).unique().tolist()) <= {70, 80} and len(held["a"]) == 5  # 2 images: repeated
    assert set(to_uint8(held["b"]).unique().tolist()) == {230, 240, 250} and dm.split_size() == 2
    assert set(to_uint8(dm.real_samples(4)["a"]).unique().tolist()) <= {10, 20, 30, 40, 50, 60}


def test_unaligned_domains_without_test_folders_hold_out_their_last_files(tmp_path):
    _write_domain(tmp_path / "trainA", list(range(0, 100, 10)))
    _write_domain(tmp_path / "trainB", [200, 210])
    dm = UnalignedFolderDataModule(str(tmp_path), load_size=12, crop=12, batch_size=1, val_fraction=0.2)
    dm.setup()
    assert to_uint8(dm.fixed_batch(2)["a"])[:, 0, 0, 0].sort().values.tolist() == [80, 90]
    assert to_uint8(dm.fixed_batch(1)["b"]).unique().tolist() == [210]
    assert len(dm._items) == 8


def test_unaligned_channels_come_from_the_files_or_convert_both_domains(tmp_path):
    _write_domain(tmp_path / "trainA", [10, 20, 30], mode="L")
    _write_domain(tmp_path / "trainB", [200, 210, 220], mode="RGB")
    with pytest.raises(UserError) as err:
        UnalignedFolderDataModule(str(tmp_path), load_size=12, crop=8).spec
    assert str(err.value) == ("domain A images are grayscale and domain B's are RGB: set data.channels=1 or "
                              "data.channels=3 to convert both")
    for channels in (1, 3):
        dm = UnalignedFolderDataModule(str(tmp_path), load_size=12, crop=8, channels=channels, batch_size=2)
        batch = next(iter(dm.train_dataloader()))
        assert dm.spec.shapes["a"] == (channels, 8, 8) and batch["a"].shape == batch["b"].shape == (2, channels, 8, 8)
    _write_domain(tmp_path / "rgb" / "trainA", [10], mode="RGB")
    _write_domain(tmp_path / "rgb" / "trainB", [200], mode="RGB")
    assert UnalignedFolderDataModule(str(tmp_path / "rgb"), load_size=12, crop=8).spec.shape == (3, 8, 8)


@pytest.mark.parametrize("make,message", [
    (lambda p: _write_domain(p / "trainA", [1]), r"trainB does not exist: data.path must hold trainA/ and trainB/"),
    (lambda p: (_write_domain(p / "trainA", [1]), (p / "trainB").mkdir()), r"no images in .*trainB"),
    (lambda p: None, r"trainA does not exist"),
])
def test_a_missing_or_empty_domain_folder_is_one_line_naming_it(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(UserError, match=message):
        UnalignedFolderDataModule(str(tmp_path), load_size=12, crop=8, channels=1).setup()


# --- configs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,cls", [("fashion_edges", FashionEdgesDataModule),
                                      ("fashion_domains", FashionDomainsDataModule),
                                      ("aligned_folder", AlignedFolderDataModule),
                                      ("unaligned_folder", UnalignedFolderDataModule)])
def test_translation_configs_list_every_argument_and_instantiate(tmp_path, name, cls):
    node = OmegaConf.load(CONF / f"{name}.yaml")
    if "defaults" in node:
        bases = [OmegaConf.load(CONF / f"{d}.yaml") for d in node.pop("defaults") if d != "_self_"]
        node = OmegaConf.merge(*bases, node)
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "seed": 7, "data": node})
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    if "defaults" not in OmegaConf.load(CONF / f"{name}.yaml"):
        assert OmegaConf.is_missing(cfg.data, "path")
        cfg.data.path = str(tmp_path)
    else:
        params |= set(inspect.signature(TorchvisionDataModule.__init__).parameters) - {"self"}
    assert set(cfg.data) - {"_target_"} == params
    dm = instantiate(cfg.data)
    assert isinstance(dm, cls) and dm.seed == 7
