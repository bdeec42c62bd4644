"""Image-to-image translation: the networks (U-Net, PatchGAN, ResNet generator), the image pool and schedule, the
two families (Pix2Pix, CycleGAN), their metrics (steganography, correspondence, target share) and the commands
(train, generate, evaluate, translate). The data modules are tested in test_translation_data.py."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan_lightning.data.spec import DataSpec
from gan_lightning.families.cyclegan import CycleGAN, ImagePool
from gan_lightning.families.pix2pix import Pix2Pix
from gan_lightning.losses import LeastSquares, NonSaturating
from gan_lightning.metrics.registry import ScoreContext
from gan_lightning.metrics.translation import foreground_iou, translation_scores
from gan_lightning.networks.translation import PatchGAN, ResnetGenerator, UNet, auto_layers, patch_field
from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.train.fit import train
from gan_lightning.train.schedules import ConstantThenLinear

from .conftest import compose_cfg, run_cli, run_entry
from .helpers.ranks import RankState

SPEC = DataSpec({"a": (1, 28, 28), "b": (1, 28, 28)}, target="b", source="a")
UNPAIRED = DataSpec({"a": (1, 28, 28), "b": (1, 28, 28)}, target="b", source="a", paired=False)


# --- networks ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(28, 28), (32, 32), (20, 44)])
def test_the_unet_pads_any_size_to_its_multiple_and_crops_back(size):
    torch.manual_seed(0)
    net = UNet(1, 3, ngf=4, num_downs=5, dropout_layers=2).eval()
    x = torch.rand(2, 1, *size) * 2 - 1
    y = net(x)
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1
    # The skips carry detail: changing one input pixel changes the output at that pixel.
    x2 = x.clone()
    x2[:, :, size[0] // 2, size[1] // 2] += 1
    diff = (net(x2) - y).abs().sum(1)[0]
    assert diff[size[0] // 2, size[1] // 2] > 0


def test_the_unet_drops_out_in_training_only():
    torch.manual_seed(0)
    net = UNet(1, 1, ngf=4, num_downs=5, dropout=0.5, dropout_layers=2)
    x = torch.rand(4, 1, 32, 32)
    net.train()
    assert not torch.equal(net(x), net(x)), "dropout is the generator's noise in training"
    net.eval()
    assert torch.equal(net(x), net(x))


def _field(net: nn.Module, size: int, channels: int) -> int:
    """The receptive field of the centre output of ``net``, measured from the input gradient."""
    x = torch.randn(1, channels, size, size, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_fields_are_16_34_70_pixels(n_layers):
    net = PatchGAN(1, ndf=4, n_layers=n_layers, norm="none")
    assert net.field == patch_field(n_layers) == {1: 16, 2: 34, 3: 70}[n_layers]
    assert _field(net, 160, 1) == net.field


def test_patchgan_layers_scale_with_the_image_and_it_sees_the_input_pair():
    assert (auto_layers(28), auto_layers(64), auto_layers(256)) == (1, 2, 3)
    net = PatchGAN(2, ndf=4, n_layers=None, image_size=28)
    x, a = torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    logits = net(x, a=a)
    assert logits.shape == (3, 1, 12, 12)  # one logit per overlapping 16-px patch
    assert not torch.equal(logits, net(x, a=torch.randn_like(a)))


def test_the_resnet_generator_keeps_the_size_and_pads_odd_ones():
    net = ResnetGenerator(1, 1, ngf=4, blocks=2).eval()
    for size in ((28, 28), (30, 21)):
        assert net(torch.randn(1, 1, *size)).shape == (1, 1, *size)


# --- pool, schedule ------------------------------------------------------------------------------------------------
def test_the_image_pool_fills_then_swaps_about_half_for_stored_fakes():
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 2, 2))
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 4
    stored, swapped, total = set(range(4)), 0, 0
    for step in range(50):
        new = torch.full((4, 1, 2, 2), 100.0 + step)
        out = pool.query(new)
        for value in out[:, 0, 0, 0].tolist():
            total += 1
            if value != 100.0 + step:
                assert value in stored, "a returned fake is the new one or one stored before"
                swapped += 1
        stored = set(pool.images[:, 0, 0, 0].tolist()) | stored
    assert 0.35 < swapped / total < 0.65
    assert ImagePool(0, (1, 2, 2)).query(first) is first


def test_the_pool_is_in_the_state_dict_so_checkpoints_carry_it():
    family = CycleGAN(functools.partial(ResnetGenerator, ngf=4, blocks=1), functools.partial(PatchGAN, ndf=4),
                      LeastSquares(), UNPAIRED, pool_size=3)
    family.pool_b.query(torch.ones(2, 1, 28, 28))
    state = family.state_dict()
    assert state["pool_b.images"].shape == (3, 1, 28, 28) and int(state["pool_b.count"]) == 2
    assert set(family.per_rank_buffers()) == {"pool_a.images", "pool_a.count", "pool_b.images", "pool_b.count"}


def test_the_learning_rate_is_constant_then_decays_linearly_to_zero():
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = ConstantThenLinear(opt, total=10, decay_from=0.5)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:6] == [1.0] * 6
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:])) and 0 < lrs[-1] < 0.4
    with pytest.raises(ValueError, match="max_iterations"):
        ConstantThenLinear(opt, total=None)


# --- families ------------------------------------------------------------------------------------------------------
def _pix2pix(**options) -> Pix2Pix:
    return Pix2Pix(functools.partial(UNet, ngf=4, num_downs=5, dropout_layers=1),
                   functools.partial(PatchGAN, ndf=4, n_layers=None), NonSaturating(), SPEC, **options)


def test_pix2pix_l1_only_has_no_discriminator_and_the_conditional_one_sees_the_input():
    l1 = _pix2pix(adversarial_weight=0)
    assert l1.discriminator is None and [p.name for p in l1.phases()] == ["G"] and l1.players == ("generator",)
    cgan = _pix2pix()
    assert cgan.discriminator.body[0].in_channels == 2 and cgan.players == ("generator", "discriminator")
    assert _pix2pix(conditional=False).discriminator.body[0].in_channels == 1


def test_cyclegan_loss_terms_are_weighted_as_the_paper_and_d_reuses_gs_fakes():
    torch.manual_seed(0)
    family = CycleGAN(functools.partial(ResnetGenerator, ngf=4, blocks=1), functools.partial(PatchGAN, ndf=4),
                      LeastSquares(), UNPAIRED, cycle_weight=10, identity_weight=0.5, adversarial_weight=2)
    from gan_lightning.core.family import StepContext

    batch = {"a": torch.rand(2, 1, 28, 28) * 2 - 1, "b": torch.rand(2, 1, 28, 28) * 2 - 1}
    ctx = StepContext(iteration=0)
    result = family.generator_step(batch, ctx)
    logs = result.logs
    assert torch.allclose(result.loss, 2 * logs["loss_g"] + 10 * logs["cycle"] + 5 * logs["identity"])
    assert set(ctx.scratch) == {"fake_a", "fake_b"}
    d = family.discriminator_step(batch, ctx)
    assert int(family.pool_a.count) == 2 and torch.equal(family.pool_b.images[:2], ctx.scratch["fake_b"])
    assert torch.allclose(d.loss, d.logs["loss_d_a"] + d.logs["loss_d_b"])
    with pytest.raises(ValueError, match="identity"):
        CycleGAN(functools.partial(ResnetGenerator, ngf=4, blocks=1), functools.partial(PatchGAN, ndf=4),
                 LeastSquares(), DataSpec({"a": (1, 28, 28), "b": (3, 28, 28)}, target="b", source="a"))


# --- metrics -------------------------------------------------------------------------------------------------------
class _Nets(nn.Module):
    """A stand-in pair of generators: ``ab`` and ``ba`` as given functions."""

    def __init__(self, ab, ba):
        super().__init__()
        self.ab, self.ba, self.w = ab, ba, nn.Parameter(torch.zeros(()))

    def forward(self, x, direction="AtoB"):
        return (self.ab if direction == "AtoB" else self.ba)(x)


class _Module(nn.Module):
    def __init__(self, nets):
        super().__init__()
        self.sampling_generator = nets
        self.family = type("F", (), {"key_a": "a", "key_b": "b", "generator": nets})()


def _scores(ab, ba, source, classify=None) -> dict:
    module = _Module(_Nets(ab, ba))
    dm = type("D", (), {"foreground_threshold": 25})()
    return translation_scores(ScoreContext(module, dm, classify, len(source["a"]), source=source))


def test_a_steganographic_cycle_passes_plain_l1_but_fails_after_quantisation():
    torch.manual_seed(0)
    a = torch.rand(16, 1, 28, 28) * 2 - 1
    blank = torch.full_like(a, -0.5)
    # G hides its input at a thousandth of the amplitude in a constant image; F reads it back.
    hide, reveal = (lambda x: blank[: len(x)] + 1e-3 * x), (lambda y: ((y - blank[: len(y)]) / 1e-3).clamp(-1, 1))
    honest = lambda x: -x  # noqa: E731 - an invertible translation whose output carries the image
    stego = _scores(hide, reveal, {"a": a, "b": a})
    fair = _scores(honest, honest, {"a": a, "b": a})
    assert stego["cycle_l1_a"] < 1e-3 and stego["cycle_l1_a_quantised"] > 0.1
    assert fair["cycle_l1_a_quantised"] < 0.01


def test_correspondence_iou_ranks_a_shape_keeping_translation_over_an_unrelated_image():
    x = torch.full((2, 1, 28, 28), -1.0)
    x[0, :, 4:20, 4:20], x[1, :, 10:26, 2:12] = 1, 1
    assert foreground_iou(x, x, 25) == 1.0
    assert foreground_iou(x, x.flip(0), 25) < 0.3
    blank = torch.full_like(x, -1.0)
    assert foreground_iou(blank, blank, 25) == 1.0


def test_target_share_counts_translations_classified_as_the_target_class():
    a = torch.full((10, 1, 28, 28), -1.0)
    a[:, :, :14] = 1  # "class 0": bright top half; "class 1": bright bottom half
    b = a.flip(2)
    source = {"a": a, "b": b, "y_a": torch.zeros(10, dtype=torch.int64), "y_b": torch.ones(10, dtype=torch.int64)}

    def classify(x):
        top, bottom = x[:, :, :14].mean((1, 2, 3)), x[:, :, 14:].mean((1, 2, 3))
        return torch.stack([top, bottom], 1)

    flip = lambda x: x.flip(2)  # noqa: E731
    good = _scores(flip, flip, source, classify)
    assert good["target_share_ab"] == good["target_share_ba"] == 1.0
    assert good["baseline_target_share_ab"] == 0.0  # the identity map stays in its domain
    assert _scores(lambda x: x, lambda x: x, source, classify)["target_share_ab"] == 0.0


# --- training, commands --------------------------------------------------------------------------------------------
BASE = ["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
        "trainer.enable_model_summary=false", "module.log_every_n_iterations=10", "metrics.every_n_iterations=0",
        "callbacks.samples.every_n_iterations=0", "metrics.features=domain", "metrics.kid_subsets=5"]


def _train(tmp_path_factory, fmnist_root, name: str, *overrides: str) -> dict:
    out = tmp_path_factory.mktemp(name)
    cfg = compose_cfg(BASE + [f"data.root={fmnist_root}", f"metrics.cache_dir={out}/cache", *overrides],
                      out / "run")
    return train(cfg)


def _rows(result: dict, name: str) -> list[dict]:
    return [json.loads(line) for line in (Path(result["output_dir"]) / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def trained_pix2pix(tmp_path_factory, fmnist_root):
    """A small Pix2Pix trained 150 iterations on edges -> clothing (2048 pairs)."""
    return _train(tmp_path_factory, fmnist_root, "pix2pix", "model=pix2pix", "data.subset=2048",
                  "data.batch_size=32", "max_iterations=150", "model.generator.ngf=16", "model.discriminator.ndf=16",
                  "optim.generator.lr=1e-3", "metrics.n_samples=500", "metrics.n_reference=500")


@pytest.fixture(scope="module")
def trained_cyclegan(tmp_path_factory, fmnist_root):
    """A small CycleGAN trained 120 iterations on sandals <-> sneakers (512 images a domain)."""
    return _train(tmp_path_factory, fmnist_root, "cyclegan", "model=cyclegan", "data.subset=512",
                  "data.batch_size=16", "max_iterations=120", "model.generator.ngf=8", "model.generator.blocks=2",
                  "model.discriminator.ndf=8", "optim.generator.lr=1e-3", "optim.discriminator.lr=1e-3",
                  "metrics.n_samples=200")


@pytest.mark.slow
def test_pix2pix_learns_edges_to_clothing_and_logs_paired_metrics_against_test_targets(trained_pix2pix, fmnist_root):
    from gan_lightning.data.translation import FashionEdgesDataModule
    from gan_lightning.metrics.paired import paired_metrics

    last = _rows(trained_pix2pix, "metrics.jsonl")[-1]
    assert last["iteration"] == 150
    held = FashionEdgesDataModule(root=str(fmnist_root)).fixed_batch(500)
    blank = paired_metrics(torch.full_like(held["b"], -1.0), held["b"])  # the background alone
    assert last["metrics/psnr"] > blank["psnr"] + 2 and last["metrics/l1"] < 0.7 * blank["l1"], last
    assert last["metrics/class_kept"] > 0.3, last  # chance: 0.1
    # (every class is in the targets: class coverage means something here, unlike in a one-class translation)
    assert {"metrics/fid_domain", "metrics/ssim", "metrics/classes_covered"} <= set(last)
    ckpt = read_checkpoint(trained_pix2pix["last_checkpoint"])
    assert any(k.startswith("family.discriminator.") for k in ckpt["state_dict"])


@pytest.mark.slow
def test_cyclegan_cycles_close_and_its_metrics_are_logged_both_ways(trained_cyclegan):
    import csv

    with open(Path(trained_cyclegan["output_dir"]) / "csv" / "version_0" / "metrics.csv") as f:
        cycle = [float(r["train/cycle"]) for r in csv.DictReader(f) if r.get("train/cycle")]
    assert len(cycle) >= 10 and cycle[-1] < 0.6 * cycle[0], cycle
    last = _rows(trained_cyclegan, "metrics.jsonl")[-1]
    m = {k.removeprefix("metrics/"): v for k, v in last.items()}
    for tag in ("ab", "ba"):
        assert 0 <= m[f"target_share_{tag}"] <= 1 and 0 <= m[f"iou_{tag}"] <= 1
        assert m[f"baseline_target_share_{tag}"] < 0.1  # untranslated sandals are not sneakers
    assert m["target_share_ab"] > m["baseline_target_share_ab"], m
    assert m["cycle_l1_a"] < 0.2 and m["cycle_l1_a_quantised"] >= m["cycle_l1_a"] - 1e-3, m
    assert {"fid_domain", "fid_domain_ba"} <= set(m)
    assert not {"classes_covered", "class_kl", "classes_covered_ba"} & set(m), m  # one-class references
    ckpt = read_checkpoint(trained_cyclegan["last_checkpoint"])
    assert int(ckpt["state_dict"]["family.pool_a.count"]) == 50  # the pools travel in checkpoints


@pytest.mark.slow
def test_generate_evaluate_and_translate_on_translation_checkpoints(trained_pix2pix, trained_cyclegan, tmp_path,
                                                                    fmnist_root):
    p2p, cyc = trained_pix2pix["last_checkpoint"], trained_cyclegan["last_checkpoint"]
    r = run_entry("generate.py", f"ckpt={p2p}", "n=20", f"out={tmp_path}/p.npz", f"+data_dir={fmnist_root}")
    assert r.returncode == 0, r.stderr[-2000:]
    arrays = np.load(tmp_path / "p.npz")
    assert {k: arrays[k].shape for k in arrays} == {"images": (20, 1, 28, 28), "inputs": (20, 1, 28, 28),
                                                    "targets": (20, 1, 28, 28), "labels": (20,)}
    r = run_entry("generate.py", f"ckpt={cyc}", "n=20", f"out={tmp_path}/c.npz", f"+data_dir={fmnist_root}")
    assert r.returncode == 0, r.stderr[-2000:]
    arrays = np.load(tmp_path / "c.npz")
    assert set(arrays) == {"images", "inputs", "labels"} and (arrays["labels"] == 5).all()  # sandals in

    from gan_lightning.metrics.evaluation import evaluate

    scored = evaluate(cyc, n=5000, out=None, data_dir=str(fmnist_root), features="domain",
                      cache_dir=str(tmp_path / "cache"), kid_subsets=5)
    m, p = scored["metrics"], scored["protocol"]
    assert p["generated"]["n"] == 1000 and p["reference"]["split"] == "test" and p["reference"]["n"] == 1000
    assert m["baseline_target_share_ab"] < 0.1
    assert "identity" in p["baseline"] and m["baseline_fid_domain"] > m["fid_domain"], m

    images = tmp_path / "in"
    images.mkdir()
    for i, size in enumerate([(28, 28), (36, 30)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, size[::-1], dtype=np.uint8), "L").save(
            images / f"x{i}.png")
    for name, ckpt, direction in (("p2p", p2p, "AtoB"), ("cyc", cyc, "AtoB"), ("cyc", cyc, "BtoA")):
        out = tmp_path / f"out-{name}-{direction}"
        r = run_entry("translate.py", f"ckpt={ckpt}", f"input={images}", f"out={out}", f"direction={direction}")
        assert r.returncode == 0, r.stderr[-2000:]
        for i, size in enumerate([(28, 28), (36, 30)]):
            with Image.open(out / f"x{i}.png") as im:
                assert im.size == size and im.mode == "L"
    again = run_entry("translate.py", f"ckpt={cyc}", f"input={images}", f"out={out}")
    assert again.returncode != 0 and "would be overwritten" in again.stderr.strip().splitlines()[-1]
    one_way = run_entry("translate.py", f"ckpt={p2p}", f"input={images}", f"out={tmp_path}/x", "direction=BtoA")
    assert one_way.returncode != 0 and "AtoB only" in one_way.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_translate_refuses_a_noise_model_and_writes_nothing(tmp_path, make_cfg):
    ckpt = train(make_cfg("model=dcgan", "max_iterations=1", "callbacks.samples.every_n_iterations=0",
                          "~callbacks.metrics"))["last_checkpoint"]
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), "L").save(tmp_path / "x.png")
    r = run_entry("translate.py", f"ckpt={ckpt}", f"input={tmp_path}/x.png", f"out={tmp_path}/out")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "not an image-to-image translation model" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
    bad = run_entry("translate.py", f"ckpt={ckpt}", f"input={tmp_path}/x.png", f"out={tmp_path}/out", "direction=up")
    assert bad.returncode != 0 and "direction must be AtoB or BtoA" in bad.stderr.strip().splitlines()[-1]


# --- scale ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_two_process_ddp_keeps_networks_identical_and_pools_per_rank(make_cfg, tmp_path, model):
    cfg = make_cfg(f"model={model}", "trainer=ddp_cpu", "max_iterations=3", "data.batch_size=4",
                   "callbacks.samples.every_n_iterations=0", "~callbacks.metrics")
    result = train(cfg, callbacks=[RankState(str(tmp_path))])
    assert result["iteration"] == 3
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key, value in rank0.items():
        if ".pool_" in key and key.endswith(".images"):
            assert not torch.equal(value, rank1[key]), "each rank pools its own fakes"
        else:
            assert torch.equal(value, rank1[key]), f"ranks differ in {key}"
    if model == "cyclegan":  # the checkpoint keeps both ranks' pools
        per_rank = read_checkpoint(result["last_checkpoint"])["gan_lightning"]["per_rank"]
        assert len(per_rank["family.pool_a.images"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_bf16_mixed_trains_the_translation_models(make_cfg, model):
    from .test_training import changed, initial_state

    cfg = make_cfg(f"model={model}", "trainer.precision=bf16-mixed", "max_iterations=3", "data.batch_size=8",
                   "callbacks.samples.every_n_iterations=0", "~callbacks.metrics")
    before = initial_state(cfg)
    after = read_checkpoint(train(cfg)["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.") and changed(before, after, "family.discriminator.")
    assert all(v.dtype == torch.float32 for k, v in after.items() if v.is_floating_point())


def test_train_py_translation_models_on_noise_data_are_one_line(tmp_path):
    r = run_cli("train.py", "model=cyclegan", "data=fashion_mnist", f"hydra.run.dir={tmp_path}/run", "logger=none")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "use data=fashion_domains or data=unaligned_folder" in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_both_models_train_from_image_folders_in_the_originals_layouts(tmp_path):
    from .test_translation_data import _write_domain, _write_pairs

    _write_pairs(tmp_path / "pairs" / "train", 6, size=20)
    _write_pairs(tmp_path / "pairs" / "test", 3, size=20, start=6)
    _write_domain(tmp_path / "domains" / "trainA", [40, 60, 80, 100], mode="RGB", size=20)
    _write_domain(tmp_path / "domains" / "trainB", [150, 170, 190], mode="RGB", size=20)
    common = BASE + ["data.load_size=20", "data.crop=16", "data.batch_size=2", "max_iterations=2",
                     f"metrics.cache_dir={tmp_path}/cache", "callbacks.samples.every_n_iterations=2",
                     "metrics.features=auto", "model.generator.ngf=4", "model.discriminator.ndf=4"]
    for model, data, folder in (("pix2pix", "aligned_folder", "pairs"), ("cyclegan", "unaligned_folder", "domains")):
        cfg = compose_cfg(common + [f"model={model}", f"data={data}", f"data.path={tmp_path / folder}"],
                          tmp_path / model)
        result = train(cfg)
        assert result["iteration"] == 2
        last = _rows(result, "metrics.jsonl")[-1]
        expected = {"metrics/psnr", "metrics/ssim"} if model == "pix2pix" else {"metrics/cycle_l1_a_quantised",
                                                                                 "metrics/cycle_l1_b"}
        assert expected <= set(last), last  # no classes, no domain classifier: no FID, no shares
        with Image.open(tmp_path / model / "samples" / "iter_0000002.png") as grid:
            assert grid.mode in ("RGB", "RGBA")


@pytest.mark.slow
def test_train_py_on_a_bad_pair_file_stops_with_one_line_naming_it_and_saves_the_run(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        (tmp_path / "pairs" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.zeros((16, 32, 3), dtype=np.uint8)).save(tmp_path / "pairs" / split / f"{i}.png")
    Image.fromarray(np.zeros((16, 20, 3), dtype=np.uint8)).save(tmp_path / "pairs" / "train" / "x.png")
    r = run_cli("train.py", "model=pix2pix", "data=aligned_folder", f"data.path={tmp_path}/pairs", "logger=none",
                "metrics=none", "data.load_size=16", "data.crop=16", "data.batch_size=5", "model.generator.ngf=4",
                "model.discriminator.ndf=4", "max_iterations=3", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "x.png is 20x16: an aligned pair must be twice as wide as high" in last and "data.bad_files=skip" in last
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # found mid-run: the run so far is kept


def test_the_whole_shoe_preset_judges_the_whole_image(tmp_path):
    """experiment=cyclegan/whole_shoe: both discriminators' fields cover the 28-px image (the preset's do not)."""
    from hydra.utils import instantiate

    from gan_lightning.train.build import build_family

    def fields(*overrides):
        cfg = compose_cfg([*overrides, "data.root=/nonexistent"], tmp_path)
        data = instantiate(cfg.data)
        family = build_family(cfg.model, cfg.loss, data.spec)
        return {family.discriminator.a.field, family.discriminator.b.field}, data.spec.shape[-1]

    whole, side = fields("experiment=cyclegan/whole_shoe")
    preset, _ = fields("model=cyclegan")
    assert whole == {34} and min(whole) >= side == 28 and max(preset) < side
