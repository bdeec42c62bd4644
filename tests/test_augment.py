"""Differentiable augmentation of the discriminator's inputs (``augment=diffaugment`` / ``ada``): each augmentation
is differentiable and does what it says, ADA's probability follows its heuristic by the documented step and is
state, training through the real config augments both players and logs ADA, and misuse is one line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.augment import POLICIES, Augment, brightness, contrast, cutout, saturation, translation
from gan_lightning.core.family import StepContext
from gan_lightning.data.spec import DataSpec
from gan_lightning.errors import UserError
from gan_lightning.train.build import build_family, build_module
from gan_lightning.train.checkpoints import load_module, read_checkpoint
from gan_lightning.train.fit import train

from .conftest import compose_cfg, run_cli
from .test_config import assert_one_line_error
from .test_training import changed, initial_state, read_metrics

QUIET = ("callbacks.samples.every_n_iterations=0", "metrics.every_n_iterations=0", "~callbacks.metrics")


def _images(c: int = 3, n: int = 4, size: int = 16) -> torch.Tensor:
    return (torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_(True)


@pytest.mark.parametrize("fn", [brightness, saturation, contrast, translation, cutout])
def test_each_augmentation_changes_the_image_and_passes_gradients_to_it(fn):
    torch.manual_seed(1)
    x = _images()
    y = fn(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert grad.abs().sum() > 0


def test_translation_shifts_the_pixels_and_pads_with_the_background():
    torch.manual_seed(0)
    x = torch.arange(1.0, 1 + 16 * 16).view(1, 1, 16, 16).repeat(32, 1, 1, 1) / 1000  # distinct values, not -1
    y = translation(x)
    for image in y[:, 0]:
        inside = image != -1
        rows, cols = inside.any(1).nonzero().flatten(), inside.any(0).nonzero().flatten()
        block = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # the copied part: a window of the input
        h, w = block.shape
        assert h >= 14 and w >= 14 and bool(inside.sum() == h * w)  # shifted by at most 2 = 16 / 8 each way
        top, left = divmod(int(round(float(block[0, 0]) * 1000)) - 1, 16)
        assert torch.equal(block, x[0, 0, top : top + h, left : left + w])
    assert (y == -1).any()  # some image was shifted


def test_cutout_fills_a_half_size_square_with_zero():
    torch.manual_seed(0)
    y = cutout(torch.ones(16, 1, 16, 16))
    zeros = (y == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # 8 x 8 when inside the image, clipped by the edges otherwise


def test_diffaugment_applies_the_whole_policy_with_fresh_randomness_and_rejects_unknown_names():
    aug = Augment("diffaugment", "color,translation,cutout")
    assert aug.functions == [*POLICIES["color"], translation, cutout] and not list(aug.buffers())
    x = _images()
    assert not torch.equal(aug(x), aug(x))
    assert list(Augment("diffaugment", ["cutout"]).functions) == [cutout]
    with pytest.raises(ValueError, match="unknown augmentation 'flip'; choose from color, translation, cutout"):
        Augment("diffaugment", "color,flip")
    with pytest.raises(ValueError, match="augment.kind must be one of"):
        Augment("diff")


def test_ada_at_p_zero_is_the_identity_and_at_p_one_augments_every_image():
    x = _images()
    assert torch.equal(Augment("ada")(x), x)
    y = Augment("ada", "translation", p=1.0)(x.detach().repeat(8, 1, 1, 1))
    assert (y == -1).flatten(1).any(1).float().mean() > 0.5  # (a zero shift draws no padding)


def test_ada_p_rises_when_d_is_overconfident_on_reals_and_falls_otherwise_by_the_documented_step():
    aug = Augment("ada", target=0.6, interval=2, speed=1000, p=0.5)
    assert {"p", "r_sum", "r_count"} <= set(aug.state_dict())
    confident, unsure = torch.ones(10), torch.tensor([1.0] * 6 + [-1.0] * 4)  # r_t = 1 > 0.6; r_t = 0.2 < 0.6
    for iteration in range(2):  # iterations 0, 1: observed, no adjustment before iteration 2
        aug.observe(confident, iteration, first_batch=True)
    assert float(aug.p) == 0.5 and aug.logs()["r_t"] == 1.0 and float(aug.r_count) == 20
    aug.observe(unsure, 2, first_batch=True)  # due: r_t = 1 > 0.6, p += 20 images / 1000; then this step's
    assert float(aug.p) == pytest.approx(0.52) and float(aug.r_count) == 10
    assert float(aug.logs()["r_t"]) == pytest.approx(0.2)
    aug.observe(unsure, 3, first_batch=True)  # iteration 3: not due
    aug.observe(unsure, 4, first_batch=False)  # not the iteration's first batch: not yet
    assert float(aug.p) == pytest.approx(0.52)
    aug.observe(unsure, 4, first_batch=True)  # due: r_t = 0.2 < 0.6, p -= 30 images / 1000
    assert float(aug.p) == pytest.approx(0.49) and float(aug.r_count) == 10
    aug.load_state_dict({"p": torch.tensor(0.99), "r_sum": torch.tensor(10.0), "r_count": torch.tensor(10.0)})
    aug.observe(confident, 4, first_batch=True)
    assert float(aug.p) == 1.0  # clamped
    aug.load_state_dict({"p": torch.tensor(0.01), "r_sum": torch.tensor(-5.0), "r_count": torch.tensor(50.0)})
    aug.observe(confident, 6, first_batch=True)
    assert float(aug.p) == 0.0


def test_ada_ranks_averaging_their_sums_keep_the_mean_over_all_images():
    """What ``GANModule._average_buffers_across_ranks`` does to two ranks' sums leaves r_t the mean of all."""
    a, b = Augment("ada"), Augment("ada")
    a.observe(torch.ones(8), 1, True)
    b.observe(-torch.ones(24), 1, True)
    for name in ("r_sum", "r_count"):
        mean = (getattr(a, name) + getattr(b, name)) / 2
        getattr(a, name).copy_(mean)
    assert float(a.logs()["r_t"]) == pytest.approx((8 - 24) / 32) and float(a.r_count) * 2 == 32


