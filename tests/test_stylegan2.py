"""StyleGAN2: the network pieces (modulated convolution, FIR resampling, equalised learning rate, mapping, mixing,
truncation), the family's schedule (lazy R1 and path length with the optimizer correction), training on
Fashion-MNIST through the real config (fp32, bf16-mixed, two-process DDP), and one-line errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from gan_lightning.core.module import UNBOUNDED_STEPS
from gan_lightning.data.spec import DataSpec
from gan_lightning.errors import UserError
from gan_lightning.networks.stylegan2 import (EqualConv2d, EqualLinear, Generator, downsample2d, fir_kernel,
                                              modulated_conv2d, upsample2d)
from gan_lightning.train.build import build_family, build_module
from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.train.fit import train

from .helpers.ranks import RankState
from .test_training import changed, initial_state, read_metrics

QUIET = ("callbacks.samples.every_n_iterations=0", "metrics.every_n_iterations=0", "~callbacks.metrics")


def _module(make_cfg, *overrides: str):
    """(module, datamodule) of the real config with the tiny test widths (TINY), batch 8."""
    cfg = make_cfg("model=stylegan2", "data.batch_size=8", *overrides)
    pl.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    return build_module(cfg, dm), dm


def _fit(module, dm):
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, max_steps=UNBOUNDED_STEPS, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    return trainer


# --- network pieces ------------------------------------------------------------------------------------------------
def test_modulated_convolution_with_demodulation_keeps_unit_variance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, 24, 24, generator=gen)
    weight = torch.randn(24, 32, 3, 3, generator=gen)
    styles = torch.randn(16, 32, generator=gen).exp()  # very different scales per sample and channel
    out = modulated_conv2d(x, weight, styles)[..., 1:-1, 1:-1]  # (away from the zero padding)
    per_map = out.var(dim=(2, 3))  # (sample, output channel)
    assert per_map.mean().item() == pytest.approx(1.0, abs=0.03)
    assert per_map.min() > 0.7 and per_map.max() < 1.3
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[..., 1:-1, 1:-1].var(dim=(2, 3))
    assert raw.mean() > 10, "without demodulation the scale follows the styles and weights"


def test_fir_resampling_keeps_a_constant_image_and_halves_or_doubles_its_size():
    k = fir_kernel()
    assert k.sum().item() == pytest.approx(1.0) and torch.equal(k, k.flip(0)) and torch.equal(k, k.t())
    x = torch.full((2, 3, 8, 8), 0.7)
    up, down = upsample2d(x, k), downsample2d(x, k)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # constant away from the border (zero padding there, as in the references)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full((2, 3, 12, 12), 0.7))
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full((2, 3, 2, 2), 0.7))
    # no shift: a ramp x_i = i comes back sampled at the new pixels' centres (i -/+ 1/4 up, 2j + 1/2 down)
    ramp = torch.arange(8.0).expand(1, 1, 8, 8)
    assert torch.allclose(upsample2d(ramp, k)[0, 0, 4, 2:-2], torch.arange(2, 14) / 2 - 0.25)
    assert torch.allclose(downsample2d(ramp, k)[0, 0, 2, 1:-1], torch.tensor([2.5, 4.5]))


def test_equalised_learning_rate_scales_weights_at_run_time():
    torch.manual_seed(0)
    layer = EqualLinear(64, 32)
    x = torch.randn(5, 64)
    assert torch.allclose(layer(x), F.linear(x, layer.weight / 8, layer.bias))
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.1)  # stored N(0, 1)
    conv = EqualConv2d(16, 32, 3, activation=False)
    image = torch.randn(8, 16, 12, 12)
    assert torch.allclose(conv(image), F.conv2d(image, conv.weight / 12, conv.bias, padding=1), atol=1e-6)
    assert conv(image)[..., 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.1)  # unit in, unit out


def test_the_mapping_learning_rate_multiplier_scales_the_raw_parameters_gradient():
    torch.manual_seed(0)
    slow, plain = EqualLinear(16, 16, lr_mul=0.01), EqualLinear(16, 16)
    assert slow.weight.std().item() == pytest.approx(100, rel=0.15)  # stored N(0, 1) / lr_mul
    with torch.no_grad():  # the same effective layer
        plain.weight.copy_(slow.weight * 0.01)
        plain.bias.copy_(slow.bias * 0.01)
    x = torch.randn(4, 16)
    assert torch.allclose(slow(x), plain(x), atol=1e-6)
    slow(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert torch.allclose(slow.weight.grad, 0.01 * plain.weight.grad, rtol=1e-4, atol=1e-8)
    g = Generator(8, 8, 1, w_dim=8, mapping_layers=3, channel_base=32, channel_max=4)
    assert [layer.lr_mul for layer in g.mapping.net] == [0.01] * 3 and g.num_ws == 4


def test_widths_follow_the_base_max_rule_or_an_explicit_mapping():
    from gan_lightning.networks.stylegan2 import channel_widths

    assert channel_widths([4, 8, 16, 32], 512, 64) == {4: 64, 8: 64, 16: 32, 32: 16}  # the CPU preset
    assert channel_widths([4, 8, 16, 32], 512, 64, {"32": 8}) == {4: 64, 8: 64, 16: 32, 32: 8}
    with pytest.raises(ValueError, match="channel widths must be positive integers"):
        channel_widths([4, 8], 4, 64)  # 4 // 8 = 0 at 8 px
    g = Generator(8, 16, 3, w_dim=8, mapping_layers=1, channels={4: 6, 8: 5, 16: 4})
    assert [b.conv1.weight.shape[0] for b in g.synthesis.blocks] == [6, 5, 4] and g(torch.randn(2, 8)).shape == (
        2, 3, 16, 16)


# --- the family ----------------------------------------------------------------------------------------------------
def test_the_generator_makes_32_px_images_that_generate_crops_to_28(make_cfg):
    module, _ = _module(make_cfg)
    family = module.family
    assert family.resolution == 32 and family.generator.num_ws == 8
    inputs = family.sample_inputs(4, generator=torch.Generator().manual_seed(0))
    family.generator.eval()
    with torch.no_grad():
        full = family.generator(inputs["z"])
    assert full.shape == (4, 1, 32, 32)
    samples = module.generate(inputs, use_ema=False)
    assert samples.shape == (4, 1, 28, 28) and torch.equal(samples, full[..., 2:30, 2:30])
    assert family.discriminator(torch.zeros(4, 1, 28, 28)).shape == (4,)  # reals padded with -1 to 32
    padded = family.discriminator.pad(torch.zeros(1, 1, 28, 28))
    assert padded.shape == (1, 1, 32, 32) and padded[..., 0, :].eq(-1).all() and padded[..., 2:30, 2:30].eq(0).all()


def test_style_mixing_changes_the_output_for_the_same_z(make_cfg):
    module, _ = _module(make_cfg, "model.mixing=1.0")
    family = module.family
    g = family.generator.eval()
    z = torch.randn(3, 16)
    options = family.mixing_options(z)
    assert set(options) == {"mix_z", "cutoff"} and 1 <= options["cutoff"] < g.num_ws
    with torch.no_grad():
        plain, mixed = g.styles(z), g.styles(z, **options)
        assert torch.equal(mixed[:, : options["cutoff"]], plain[:, : options["cutoff"]])
        assert not torch.allclose(mixed[:, options["cutoff"]:], plain[:, options["cutoff"]:])
        assert not torch.allclose(g(z, **options), g(z))
    off, _ = _module(make_cfg, "model.mixing=0")
    assert off.family.mixing_options(z) == {}


def test_truncation_psi_0_gives_the_mean_image_and_psi_outside_0_1_is_refused(make_cfg):
    module, _ = _module(make_cfg)
    family = module.family
    mapping = family.generator.mapping.train()
    before = mapping.w_avg.clone()
    mapping(torch.randn(8, 16))
    assert not torch.equal(mapping.w_avg, before), "a training forward tracks w_avg"
    moved = mapping.w_avg.clone()
    mapping.eval()(torch.randn(8, 16))
    assert torch.equal(mapping.w_avg, moved), "an eval forward does not"
    module.generator_ema.load_state_dict(family.generator.state_dict())
    gen = torch.Generator().manual_seed(1)
    inputs = family.sample_inputs(5, generator=gen, psi=0.0)
    samples = module.generate(inputs)
    assert all(torch.equal(samples[0], s) for s in samples[1:]), "psi=0: every z gives the mean image"
    untruncated = module.generate(family.sample_inputs(5, generator=gen))
    assert not torch.equal(untruncated[0], untruncated[1])
    half = family.sample_inputs(2, generator=torch.Generator().manual_seed(2), psi=0.5)
    assert torch.equal(half["psi"], torch.full((2,), 0.5))
    assert "psi" not in family.sample_inputs(2)  # psi=1: no truncation, the inputs of every noise family
    for psi in (-0.1, 1.5, "a"):
        with pytest.raises(ValueError, match="psi"):
            family.sample_inputs(2, psi=psi)
    with pytest.raises(ValueError, match="psi"):
        family.generate({"z": torch.randn(2, 16), "psi": torch.tensor([0.5, 2.0])})


def test_lazy_r1_runs_every_16th_discriminator_step_with_the_optimizer_correction(make_cfg):
    module, dm = _module(make_cfg, "model.r1_interval=16", "model.pl_interval=4", "max_iterations=17")
    ran: list[tuple[int, str]] = []
    original = module._optimize

    def spy(phase, batch, ctx):
        ran.append((ctx.iteration, phase.name))
        return original(phase, batch, ctx)

    module._optimize = spy
    pl_mean_before = module.family.pl_mean.clone()
    trainer = _fit(module, dm)
    assert [i for i, p in ran if p == "D"] == list(range(17))
    assert [i for i, p in ran if p == "Dreg"] == [0, 16]  # every 16th discriminator step, from the first
    assert [i for i, p in ran if p == "Greg"] == [0, 4, 8, 12, 16]
    assert [p.name for p in module.phases] == ["D", "Dreg", "G", "Greg"]
    opt_g, opt_d = trainer.optimizers
    assert opt_d.param_groups[0]["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert opt_d.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.0025 * 4 / 5)
    assert opt_g.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    # path length: its running mean moved and is checkpointed with the family
    assert "family.pl_mean" in module.state_dict()
    assert module.family.pl_mean.item() > 0 and not torch.equal(module.family.pl_mean, pl_mean_before)


def test_without_regularisers_there_are_no_lazy_phases_and_no_correction(make_cfg):
    module, _ = _module(make_cfg, "model.r1_gamma=0", "model.pl_weight=0")
    assert [p.name for p in module.phases] == ["D", "G"]
    assert module.lazy_ratio("generator") == module.lazy_ratio("discriminator") == 1.0


@pytest.mark.parametrize("conditional", [False, True])
def test_a_few_iterations_on_fashion_mnist_change_both_players_with_finite_losses(make_cfg, conditional):
    cfg = make_cfg("model=stylegan2", f"model.conditional={str(conditional).lower()}", "max_iterations=3",
                   "data.batch_size=8", "model.r1_interval=2", *QUIET)
    before = initial_state(cfg)
    result = train(cfg)
    assert result["iteration"] == 3
    metrics = read_metrics(Path(result["output_dir"]))
    for key in ("train/loss_d", "train/loss_g", "train/r1", "train/pl", "train/pl_mean"):
        assert metrics[key] and all(math.isfinite(v) for v in metrics[key]), key
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    for prefix in ("family.generator.", "family.discriminator.", "generator_ema."):
        assert changed(before, after, prefix), prefix
    if conditional:
        assert "family.generator.mapping.embed.weight" in after and "family.discriminator.mapping.embed.weight" in after


def test_a_conditional_model_samples_labels_and_lays_out_one_row_per_class(make_cfg):
    module, _ = _module(make_cfg, "model.conditional=true")
    family = module.family
    assert family.class_conditional and family.num_classes == 10
    inputs = family.sample_inputs(4, labels=3)
    assert inputs["y"].tolist() == [3, 3, 3, 3] and module.generate(inputs).shape == (4, 1, 28, 28)
    grid = family.grid_inputs(64, nrow=2)
    assert grid.inputs["y"].tolist() == [k for k in range(10) for _ in range(2)] and grid.nrow == 2
    unconditional, _ = _module(make_cfg)
    assert not unconditional.family.class_conditional
    with pytest.raises(ValueError, match="not class-conditional"):
        unconditional.family.sample_inputs(2, labels=1)


@pytest.mark.slow
def test_bf16_mixed_trains_stylegan2(make_cfg):
    cfg = make_cfg("model=stylegan2", "trainer.precision=bf16-mixed", "max_iterations=3", "data.batch_size=8",
                   "model.r1_interval=2", *QUIET)
    before = initial_state(cfg)
    result = train(cfg)
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.") and changed(before, after, "family.discriminator.")
    assert all(v.dtype == torch.float32 for v in after.values() if v.is_floating_point())
    metrics = read_metrics(Path(result["output_dir"]))
    assert all(math.isfinite(v) for key in ("train/loss_d", "train/loss_g", "train/r1") for v in metrics[key])


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_identical_through_r1_and_path_length(make_cfg, tmp_path):
    cfg = make_cfg("model=stylegan2", "trainer=ddp_cpu", "max_iterations=3", "data.batch_size=8",
                   "model.r1_interval=2", "model.pl_interval=2", *QUIET)
    result = train(cfg, callbacks=[RankState(str(tmp_path))])
    assert result["iteration"] == 3
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["family.pl_mean"] > 0
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), f"ranks differ in {key}"


# --- one-line errors -------------------------------------------------------------------------------------------------
def _build(make_cfg, *overrides: str, shape=(1, 28, 28), num_classes: int | None = 10):
    from omegaconf import OmegaConf

    cfg = make_cfg("model=stylegan2", *overrides)
    shapes = {"x": shape, **({"y": ()} if num_classes else {})}
    return build_family(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss),
                        DataSpec(shapes, num_classes=num_classes))


@pytest.mark.parametrize("overrides,shape,message", [
    (["model.resolution=48"], (1, 28, 28),
     "model: resolution must be a power of two >= 8 and >= the image size (28 px), or null for 32; got 48"),
    (["model.resolution=16"], (1, 28, 28),
     "model: resolution must be a power of two >= 8 and >= the image size (28 px), or null for 32; got 16"),
    ([], (1, 28, 20), "model: StyleGAN2 needs square images; the data is 28x20 px (data.image_size=N resizes it)"),
    ([], (2,), "model: StyleGAN2 needs images (C, H, W); the data has shape (2,): use model=fcgan for other data"),
    (["model.generator.mapping_layers=0"], (1, 28, 28),
     "model: mapping_layers must be an integer >= 1 (the paper: 8; the small-image preset: 2); got 0"),
    (["model.mixing=1.5"], (1, 28, 28), "model: mixing must be a probability in [0, 1]; got 1.5"),
])
def test_bad_resolutions_and_options_are_one_line(make_cfg, overrides, shape, message):
    with pytest.raises(UserError) as err:
        _build(make_cfg, *overrides, shape=shape)
    assert str(err.value) == message


def test_small_images_pad_to_8_px_and_a_conditional_model_needs_labels(make_cfg):
    assert _build(make_cfg, shape=(3, 5, 5)).resolution == 8
    with pytest.raises(UserError, match="stylegan2 with conditional=true is class-conditional but this data has no"):
        _build(make_cfg, "model.conditional=true", num_classes=None)


# --- generate.py ---------------------------------------------------------------------------------------------------
def test_generate_truncates_with_psi_and_refuses_it_for_other_models_or_out_of_range(make_cfg, tmp_path):
    import numpy as np

    from gan_lightning.sampling import truncation_options

    from .conftest import run_entry

    cfg = make_cfg("model=stylegan2", "max_iterations=2", "data.batch_size=8", *QUIET)
    ckpt = train(cfg)["last_checkpoint"]
    r = run_entry("generate.py", f"ckpt={ckpt}", "n=4", f"out={tmp_path}/mean.npz", "psi=0")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "truncated to psi=0.0" in r.stdout
    images = np.load(tmp_path / "mean.npz")["images"]
    assert images.shape == (4, 1, 28, 28) and all((image == images[0]).all() for image in images)
    r = run_entry("generate.py", f"ckpt={ckpt}", "n=4", f"out={tmp_path}/bad.npz", "psi=1.5")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: psi must be a number in [0, 1] (1: no truncation, 0: the mean image); got 1.5")
    assert not (tmp_path / "bad.npz").exists()
    dcgan_cfg = make_cfg("model=dcgan")
    dcgan = build_module(dcgan_cfg, instantiate(dcgan_cfg.data)).family
    assert truncation_options(dcgan, 1.0) == {}
    with pytest.raises(UserError, match=r"psi=0.5: this checkpoint's model \(GAN\) has no truncation trick"):
        truncation_options(dcgan, 0.5)


# --- W space: interpolation, mixing, ppl_domain, figures ------------------------------------------------------------
def test_generate_interpolates_in_w_and_mixes_styles_at_the_cutoff(make_cfg):
    module, _ = _module(make_cfg)
    family = module.family
    start = family.sample_inputs(3, generator=torch.Generator().manual_seed(0))
    end = family.noise(3, generator=torch.Generator().manual_seed(1))
    at = {t: module.generate({**start, "z_end": end, "t": torch.full((3,), t)}) for t in (0.0, 0.5, 1.0)}
    assert torch.allclose(at[0.0], module.generate(start), atol=1e-6)
    assert torch.allclose(at[1.0], module.generate({"z": end}), atol=1e-5)
    assert not torch.allclose(at[0.5], at[0.0], atol=1e-3) and not torch.allclose(at[0.5], at[1.0], atol=1e-3)
    # style mixing: the styles from the cutoff on are mix_z's; mixing z with itself changes nothing
    num_ws = family.generator.num_ws
    same = module.generate({**start, "mix_z": start["z"], "cutoff": torch.full((3,), 2)})
    assert torch.allclose(same, module.generate(start), atol=1e-6)
    mixed = {k: module.generate({**start, "mix_z": end, "cutoff": torch.full((3,), k)}) for k in (1, num_ws - 1)}
    assert not torch.allclose(mixed[1], module.generate(start), atol=1e-3)
    ws = family.generator.mapping(start["z"])
    other = family.generator.mapping(end)
    expected = torch.cat([ws[:, :1], other[:, 1:]], dim=1)
    with torch.no_grad():
        family.generator.eval()
        assert torch.allclose(mixed[1], family.crop(family.generator.synthesis(expected)), atol=1e-6)


def test_the_path_length_filter_drops_the_lowest_and_highest_percent():
    from gan_lightning.metrics.path_length import filtered_mean

    # 1000 distances: 1..990 and five wild outliers at each end
    values = torch.cat([torch.arange(1.0, 991.0), torch.full((5,), -1e6), torch.full((5,), 1e7)])
    # bounds: the 10th smallest (5) and the 11th largest (986), both kept: the mean of 5..986
    assert filtered_mean(values) == pytest.approx((5 + 986) / 2)
    assert values.mean().item() > 4e4


def test_float_preprocessing_matches_the_uint8_path_on_whole_grey_levels():
    from gan_lightning.data.convert import to_float
    from gan_lightning.metrics.domain import preprocess, preprocess_float

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(preprocess_float(to_float(images)), preprocess(images), atol=1e-5)


def test_ppl_domain_is_larger_when_a_step_in_w_moves_the_images_more(make_cfg):
    from gan_lightning.metrics.registry import ScoreContext, family_scores
    from gan_lightning.metrics.spaces import resolve_spaces

    module, dm = _module(make_cfg)
    spaces = resolve_spaces("domain", "fashion_mnist", (1, 28, 28), 10)
    ctx = ScoreContext(module, dm, None, n_samples=200, spaces=spaces, use_ema=False)
    smooth = family_scores(ctx)["ppl_domain"]
    assert math.isfinite(smooth) and smooth > 0
    assert family_scores(ctx)["ppl_domain"] == smooth, "the same pairs for the same seed"
    last = module.family.generator.mapping.net[-1]
    with torch.no_grad():  # w scaled by 4 (leaky ReLU is positively homogeneous): each step in W is 4x longer
        last.weight.mul_(4)
        last.bias.mul_(4)
    assert family_scores(ctx)["ppl_domain"] > 1.5 * smooth  # (demodulation takes out part of the styles' scale)
    with torch.no_grad():  # w no longer depends on z: every path has length 0
        last.weight.zero_()
    assert family_scores(ctx)["ppl_domain"] == 0
    dcgan_cfg = make_cfg("model=dcgan")
    dcgan = build_module(dcgan_cfg, instantiate(dcgan_cfg.data))
    assert "ppl_domain" not in family_scores(ScoreContext(dcgan, dm, None, n_samples=20, spaces=spaces))


def test_figures_lay_out_the_truncation_sweep_style_mixing_and_interpolation_strips(make_cfg):
    from gan_lightning.figures import interpolation, slerp, style_mixing, truncation_sweep

    module, _ = _module(make_cfg)
    family = module.family

    def draw(inputs):
        return module.generate(inputs)

    images, ncol = truncation_sweep(family, draw, 3, torch.Generator().manual_seed(0), psis=(1.0, 0.5, 0.0))
    assert ncol == 3 and images.shape == (9, 1, 28, 28)
    first = draw(family.sample_inputs(3, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(images[0::3], first, atol=1e-6), "the first column: the untruncated samples"
    assert torch.allclose(images[2], images[5], atol=1e-6) and torch.allclose(images[2], images[8], atol=1e-6)
    assert not torch.allclose(images[0], images[3], atol=1e-3)

    images, ncol = style_mixing(family, draw, 2, 3, torch.Generator().manual_seed(0), cutoff=2)
    assert ncol == 4 and images.shape == (12, 1, 28, 28)
    assert (images[0] == -1).all(), "a blank corner"
    gen = torch.Generator().manual_seed(0)
    top, left = family.sample_inputs(3, generator=gen), family.sample_inputs(2, generator=gen)
    assert torch.allclose(images[1:4], draw(top), atol=1e-6) and torch.allclose(images[4], draw(left)[0], atol=1e-6)
    with pytest.raises(UserError, match=r"cutoff must be an integer in \[1, 7\]"):
        style_mixing(family, draw, 2, 3, torch.Generator(), cutoff=8)

    images, ncol = interpolation(family, draw, 2, 5, torch.Generator().manual_seed(0))
    assert ncol == 5 and images.shape == (10, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)
    start, end = family.sample_inputs(2, generator=gen), family.noise(2, generator=gen)
    assert torch.allclose(images[0::5], draw(start), atol=1e-6)
    assert torch.allclose(images[4::5], draw({"z": end}), atol=1e-5)
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=1), (a.norm(dim=1) + b.norm(dim=1)) / 2, atol=1e-4)


@pytest.mark.slow
def test_generate_py_draws_figures_and_refuses_bad_ones_in_one_line(make_cfg, tmp_path):
    from .conftest import run_entry

    cfg = make_cfg("model=stylegan2", "max_iterations=2", "data.batch_size=8", *QUIET)
    ckpt = train(cfg)["last_checkpoint"]
    r = run_entry("generate.py", f"ckpt={ckpt}", "figure=mixing", "rows=2", "cols=3", f"out={tmp_path}/mix.png")
    assert r.returncode == 0, r.stderr[-2000:]
    from torchvision.io import read_image

    assert read_image(str(tmp_path / "mix.png")).shape == (3, 3 * 30 + 2, 4 * 30 + 2)  # 28 px + 2 px padding
    dcgan = train(make_cfg("model=dcgan", "max_iterations=1", *QUIET, output_dir=tmp_path / "dcgan"))
    for args, message in [
        ([f"ckpt={dcgan['last_checkpoint']}", "figure=mixing"],
         "error: figure=mixing needs a model with styles (model=stylegan2); this checkpoint's is GAN"),
        ([f"ckpt={ckpt}", "figure=zoom"], "error: figure=zoom: unknown; choose one of truncation, mixing, "
                                          "interpolation"),
    ]:
        r = run_entry("generate.py", *args, f"out={tmp_path}/bad.png")
        assert r.returncode == 2 and r.stderr.strip() == message
        assert not (tmp_path / "bad.png").exists()
    r = run_entry("generate.py", f"ckpt={dcgan['last_checkpoint']}", "figure=interpolation", "rows=1", "steps=4",
                  f"out={tmp_path}/dcgan.png")
    assert r.returncode == 0 and read_image(str(tmp_path / "dcgan.png")).shape == (3, 32, 4 * 30 + 2)


def test_the_full_recipe_preset_builds_the_papers_networks_for_a_64_px_folder(tmp_path):
    from omegaconf import OmegaConf

    from .conftest import compose_cfg

    cfg = compose_cfg(["experiment=stylegan2/paper256", f"data.path={tmp_path}", "data.image_size=64"], tmp_path)
    assert cfg.data.image_size == 64 and cfg.data.batch_size == 64
    assert (cfg.model.r1_gamma, cfg.model.pl_weight, cfg.model.mixing) == (1.0, 2.0, 0.9)
    family = build_family(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss),
                          DataSpec({"x": (3, 64, 64)}))
    g = family.generator
    assert g.resolution == 64 and g.num_ws == 10 and len(g.mapping.net) == 8 and g.w_dim == 512
    assert [p.name for p in family.phases()] == ["D", "Dreg", "G", "Greg"]
    widths = [block.conv1.weight.shape[0] for block in g.synthesis.blocks]
    assert widths == [512, 512, 512, 512, 256]  # min(16384 / res, 512) at 4, 8, 16, 32, 64 px
    assert family.generate({"z": torch.randn(2, 512)}).shape == (2, 3, 64, 64)
