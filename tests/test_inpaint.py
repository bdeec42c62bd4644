"""Inpainting: masks, the data modules, the composited U-Net, the hole metrics against the baselines, inpaint.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from gan_lightning.data.convert import to_uint8
from gan_lightning.data.inpaint import (
    MASK_KINDS,
    FashionInpaintDataModule,
    InpaintFolderDataModule,
    MaskOptions,
    draw_masks,
    masked_input,
    split_input,
)
from gan_lightning.errors import UserError
from gan_lightning.families.inpaint import biharmonic, hole_l1, mean_fill
from gan_lightning.metrics.inpaint import hole_metrics
from gan_lightning.train.build import build_module

from .conftest import run_entry


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread is faster (tests/conftest.py)


# --- masks -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_every_mask_has_a_hole_and_a_generator_fixes_them(kind):
    masks = draw_masks(64, 28, MaskOptions(kind), torch.Generator().manual_seed(0))
    again = draw_masks(64, 28, MaskOptions(kind), torch.Generator().manual_seed(0))
    area = masks.float().mean((1, 2, 3))
    assert masks.shape == (64, 1, 28, 28) and masks.dtype == torch.bool and torch.equal(masks, again)
    assert (area > 0).all() and (area < 0.9).all()
    if kind == "center":
        assert torch.allclose(area, torch.full((64,), 0.25)) and masks[:, :, 7:21, 7:21].all()
    else:  # random holes: all different, a fifth of the image on average
        assert len(torch.unique(masks.flatten(1), dim=0)) == 64 and 0.1 < area.mean() < 0.4


def test_mask_options_out_of_range_are_one_line():
    for options, message in [({"kind": "blob"}, "data.mask=blob: use one of center"),
                             ({"hole": 1.5}, r"data.hole=1.5 must be in \(0, 1\)"),
                             ({"width": (0.3, 0.1)}, r"data.width=\[0.3, 0.1\] must be fractions")]:
        with pytest.raises(UserError, match=message):
            MaskOptions(**options).check()


def test_the_input_holds_the_known_pixels_and_the_mask():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    m = draw_masks(2, 8, MaskOptions("center"), torch.Generator())
    a = masked_input(x, m)
    known, mask = split_input(a)
    assert a.shape == (2, 4, 8, 8) and torch.equal(mask.bool(), m)
    assert torch.equal(known[~m.expand_as(known)], x[~m.expand_as(x)]) and (known[m.expand_as(known)] == 0).all()


# --- data ------------------------------------------------------------------------------------------------------
def test_training_masks_are_fresh_every_batch_and_held_out_ones_fixed(fmnist_root):
    dm = FashionInpaintDataModule(root=str(fmnist_root), subset=256, batch_size=32, mask="free_form")
    assert dm.spec.shapes == {"a": (2, 28, 28), "b": (1, 28, 28), "y": ()} and dm.spec.source == "a"
    loader = dm.train_dataloader()
    masks = [split_input(batch["a"])[1] for batch in loader]
    assert len({m.sum().item() for m in masks}) > 4  # every batch its own holes
    resumed = dm.train_dataloader()
    state = {"epoch": 0, "batch": 3}
    resumed.load_state_dict(state)
    assert torch.equal(split_input(next(iter(resumed))["a"])[1], masks[3])  # a resumed run draws the same holes
    held, again = dm.fixed_batch(16), dm.fixed_batch(16)
    assert torch.equal(held["a"], again["a"]) and torch.equal(held["b"], again["b"])
    assert torch.equal(split_input(held["a"])[0] + split_input(held["a"])[1] * held["b"], held["b"])


def _images(folder: Path, n: int, size: int = 16) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng, out = np.random.default_rng(0), []
    for i in range(n):
        x = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(x).save(folder / f"img{i}.png")
        out.append(x)
    return out


def test_a_folder_takes_the_users_masks_by_name_or_draws_them(tmp_path):
    _images(tmp_path / "img", 5)
    (tmp_path / "masks").mkdir()
    for i in range(5):
        m = np.zeros((16, 16), dtype=np.uint8)
        m[i : i + 4, 2:6] = 255
        Image.fromarray(m).save(tmp_path / "masks" / f"img{i}.png")
    dm = InpaintFolderDataModule(str(tmp_path / "img"), image_size=16, mask_path=str(tmp_path / "masks"),
                                 batch_size=2, num_workers=0, val_fraction=0.2)
    batch = next(iter(dm.train_dataloader()))
    for a in batch["a"]:
        hole = split_input(a[None])[1][0, 0]
        assert hole.sum() == 16 and hole[:, 2:6].sum() == 16  # a user's 4x4 box, read by the image's name
    held = dm.fixed_batch(1)
    assert split_input(held["a"])[1][0, 0, 4:8, 2:6].all()  # img4, the held-out one, with its own mask
    drawn = InpaintFolderDataModule(str(tmp_path / "img"), image_size=16, batch_size=2, num_workers=0)
    assert torch.equal(drawn.fixed_batch(1)["a"], drawn.fixed_batch(1)["a"])
    (tmp_path / "masks" / "img3.png").unlink()
    with pytest.raises(UserError, match=r"1 image\(s\) have no mask of the same name .* \(first: img3\.png\)"):
        InpaintFolderDataModule(str(tmp_path / "img"), mask_path=str(tmp_path / "masks")).setup()


# --- the family ------------------------------------------------------------------------------------------------
def _module(make_cfg, model="inpaint", *overrides):
    cfg = make_cfg(f"model={model}", "data.mask=free_form", *overrides)
    dm = instantiate(cfg.data)
    return build_module(cfg, dm), dm


def test_known_pixels_pass_through_and_only_the_hole_is_learnt(make_cfg):
    module, dm = _module(make_cfg)
    batch = dm.fixed_batch(8)
    out = module.family.complete(batch["a"])
    known, m = split_input(batch["a"])
    assert torch.equal(out * (1 - m), known * (1 - m))
    g = module.family.generator
    loss = hole_l1(out, batch["b"], m)
    per_image = ((out - batch["b"]).abs() * m).flatten(1).sum(1) / m.flatten(1).sum(1)  # each hole's mean
    assert loss.item() == pytest.approx(per_image.mean().item(), rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    l1_only, _ = _module(make_cfg, "inpaint_l1")
    assert [p.name for p in l1_only.family.phases()] == ["G"] and l1_only.family.discriminator is None
    assert set(module.family.baselines()) == {"mean_fill", "biharmonic"}


def test_the_hole_metrics_rank_a_good_fill_over_the_classical_ones_and_ignore_known_pixels(fmnist_root):
    dm = FashionInpaintDataModule(root=str(fmnist_root), subset=64, mask="center")
    batch = dm.fixed_batch(32)
    a, b = batch["a"], batch["b"]
    m = split_input(a)[1]
    perfect = hole_metrics(b, b, m)
    assert perfect["l1_hole"] == 0 and perfect["psnr_hole"] == 100 and perfect["ssim_hole"] == pytest.approx(1)
    mean, smooth = hole_metrics(mean_fill(a), b, m), hole_metrics(biharmonic(a), b, m)
    noisy = hole_metrics((b + 0.1 * torch.randn_like(b)).clamp(-1, 1), b, m)
    for key in ("psnr_hole", "ssim_hole"):
        assert noisy[key] > smooth[key] > mean[key] or noisy[key] > mean[key]
    assert noisy["l1_hole"] < mean["l1_hole"]
    outside = b * m + (-b) * (1 - m)  # the right hole, everything else wrong: PSNR and L1 do not see it
    wrong = hole_metrics(outside, b, m)
    assert (wrong["psnr_hole"], wrong["l1_hole"]) == (100, 0) and wrong["ssim_hole"] < 1  # SSIM's windows do


# --- inpaint.py ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_inpaint_cli_fills_any_size_keeps_known_pixels_and_refuses_bad_input(make_cfg, tmp_path):
    from gan_lightning.train.fit import train

    result = train(make_cfg("model=inpaint", "max_iterations=2", "metrics=none",
                            "callbacks.samples.every_n_iterations=0"))
    ckpt = result["last_checkpoint"]
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((40, 52), 200, dtype=np.uint8)).save(photos / "wide.png")
    masks = tmp_path / "masks"
    masks.mkdir()
    hole = np.zeros((40, 52), dtype=np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(masks / "wide.png")
    r = run_entry("inpaint.py", f"ckpt={ckpt}", f"input={photos}", f"mask={masks}", f"out={tmp_path / 'out'}")
    assert r.returncode == 0, r.stderr
    filled = np.array(Image.open(tmp_path / "out" / "wide.png"))
    assert filled.shape == (40, 52) and (filled[hole == 0] == 200).all()  # known pixels unchanged
    r = run_entry("inpaint.py", f"ckpt={ckpt}", f"input={photos}", "mask=center", f"out={tmp_path / 'drawn'}")
    assert r.returncode == 0 and (tmp_path / "drawn" / "wide.png").is_file()

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(masks / "small.png")
    Image.fromarray(np.zeros((40, 52), dtype=np.uint8)).save(tmp_path / "empty.png")
    dcgan = train(make_cfg("model=dcgan", "max_iterations=1", "metrics=none", output_dir=tmp_path / "dcgan"))
    for args, message in [
        ([f"mask={masks / 'small.png'}"], "mask .*small.png is 8x8 but image .*wide.png is 52x40"),
        ([f"mask={tmp_path / 'empty.png'}"], "has no hole"),
        ([f"mask={tmp_path / 'nowhere'}"], "no such file or folder"),
        ([f"ckpt={dcgan['last_checkpoint']}"], "holds a GAN, not an inpainting model"),
        ([f"out={tmp_path / 'out'}"], "exists"),
    ]:
        options = {"ckpt": ckpt, "input": str(photos), "out": str(tmp_path / "refused"),
                   **dict(a.split("=", 1) for a in args)}
        r = run_entry("inpaint.py", *(f"{k}={v}" for k, v in options.items()))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert __import__("re").search(message, r.stderr), r.stderr
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())


@pytest.mark.slow
def test_the_gan_learns_to_fill_holes_better_than_the_mean(make_cfg):
    from gan_lightning.train.fit import train
    import json

    result = train(make_cfg("model=inpaint", "max_iterations=60", "data.batch_size=32", "metrics.n_samples=128",
                            "metrics.n_reference=256", "metrics.every_n_iterations=60",
                            "callbacks.samples.every_n_iterations=0"))
    lines = (Path(result["output_dir"]) / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["metrics/l1_hole"] < last["metrics/mean_fill_l1_hole"]
    assert last["metrics/psnr_hole"] > last["metrics/mean_fill_psnr_hole"]
