"""Super-resolution: the data (LR made as the papers make it), the networks, the two-stage schedule, the content
loss's frozen network, the metrics beside bicubic, and the commands (train, generate, evaluate, upscale)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_lightning.data.convert import to_float, to_uint8
from gan_lightning.data.super_resolution import FashionSRDataModule, ImageFolderSRDataModule, downscale
from gan_lightning.errors import UserError
from gan_lightning.families.srgan import SuperResolution
from gan_lightning.losses import NonSaturating
from gan_lightning.losses.content import VGGContent
from gan_lightning.metrics.paired import paired_metrics
from gan_lightning.networks.srgan import SRDiscriminator, SRResNet
from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.train.fit import train
from gan_lightning.upscale import tiled

from .conftest import run_entry
from .helpers.ranks import RankState


# --- data ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 4])
def test_fashion_sr_inputs_are_antialiased_bicubic_reductions_and_held_out_pairs_come_from_the_test_split(
        fmnist_root, scale):
    dm = FashionSRDataModule(root=str(fmnist_root), scale=scale, subset=64)
    dm.setup()
    lr, hr = dm._tensors["lr"], dm._tensors["hr"]
    assert lr.dtype == hr.dtype == torch.uint8 and lr.shape == (64, 1, 28 // scale, 28 // scale)
    expected = F.interpolate(hr.float(), scale_factor=1 / scale, mode="bicubic", antialias=True)
    assert torch.equal(lr, expected.round().clamp(0, 255).to(torch.uint8))
    held = dm.fixed_batch(8, split="test", seed=1)
    assert dm.spec.source == "lr" and dm.spec.target == "hr" and set(held) == {"lr", "hr", "y"}
    test_x, _ = dm.load_split("test")
    first = to_uint8(held["hr"][:1])
    assert (test_x == first).flatten(1).all(1).any(), "held-out targets are not test images"
    assert torch.equal(to_uint8(held["lr"]), downscale(to_uint8(held["hr"]), scale))


@pytest.mark.parametrize("scale,message", [(3, "does not divide the image size 28"), (5, "must be one of")])
def test_a_scale_the_data_cannot_take_is_one_line(fmnist_root, scale, message):
    with pytest.raises(UserError, match=message):
        FashionSRDataModule(root=str(fmnist_root), scale=scale)


def _write_images(folder: Path, sizes, seed=0, mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"img{i}.png")


def test_an_image_folder_gives_aligned_random_crops_and_fixed_held_out_centre_crops(tmp_path):
    _write_images(tmp_path / "hr", [(40, 36), (48, 44), (44, 40), (52, 48)])
    dm = ImageFolderSRDataModule(str(tmp_path / "hr"), scale=4, crop=16, batch_size=2, val_fraction=0.25)
    batch = next(iter(dm.train_dataloader()))
    assert batch["hr"].shape == (2, 3, 16, 16) and batch["lr"].shape == (2, 3, 4, 4)
    assert torch.equal(to_uint8(batch["lr"]), downscale(to_uint8(batch["hr"]), 4))
    held = dm.fixed_batch(1)
    assert torch.equal(held["hr"], dm.fixed_batch(1)["hr"])  # centre crops: the same every time
    assert len(dm._items) == 3


def test_a_folder_of_low_resolution_files_is_matched_by_name_and_cropped_in_register(tmp_path):
    _write_images(tmp_path / "hr", [(32, 32), (40, 32)], mode="L")
    for f in (tmp_path / "hr").iterdir():  # LR files that are block means, not bicubic reductions
        (tmp_path / "lr").mkdir(exist_ok=True)
        with Image.open(f) as im:
            im.resize((im.width // 4, im.height // 4), Image.BOX).save(tmp_path / "lr" / f.name)
    dm = ImageFolderSRDataModule(str(tmp_path / "hr"), scale=4, crop=16, channels=1, lr_path=str(tmp_path / "lr"),
                                 val_path=str(tmp_path / "hr"))
    dm.setup()
    for i in range(2):
        row = dm._items.item(i, torch.Generator().manual_seed(i))
        hr, lr = row["hr"], row["lr"]
        assert lr.shape == (1, 4, 4)
        block_means = F.avg_pool2d(hr.float(), 4)
        assert (lr.float() - block_means).abs().max() <= 1, "the LR crop is not the HR crop's own file"
        assert not torch.equal(lr, downscale(hr[None], 4)[0])


@pytest.mark.parametrize("make,message", [
    (lambda p: _write_images(p, [(8, 8)]), "smaller than data.crop=16"),
    (lambda p: p.mkdir(), "no images"),
    (lambda p: (p.mkdir(), (p / "bad.png").write_bytes(b"not an image")), "cannot be decoded"),
])
def test_bad_image_folders_are_one_line(tmp_path, make, message):
    make(tmp_path / "hr")
    with pytest.raises(UserError, match=message) as err:  # an empty folder at start-up, a bad file when it is read
        list(ImageFolderSRDataModule(str(tmp_path / "hr"), scale=4, crop=16, batch_size=1).train_dataloader())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("override,message", [
    ("model.adversarial_weight=-1", "model.adversarial_weight must be a number >= 0; got -1"),
    ("model.warmup=1.5", "model.warmup must be an integer >= 0; got 1.5"),
    ("data.scale=5", "data.scale must be 2, 3, 4 or 8; got 5"),
])
def test_bad_sr_options_are_one_line_before_anything_runs(override, message):
    from gan_lightning.config.entry import precheck

    with pytest.raises(UserError) as err:
        precheck(["model=srgan", "data=fashion_sr", override], "train")
    assert str(err.value) == message


def test_a_crop_that_the_scale_does_not_divide_is_one_line(tmp_path):
    with pytest.raises(UserError, match="data.crop=18 must be a multiple of data.scale=4"):
        ImageFolderSRDataModule(str(tmp_path), scale=4, crop=18)


# --- networks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("block", ["residual", "rrdb"])
def test_the_generator_upscales_any_input_size_by_its_scale(scale, block):
    net = SRResNet((3, 32, 32), scale=scale, width=8, blocks=1, block=block, growth=4)
    assert net(torch.randn(2, 3, 5, 9)).shape == (2, 3, 5 * scale, 9 * scale)


@pytest.mark.parametrize("size", [28, 96])
def test_the_discriminator_gives_one_logit_per_image(size):
    assert SRDiscriminator((1, size, size), ndf=4, hidden=8)(torch.randn(3, 1, size, size)).shape == (3,)


# --- the family ----------------------------------------------------------------------------------------------------
def _family(dm, **options):
    return SuperResolution(functools.partial(SRResNet, width=8, blocks=1),
                           functools.partial(SRDiscriminator, ndf=4, layers=4, hidden=8), NonSaturating(), dm.spec,
                           **options)


def test_srresnet_has_no_discriminator_and_srgan_warms_up_before_its_discriminator_starts(fmnist_root):
    dm = FashionSRDataModule(root=str(fmnist_root), scale=4, subset=64)
    srresnet = _family(dm, adversarial_weight=0)
    assert srresnet.discriminator is None and srresnet.players == ("generator",)
    assert [p.name for p in srresnet.phases()] == ["pixel"]
    srgan = _family(dm, warmup=2)
    assert srgan.players == ("generator", "discriminator")
    from gan_lightning.core.family import StepContext

    active = {i: [p.name for p in srgan.phases() if p.active(StepContext(iteration=i))] for i in (0, 1, 2, 5)}
    assert active == {0: ["pixel"], 1: ["pixel"], 2: ["D", "G"], 5: ["D", "G"]}


def test_the_relativistic_discriminator_scores_each_side_against_the_others_mean(fmnist_root):
    dm = FashionSRDataModule(root=str(fmnist_root), scale=4, subset=64)
    family = _family(dm, relativistic=True)
    d_real, d_fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, -1.0])
    assert torch.allclose(family._relative(d_real, d_fake), torch.tensor([2.0, 0.0]))
    assert torch.allclose(family._relative(d_fake, d_real), torch.tensor([0.0, -2.0]))
    assert torch.equal(_family(dm)._relative(d_real, d_fake), d_real)


def _vgg_file(path: Path, layers: int) -> Path:
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])[:layers]
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_the_content_network_is_frozen_outside_the_state_and_passes_gradients(fmnist_root, tmp_path):
    weights = _vgg_file(tmp_path / "vgg19.pth", 9)  # through relu2_2
    dm = FashionSRDataModule(root=str(fmnist_root), scale=4, subset=64)
    family = _family(dm, content={"kind": "vgg19", "weights": str(weights), "layer": "relu2_2"})
    assert not any("content" in k for k in family.state_dict())
    assert not any(p is q for p in family.parameters() for q in family.content.net.net.parameters())
    hr = torch.rand(2, 1, 28, 28) * 2 - 1
    out = hr.clone().requires_grad_(True)
    assert family.content(out, hr).item() == 0.0
    moved = (out + 0.3).clamp(-1, 1)
    loss = family.content(moved, hr)
    loss.backward()
    assert loss > 0 and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in family.content.net.net.parameters())


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: torch.save({"weight": torch.zeros(3)}, p), "not torchvision VGG19 weights"),
    (lambda p: p.write_text("text"), "cannot read it as torch weights"),
])
def test_a_missing_or_wrong_content_weights_file_is_one_line(tmp_path, make, message):
    path = tmp_path / "w.pth"
    make(path)
    with pytest.raises(UserError, match=message):
        VGGContent(str(path))


# --- metrics -------------------------------------------------------------------------------------------------------
def test_sr_metrics_crop_the_border_and_score_rgb_on_luma():
    gen = torch.Generator().manual_seed(0)
    target = to_float(torch.randint(0, 256, (4, 3, 16, 16), generator=gen, dtype=torch.uint8))
    output = target.clone()
    output[..., :2, :] = -target[..., :2, :]  # wrong only inside the 2-pixel border
    assert paired_metrics(output, target, crop_border=2)["psnr"] == 100
    assert paired_metrics(output, target)["psnr"] < 30
    shift = target.clone()
    shift[:, 0] = (target[:, 0] + 0.2).clamp(-1, 1)  # a red tint: seen on luma with its BT.601 weight only
    luma, rgb = paired_metrics(shift, target, y_channel=True), paired_metrics(shift, target)
    assert luma["psnr"] > rgb["psnr"]


# --- training, commands --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_sr(tmp_path_factory, fmnist_root):
    """A tiny SRGAN trained 100 iterations (60 of them the pixel-loss warm-up) on Fashion-MNIST x4."""
    from .conftest import compose_cfg

    out = tmp_path_factory.mktemp("srgan")
    cfg = compose_cfg(["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
                       "trainer.enable_model_summary=false", "model=srgan", "data=fashion_sr",
                       f"data.root={fmnist_root}", "data.subset=2048", "data.batch_size=32", "max_iterations=100",
                       "model.warmup=60", "model.generator.width=16", "model.generator.blocks=2",
                       "model.discriminator.ndf=8", "model.discriminator.layers=4", "model.discriminator.hidden=16",
                       "optim.generator.lr=2e-3", "module.ema_decay=0", "callbacks.samples.every_n_iterations=50",
                       "metrics.every_n_iterations=0", "metrics.n_samples=500", "metrics.n_reference=1000",
                       f"metrics.cache_dir={out}/cache"], out / "run")
    return train(cfg)


@pytest.mark.slow
def test_srgan_learns_beyond_bicubic_and_logs_its_metrics_beside_bicubic(trained_sr):
    import json

    rows = [json.loads(line) for line in (Path(trained_sr["output_dir"]) / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert last["iteration"] == 100
    assert last["metrics/psnr"] > last["metrics/baseline_psnr"] + 1, last
    assert last["metrics/ssim"] > last["metrics/baseline_ssim"], last
    assert 0 <= last["metrics/class_kept"] <= 1 and "metrics/fid_domain" in last
    grids = sorted(p.name for p in (Path(trained_sr["output_dir"]) / "samples").glob("*.png"))
    assert grids == ["iter_0000050.png", "iter_0000100.png"]
    ckpt = read_checkpoint(trained_sr["last_checkpoint"])
    assert any(k.startswith("family.discriminator.") for k in ckpt["state_dict"])


@pytest.mark.slow
def test_generate_evaluate_and_upscale_on_an_sr_checkpoint(trained_sr, tmp_path, fmnist_root):
    ckpt = trained_sr["last_checkpoint"]
    r = run_entry("generate.py", f"ckpt={ckpt}", "n=20", f"out={tmp_path}/sr.npz", f"+data_dir={fmnist_root}")
    assert r.returncode == 0, r.stderr[-2000:]
    arrays = np.load(tmp_path / "sr.npz")
    assert arrays["images"].shape == (20, 1, 28, 28) and arrays["inputs"].shape == (20, 1, 7, 7)
    assert arrays["targets"].shape == (20, 1, 28, 28) and arrays["labels"].shape == (20,)

    from gan_lightning.metrics.evaluation import evaluate

    scored = evaluate(ckpt, n=300, out=None, data_dir=str(fmnist_root), features="domain", n_reference=500,
                      cache_dir=str(tmp_path / "cache"), kid_subsets=5)
    m = scored["metrics"]
    assert m["psnr"] > m["baseline_psnr"] and m["fid_domain"] < m["baseline_fid_domain"], m
    assert {"ssim", "l1", "class_kept", "baseline_class_kept", "baseline_ssim"} <= set(m)
    assert "bicubic" in scored["protocol"]["baseline"].lower()

    _write_images(tmp_path / "in", [(10, 6), (7, 7)], mode="L")
    r = run_entry("upscale.py", f"ckpt={ckpt}", f"input={tmp_path}/in", f"out={tmp_path}/up", "tile=4", "overlap=2")
    assert r.returncode == 0, r.stderr[-2000:]
    for name, (w, h) in {"img0.png": (10, 6), "img1.png": (7, 7)}.items():
        with Image.open(tmp_path / "up" / name) as im:
            assert im.size == (4 * w, 4 * h) and im.mode == "L"


def test_tiled_upscaling_equals_the_whole_image_when_the_overlap_covers_the_receptive_field():
    torch.manual_seed(0)
    net = SRResNet((1, 28, 28), scale=2, width=4, blocks=1).eval()  # receptive field: 6 input pixels each side
    image = torch.rand(1, 1, 23, 37) * 2 - 1
    with torch.no_grad():
        whole = net(image)
        assert torch.allclose(tiled(net, image, 2, tile=10, overlap=6), whole, atol=1e-5)
        assert not torch.allclose(tiled(net, image, 2, tile=10, overlap=0), whole, atol=1e-5)


@pytest.mark.slow
def test_upscale_refuses_a_noise_model_and_writes_nothing(tmp_path, make_cfg):
    cfg = make_cfg("model=dcgan", "max_iterations=1", "callbacks.samples.every_n_iterations=0")
    ckpt = train(cfg)["last_checkpoint"]
    _write_images(tmp_path / "in", [(8, 8)], mode="L")
    r = run_entry("upscale.py", f"ckpt={ckpt}", f"input={tmp_path}/in", f"out={tmp_path}/up")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "not a super-resolution model" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "up").exists()


# --- scale ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_process_ddp_srgan_keeps_ranks_identical_through_the_warm_up(make_cfg, tmp_path):
    cfg = make_cfg("model=srgan", "trainer=ddp_cpu", "max_iterations=3", "data.batch_size=8",
                   "callbacks.samples.every_n_iterations=0", "metrics.every_n_iterations=0", "~callbacks.metrics")
    result = train(cfg, callbacks=[RankState(str(tmp_path))])
    assert result["iteration"] == 3
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), f"ranks differ in {key}"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["srresnet", "srgan"])
def test_bf16_mixed_trains_the_sr_models(make_cfg, model):
    from .test_training import changed, initial_state

    cfg = make_cfg(f"model={model}", "trainer.precision=bf16-mixed", "max_iterations=3", "data.batch_size=8",
                   "callbacks.samples.every_n_iterations=0", "~callbacks.metrics")
    before = initial_state(cfg)
    after = read_checkpoint(train(cfg)["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.")
    if model == "srgan":  # warm-up 1 iteration, then the discriminator steps
        assert changed(before, after, "family.discriminator.")
    assert all(v.dtype == torch.float32 for k, v in after.items() if v.is_floating_point())


def test_srgan_trains_from_an_image_folder(tmp_path):
    from .conftest import compose_cfg

    _write_images(tmp_path / "hr", [(40, 36), (48, 44), (44, 40), (52, 48), (36, 36)])
    cfg = compose_cfg(["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
                       "trainer.enable_model_summary=false", "model=srgan", "data=sr_folder",
                       f"data.path={tmp_path / 'hr'}", "data.crop=16", "data.batch_size=2", "data.val_fraction=0.4",
                       "max_iterations=4", "model.warmup=2", "model.generator.width=8", "model.generator.blocks=1",
                       "model.discriminator.ndf=4", "model.discriminator.layers=4", "model.discriminator.hidden=8",
                       "callbacks.samples.every_n_iterations=4", "metrics.every_n_iterations=0",
                       f"metrics.cache_dir={tmp_path}/cache"], tmp_path / "run")
    result = train(cfg)
    assert result["iteration"] == 4
    import json

    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"metrics/psnr", "metrics/baseline_psnr"} <= set(last)  # no classes, no domain classifier: no class_kept
    assert "metrics/class_kept" not in last
    with Image.open(tmp_path / "run" / "samples" / "iter_0000004.png") as grid:
        assert grid.mode in ("RGB", "RGBA")


def test_each_stage_can_have_its_own_reconstruction_terms_as_the_paper_trains_them(fmnist_root, tmp_path):
    from gan_lightning.core.family import StepContext

    weights = _vgg_file(tmp_path / "vgg19.pth", 9)
    dm = FashionSRDataModule(root=str(fmnist_root), scale=4, subset=64)
    content = {"kind": "vgg19", "weights": str(weights), "layer": "relu2_2"}
    batch = {"lr": torch.rand(4, 1, 7, 7) * 2 - 1, "hr": torch.rand(4, 1, 28, 28) * 2 - 1}
    ctx = StepContext(iteration=5)
    torch.manual_seed(0)
    shared = _family(dm, content=content, content_weight=0.5, warmup=2)
    torch.manual_seed(0)
    paper = _family(dm, content=content, content_weight=0.5, warmup=2, warmup_content_weight=0, gan_pixel_weight=0)
    both = shared.pixel_step(batch, ctx)
    assert set(both.logs) == {"pixel", "content"}
    assert torch.allclose(both.loss, both.logs["pixel"] + 0.5 * both.logs["content"])
    stage1 = paper.pixel_step(batch, ctx)  # MSE/L1 alone: the content network is not even run
    assert "content" not in stage1.logs and torch.allclose(stage1.loss, stage1.logs["pixel"])
    stage2 = paper.generator_step(batch, ctx)  # content + adversarial alone; the pixel loss is only logged
    assert torch.allclose(stage2.loss, 0.5 * stage2.logs["content"] + 1e-3 * stage2.logs["loss_g"])
    assert stage2.logs["pixel"] > 0
    with pytest.raises(ValueError, match="must be >= 0"):
        _family(dm, gan_pixel_weight=-1)