@pytest.mark.parametrize("kind,loss", [("diffaugment", "non_saturating"), ("ada", "non_saturating"),
                                       ("diffaugment", "wgan_gp")])  # (the gradient penalty of D(augment(x)))
def test_dcgan_trains_with_augmentation_and_logs_ada(make_cfg, kind, loss):
    ada = ("augment.interval=2", "augment.speed=64") if kind == "ada" else ()
    cfg = make_cfg("model=dcgan", f"augment={kind}", f"loss={loss}", "max_iterations=4", "data.batch_size=8", *ada,
                   *QUIET)
    before = initial_state(cfg)
    result = train(cfg)
    assert result["iteration"] == 4
    metrics = read_metrics(Path(result["output_dir"]))
    assert all(math.isfinite(v) for v in metrics["train/loss_d"] + metrics["train/loss_g"])
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    for prefix in ("family.generator.", "family.discriminator."):
        assert changed(before, after, prefix), prefix
    module = load_module(result["last_checkpoint"])
    assert module.family.augment.kind == kind
    if kind == "ada":
        assert len(metrics["train/p"]) == 4 and all(-1 <= r <= 1 for r in metrics["train/r_t"])
        # 2 iterations of 8 reals at speed 64: p moves by 1/4 (up or down, clamped) once, at iteration 2
        assert metrics["train/p"][:2] == [0.0, 0.0] and metrics["train/p"][2] in (0.0, 0.25)
        assert float(after["family.augment.p"]) == pytest.approx(metrics["train/p"][-1])
        assert "family.augment.r_sum" in after and "family.augment.r_count" in after
    else:
        assert "train/p" not in metrics and not any(k.startswith("family.augment.") for k in after)


@pytest.mark.parametrize("model", ["cgan", "acgan", "infogan", "stylegan2"])
def test_every_image_family_scores_augmented_images_in_both_players_steps(make_cfg, model):
    cfg = make_cfg(f"model={model}", "augment=ada", "augment.p=1.0", "data.batch_size=4")
    family, seen = build_module(cfg, instantiate(cfg.data)).family, []
    family.augment.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    batch = {"x": torch.rand(4, 1, 28, 28) * 2 - 1, "y": torch.arange(4)}
    family.discriminator_step(batch, StepContext(iteration=0))
    assert len(seen) == 2 and float(family.augment.r_count) == 4  # reals and fakes; ADA observed the reals
    family.generator_step(batch, StepContext(iteration=0))
    assert len(seen) == 3  # the generator's fakes
    if model == "stylegan2":  # R1 of D(augment(x)): its gradient w.r.t. x, through the augmentation
        assert torch.isfinite(family.r1_step(batch, StepContext(iteration=0)).loss) and len(seen) == 4


def test_bad_augmentation_names_and_augment_on_points_are_one_line(make_cfg, tmp_path):
    with pytest.raises(UserError, match=r"^augment: augment\.policy: unknown augmentation 'flip'"):
        build_family({"_target_": "gan_lightning.families.gan.GAN",
                      "generator": {"_target_": "gan_lightning.networks.fc.Generator", "_partial_": True},
                      "discriminator": {"_target_": "gan_lightning.networks.fc.Discriminator", "_partial_": True},
                      "augment": {"kind": "ada", "policy": ["color", "flip"]}},
                     {"_target_": "gan_lightning.losses.NonSaturating"}, DataSpec(shapes={"x": (1, 8, 8)}))
    cfg = compose_cfg(["model=fcgan", "data=gaussian_mixture", "augment=diffaugment"], tmp_path / "a")
    with pytest.raises(UserError, match="augment=diffaugment augments images; the data are 1-D points"):
        build_module(cfg, instantiate(cfg.data))
    proc = run_cli("train.py", "model=fcgan", "data=gaussian_mixture", "augment=ada", "logger=none", "trainer=cpu",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(proc, "augment=ada augments images")
