"""Conditional GAN, ACGAN and InfoGAN: training runs, label plumbing, grids, unlabelled data, metrics."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torchvision.io import read_image

from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.render import to_uint8_grid
from gan_lightning import report
from gan_lightning.train.checkpoints import load_module, read_checkpoint
from gan_lightning.families.class_conditional import CGAN
from gan_lightning.config import CONF_DIR
from gan_lightning.data import GaussianMixtureDataModule
from gan_lightning.errors import UserError
from gan_lightning.core.family import StepContext
from gan_lightning.families.infogan import InfoGAN
from gan_lightning.losses import NonSaturating
from gan_lightning.data.spec import DataSpec
from gan_lightning.metrics.codes import best_assignment_accuracy, infogan_code_accuracy, infogan_generated_code_accuracy
from gan_lightning.metrics.conditional import evaluate_checkpoint, intra_class_fid, label_accuracy
from gan_lightning.networks import dcgan, fc
from gan_lightning.sampling import generate, resolve_label
from gan_lightning.train.build import build_family, build_module
from gan_lightning.train.fit import train

from .conftest import HANG_LIMIT_S, compose_cfg, run_entry
from .test_training import changed, initial_state, read_metrics

FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot"]
LOSSES = sorted(p.stem for p in (CONF_DIR / "loss").glob("*.yaml"))
FAST = ["metrics=none", "data.batch_size=16"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread is faster (tests/conftest.py)


def family_for(model: str, shape=(1, 28, 28), num_classes: int | None = 10, *overrides: str, tmp_path=Path("/tmp")):
    """The family of ``model=...`` (tiny widths) for data of ``shape``, built as train.py builds it."""
    from .conftest import TINY

    tiny = TINY[model]
    if "model/backbone=fcgan" in overrides:  # MLPs: hidden sizes instead of convolution widths
        tiny = [o for o in tiny if ".ngf=" not in o and ".ndf=" not in o]
        tiny += ["model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]"]
    cfg = compose_cfg([f"model={model}", *tiny, *overrides], tmp_path)
    return build_family(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss, resolve=True),
                        {"shape": list(shape), "num_classes": num_classes, "bounded": len(shape) == 3})


# --- training runs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,loss,extra", [
    ("cgan", "non_saturating", []),
    ("cgan", "hinge", ["model.conditioning=concat", "model.diversity_weight=1"]),
    ("acgan", "non_saturating", ["model.class_norm=true"]),
    ("infogan", "non_saturating", []),
])
def test_few_iterations_train_every_player(make_cfg, fmnist_root, model, loss, extra):
    cfg = make_cfg(f"model={model}", f"loss={loss}", "max_iterations=3", *FAST, *extra)
    before = initial_state(cfg)
    result = train(cfg)

    assert result["iteration"] == 3 and result["global_step"] == 3 * (cfg.optim.n_critic + 1)
    metrics = read_metrics(Path(result["output_dir"]))
    assert metrics["train/iteration"] == [1.0, 2.0, 3.0]
    keys = {"cgan": [], "acgan": ["loss_cls_d", "loss_cls_g", "acc_real", "acc_fake"],
            "infogan": ["loss_info_d", "loss_info_g", "q_acc"]}[model]
    for key in ["loss_d", "loss_g", "D(x)", "D(G(z))", "grad_norm_d", "grad_norm_g", *keys]:
        values = metrics[f"train/{key}"]
        assert len(values) == 3 and all(math.isfinite(v) for v in values), key
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    for prefix in ("family.generator.", "family.discriminator.", "generator_ema."):
        assert changed(before, after, prefix), prefix
    if model in ("cgan", "acgan"):
        assert changed(before, after, "family.generator.embed.")  # the label embedding learns
    if model == "cgan" and not extra:
        assert changed(before, after, "family.discriminator.embed.")  # so does the projection
    if "model.diversity_weight=1" in extra:  # the mode-seeking term's ratio is logged
        assert all(v > 0 for v in metrics["train/diversity"])
    if "model.class_norm=true" in extra:  # and the per-class BatchNorm scales and shifts of the generator
        assert changed(before, after, "family.generator.backbone.net.1.gamma.")
        assert changed(before, after, "family.generator.backbone.net.1.beta.")
    if model == "infogan":
        assert changed(before, after, "family.q_head.")
    # The sample grid: one row of 8 per class (10 rows), or InfoGAN's 2 x 10 traversal rows, of 28 px + 2 px padding.
    grid = read_image(str(Path(result["output_dir"]) / "samples" / "iter_0000003.png"))
    rows = 20 if model == "infogan" else 10
    assert tuple(grid.shape) == (3, rows * 30 + 2, 8 * 30 + 2)
    if model == "infogan":  # the code-matching metrics run on the checkpoint (values: an untrained model's)
        scores = evaluate_checkpoint(result["last_checkpoint"], n_per_label=10, data_dir=str(fmnist_root))
        assert 0 <= scores["code_accuracy"] <= 1 and 0 <= scores["generated_code_accuracy"] <= 1
        assert len(scores["code_to_class"]) == 10


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_wgan_gp_runs_and_labels_reach_the_penalty(make_cfg, monkeypatch, model):
    from gan_lightning.losses import adversarial as losses  # where WassersteinGP looks the penalty up

    seen = []
    original = losses.gradient_penalty

    def spy(discriminator, real, fake, grad_scale=None, **kwargs):
        seen.append({k: v.clone() for k, v in kwargs.items()})
        return original(discriminator, real, fake, grad_scale=grad_scale, **kwargs)

    monkeypatch.setattr(losses, "gradient_penalty", spy)
    cfg = make_cfg(f"model={model}", "loss=wgan_gp", "max_iterations=2", *FAST)
    result = train(cfg)
    assert result["iteration"] == 2 and result["global_step"] == 2 * 6  # 5 critic steps + 1 generator step
    assert len(seen) == 10
    metrics = read_metrics(Path(result["output_dir"]))
    assert all(math.isfinite(v) and v >= 0 for v in metrics["train/reg_d"])
    if model == "cgan":  # the projection discriminator scores the interpolates with the batch's labels
        assert all(set(s) == {"y"} and s["y"].dtype == torch.int64 and s["y"].shape == (16,) for s in seen)
        assert len(torch.cat([s["y"] for s in seen]).unique()) > 1
    else:  # ACGAN's penalty is on its (unconditional) real/fake head
        assert all(s == {} for s in seen)


def test_the_penalty_of_a_projection_discriminator_depends_on_the_labels():
    family = family_for("cgan", (1, 28, 28), 10, "loss=wgan_gp")
    torch.manual_seed(0)
    with torch.no_grad():  # make the class embeddings matter
        family.discriminator.embed.weight.normal_(0, 1)
    real, fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    penalty = [family.loss.regularizer(family.discriminator, real, fake, y=torch.full((8,), k)) for k in (0, 1)]
    assert not torch.allclose(*penalty)


@pytest.mark.parametrize("model", ["cgan", "acgan", "infogan"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_model_composes_with_every_loss(tmp_path, model, loss):
    family = family_for(model, (1, 28, 28), 10, f"loss={loss}", tmp_path=tmp_path)
    batch = {"x": torch.rand(4, 1, 28, 28) * 2 - 1, "y": torch.tensor([0, 3, 3, 9])}
    for step in (family.discriminator_step, family.generator_step):
        result = step(batch, StepContext(iteration=0))
        assert result.loss.dim() == 0 and torch.isfinite(result.loss)
        assert all(torch.isfinite(v) for v in result.logs.values())
    family.after_step(family.phases()[0])  # the discriminator phase: its constraint (clipping) applies
    # the players split the family's parameters between them
    players = [{id(p) for p in family.parameters_of(player)} for player in family.players]
    assert not players[0] & players[1]
    assert players[0] | players[1] == {id(p) for p in family.parameters() if p.requires_grad}


def test_acgan_classifies_fakes_in_the_discriminator_step_only_when_asked():
    batch = {"x": torch.rand(8, 1, 28, 28) * 2 - 1, "y": torch.arange(8)}
    losses, real_ce = {}, {}
    for classify_fakes in (False, True):
        torch.manual_seed(0)  # the same weights and fakes both times
        family = family_for("acgan", (1, 28, 28), 10, f"model.classify_fakes={classify_fakes}")
        real_ce[classify_fakes] = F.cross_entropy(family.discriminator.scores(batch["x"])[1], batch["y"])
        losses[classify_fakes] = family.discriminator_step(batch, StepContext(0)).logs["loss_cls_d"]
    assert torch.allclose(losses[False], real_ce[False])  # real images only
    assert torch.allclose(real_ce[False], real_ce[True]) and losses[True] > losses[False] + 0.1  # + the fakes' CE


def test_infogan_q_head_belongs_to_the_discriminator_player():
    family = family_for("infogan")
    assert isinstance(family, InfoGAN)
    assert family.networks_of("discriminator") == [family.discriminator, family.q_head]
    assert family.networks_of("generator") == [family.generator]
    # the generator's objective reaches G through Q: its gradient w.r.t. G is non-zero
    family.zero_grad()
    family.generator_step({"x": torch.zeros(4, 1, 28, 28)}, StepContext(0)).loss.backward()
    assert all(p.grad is not None for p in family.generator.parameters())


# --- data without labels -----------------------------------------------------------------------------------------
@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((28, 28), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_conditional_model_on_unlabelled_data_fails_at_start_with_one_line(make_cfg, image_folder, model):
    cfg = make_cfg(f"model={model}", "data=image_folder", f"data.path={image_folder}", "data.image_size=28",
                   "data.channels=1", "data.batch_size=2", "max_iterations=1")
    with pytest.raises(UserError) as info:
        train(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"model: {model} is class-conditional but this data has no labels")
    assert "fashion_mnist" in message and "model=dcgan" in message
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # nothing ran


def test_infogan_needs_no_labels(make_cfg, image_folder):
    cfg = make_cfg("model=infogan", "data=image_folder", f"data.path={image_folder}", "data.image_size=28",
                   "data.channels=1")
    module = build_module(cfg, instantiate(cfg.data))
    assert module.family.num_classes is None and module.generate(module.family.sample_inputs(2)).shape == (2, 1, 28, 28)


# --- labels end to end ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_generate_with_a_label_gives_samples_of_that_class(make_cfg, fmnist_root, tmp_path):
    result = train(make_cfg("model=cgan", "max_iterations=2", *FAST, "callbacks.samples.every_n_iterations=0"))
    ckpt = result["last_checkpoint"]
    module = load_module(ckpt)

    out = generate(ckpt, n=12, out=str(tmp_path / "dress.npz"), batch_size=5, label=3)
    saved = np.load(out["out"])
    assert out["label"] == 3 and saved["labels"].tolist() == [3] * 12
    # the very noise generate.py draws, with label 3, gives the saved images; another label gives others
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([module.family.sample_inputs(m, generator=gen)["z"] for m in (5, 5, 2)])
    as_uint8 = lambda x: x.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).numpy()  # noqa: E731
    assert np.array_equal(saved["images"], as_uint8(module.generate({"z": z, "y": torch.full((12,), 3)})))
    assert not np.array_equal(saved["images"], as_uint8(module.generate({"z": z, "y": torch.full((12,), 4)})))

    balanced = np.load(generate(ckpt, n=25, out=str(tmp_path / "all.npz"), batch_size=10)["out"])
    assert balanced["labels"].tolist() == [i % 10 for i in range(25)]  # classes in turn across batches

    assert resolve_label(module.family, "Dress", FMNIST_CLASSES) == 3
    for bad in (10, -1, "Jacket", 2.5):
        with pytest.raises(UserError, match=r"label=.*(Ankle boot|no such class)"):
            resolve_label(module.family, bad, FMNIST_CLASSES)
    unconditional = family_for("infogan")
    with pytest.raises(UserError, match="not class-conditional"):
        resolve_label(unconditional, 3)

    # generate.py: label=<class name> on the command line
    cli_out = tmp_path / "cli" / "trousers.npz"
    proc = run_entry("generate.py", f"ckpt={ckpt}", "n=6", f"out={cli_out}", "label=Trouser")
    assert proc.returncode == 0, proc.stderr
    assert "6 samples of class 1" in proc.stdout
    assert np.load(cli_out)["labels"].tolist() == [1] * 6

    # the conditional metrics of the checkpoint (an untrained model's values)
    scores = evaluate_checkpoint(ckpt, n_per_label=10, data_dir=str(fmnist_root), n_real_per_label=50)
    assert sorted(scores["label_accuracy_per_label"]) == list(range(10)) and 0 <= scores["label_accuracy"] <= 1
    assert sorted(scores["intra_fid_per_label"]) == list(range(10)) and scores["intra_fid"] > 0
    assert scores["intra_fid_n_real"] == {k: 50 for k in range(10)}


def test_sample_inputs_carry_the_requested_labels():
    family = family_for("cgan")
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    balanced, fixed = family.sample_inputs(12, generator=gen()), family.sample_inputs(12, generator=gen(), labels=7)
    assert balanced["y"].tolist() == [i % 10 for i in range(12)] and fixed["y"].tolist() == [7] * 12
    assert torch.equal(balanced["z"], fixed["z"])  # the labels do not change the noise
    given = family.sample_inputs(3, labels=torch.tensor([2, 0, 9]))
    assert given["y"].tolist() == [2, 0, 9]
    with pytest.raises(ValueError, match="class indices"):
        family.sample_inputs(2, labels=10)


def nearest_mode(modes: torch.Tensor):
    """A stand-in classifier for 2-D points: logits = minus the distance to each mode."""
    return lambda points: -torch.cdist(points.float(), modes.float())


class IgnoresLabels:
    """A module whose samples ignore the requested labels (it draws them at random instead): the control."""

    def __init__(self, module):
        self.module, self.family = module, module.family

    def parameters(self):
        return self.module.parameters()

    def generate(self, inputs, use_ema=True):
        y = torch.randint(self.family.num_classes, inputs["y"].shape, generator=torch.Generator().manual_seed(1))
        return self.module.generate({**inputs, "y": y}, use_ema=use_ema)


@pytest.mark.slow
def test_trained_cgan_puts_label_k_on_mode_k_of_the_ring(make_cfg):
    cfg = make_cfg("experiment=gaussian_ring_cgan", "max_iterations=200", "metrics.every_n_iterations=0",
                   "metrics.n_samples=1600", "callbacks.samples.every_n_iterations=0", "data.n_samples=20000")
    result = train(cfg)
    module = load_module(result["last_checkpoint"])
    classify = nearest_mode(GaussianMixtureDataModule(kind="ring").modes)

    trained = label_accuracy(module, classify, n_per_label=200)
    # the metrics callback logged the same numbers at the end of training (200 per label, seed 0)
    logged = report.read_metrics(result["output_dir"])[-1]
    assert logged["metrics/label_accuracy"] == pytest.approx(trained["label_accuracy"])
    assert logged["metrics/label_accuracy_min"] == pytest.approx(trained["label_accuracy_min"])
    control = label_accuracy(IgnoresLabels(module), classify, n_per_label=200)
    # chance is 1/8: the trained generator obeys the labels, the one that ignores them does not
    assert trained["label_accuracy"] >= 0.8, trained
    assert sum(v > 0.5 for v in trained["label_accuracy_per_label"].values()) >= 6, trained
    assert control["label_accuracy"] < 0.3, control
    assert sum(v > 0.5 for v in control["label_accuracy_per_label"].values()) <= 1, control


@pytest.mark.slow
def test_trained_infogan_categorical_code_picks_out_the_ring_modes(tmp_path):
    """An MLP InfoGAN with an 8-way code on the ring: each code value should come to mean one mode, which needs
    L_I to reach the generator through Q (with info_weight=0 the code means nothing)."""
    modes = GaussianMixtureDataModule(kind="ring").modes

    def code_accuracy(*extra):
        # (compose_cfg, not make_cfg: make_cfg would add the DCGAN backbone's tiny widths for model=infogan)
        cfg = compose_cfg(["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
                           "experiment=gaussian_ring", "model=infogan", "model/backbone=fcgan", "max_iterations=250",
                           "model.generator.hidden=[128,128,128]", "model.generator.norm=none",
                           "model.discriminator.hidden=[128,128,128]", "model.latent_dim=4",
                           "model.categorical_dim=8", "model.continuous_dim=1", "metrics.every_n_iterations=0",
                           "metrics.n_samples=800", "callbacks.samples.every_n_iterations=0",
                           "data.n_samples=20000", *extra], tmp_path / f"run{len(extra)}")
        result = train(cfg)
        scores = infogan_generated_code_accuracy(load_module(result["last_checkpoint"]), nearest_mode(modes),
                                                 n_per_code=100)
        # logged by the metrics callback at the end of training: the same 100 samples per code
        logged = report.read_metrics(result["output_dir"])[-1]["metrics/generated_code_accuracy"]
        assert logged == pytest.approx(scores["generated_code_accuracy"])
        return scores

    trained = code_accuracy()
    assert trained["generated_code_accuracy"] >= 0.7, trained  # chance: 1/8; 0.86-1.0 over seeds 0-3
    control = code_accuracy("model.info_weight=0")
    assert control["generated_code_accuracy"] < 0.5, control


# --- grids ---------------------------------------------------------------------------------------------------------
def test_conditional_grid_has_one_row_per_class_named_in_the_caption():
    family = family_for("cgan")
    grid = family.grid_inputs(64, nrow=8, generator=torch.Generator().manual_seed(0), class_names=FMNIST_CLASSES)
    y, z = grid.inputs["y"], grid.inputs["z"]
    assert grid.nrow == 8 and y.tolist() == [k for k in range(10) for _ in range(8)]
    assert torch.equal(z.view(10, 8, -1)[0], z.view(10, 8, -1)[9])  # the same noise down each column
    assert grid.caption.index("0: T-shirt/top") < grid.caption.index("1: Trouser") < grid.caption.index("9: Ankle boot")
    images = family.generate(grid.inputs)
    assert to_uint8_grid(images, grid.nrow).shape == (3, 10 * 30 + 2, 8 * 30 + 2)


def test_sample_grid_logs_the_class_names_with_the_image(make_cfg, tmp_path):
    cfg = make_cfg("model=cgan", "data.subset=16")
    module = build_module(cfg, instantiate(cfg.data))
    logged = []
    logger = SimpleNamespace(log_image=lambda **kw: logged.append(kw))
    trainer = SimpleNamespace(loggers=[logger], datamodule=SimpleNamespace(class_names=FMNIST_CLASSES))
    SampleGrid(str(tmp_path / "samples"), nrow=4).sample(trainer, module)
    assert logged[0]["images"][0].shape == (10 * 30 + 2, 4 * 30 + 2, 3)
    assert logged[0]["caption"][0].startswith("iteration 0: one row per class (0: T-shirt/top, 1: Trouser")
    assert (tmp_path / "samples" / "iter_0000000.png").is_file()


def test_unconditional_grid_is_unchanged():
    family = family_for("infogan", (2,), None, "model/backbone=fcgan")  # 2-D points: no traversal
    grid = family.grid_inputs(100, nrow=8, generator=torch.Generator().manual_seed(0))
    assert grid.nrow == 8 and grid.caption is None and grid.inputs["z"].shape == (100, 16)
    gan = build_family({"_target_": "gan_lightning.families.gan.GAN", "latent_dim": 4,
                        "generator": {"_target_": "gan_lightning.networks.fc.Generator", "_partial_": True},
                        "discriminator": {"_target_": "gan_lightning.networks.fc.Discriminator", "_partial_": True}},
                       {"_target_": "gan_lightning.losses.NonSaturating"}, {"shape": [2]})
    default = gan.grid_inputs(64, nrow=8, generator=torch.Generator().manual_seed(3))
    assert default.nrow == 8 and default.caption is None
    assert torch.equal(default.inputs["z"], gan.sample_inputs(64, generator=torch.Generator().manual_seed(3))["z"])


def test_infogan_traversal_grid():
    family = family_for("infogan")  # categorical 10, continuous 2
    grid = family.grid_inputs(64, nrow=8, generator=torch.Generator().manual_seed(0))
    c, c_cont, z = grid.inputs["c"], grid.inputs["c_cont"], grid.inputs["z"]
    assert grid.nrow == 8 and len(c) == 2 * 10 * 8  # a block of 10 rows per continuous code
    assert c.view(2, 10, 8).eq(torch.arange(10).view(1, 10, 1)).all()  # rows: the categorical value
    sweep = torch.linspace(-2, 2, 8)
    blocks = c_cont.view(2, 10, 8, 2)
    assert torch.equal(blocks[0, :, :, 0], sweep.expand(10, 8)) and blocks[0, :, :, 1].eq(0).all()
    assert torch.equal(blocks[1, :, :, 1], sweep.expand(10, 8)) and blocks[1, :, :, 0].eq(0).all()
    assert z.eq(z[0]).all()  # one noise vector throughout
    assert "categorical code 0-9" in grid.caption and "c_cont[1]" in grid.caption
    assert family.generate(grid.inputs).shape == (160, 1, 28, 28)


# --- metrics ---------------------------------------------------------------------------------------------------------
def test_best_assignment_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):  # the assignment's accuracy is the best over every one-to-one map (brute force)
        p, t = torch.randint(1, 6, (2,), generator=gen).tolist()
        pred, target = torch.randint(p, (40,), generator=gen), torch.randint(t, (40,), generator=gen)
        accuracy, mapping = best_assignment_accuracy(pred, target, p, t)
        assert len(set(mapping.values())) == len(mapping) == min(p, t)
        groups, classes = range(p), range(t)
        best = max(sum(int(((pred == g) & (target == c)).sum()) for g, c in zip(order, classes))
                   for order in itertools.permutations(groups, min(p, t))) if p >= t else \
            max(sum(int(((pred == g) & (target == c)).sum()) for g, c in zip(groups, order))
                for order in itertools.permutations(classes, min(p, t)))
        assert accuracy == best / 40

    labels = torch.randint(10, (500,), generator=gen)
    perm = torch.randperm(10, generator=gen)
    accuracy, mapping = best_assignment_accuracy(perm[labels], labels)
    assert accuracy == 1.0 and all(perm[mapping_class] == code for code, mapping_class in mapping.items())
    assert best_assignment_accuracy(torch.zeros(500, dtype=torch.long), labels, 10, 10)[0] < 0.2
    assert best_assignment_accuracy(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1]))[0] == 0.5


class StandIn:
    """A stand-in GANModule: ``generate`` makes 'images' that say which label / code they were asked for."""

    def __init__(self, family, fn):
        self.family, self.fn = family, fn

    def parameters(self):
        return self.family.parameters()

    def generate(self, inputs, use_ema=True):
        return self.fn(inputs)


def test_label_accuracy_and_intra_class_fid_with_stand_ins():
    family = family_for("cgan", (2,), 4, "model/backbone=fcgan")
    modes = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])
    gen = torch.Generator().manual_seed(0)
    obeys = StandIn(family, lambda inputs: modes[inputs["y"]] + 0.1 * torch.randn(len(inputs["y"]), 2, generator=gen))
    # class 3 comes out as class 0
    swaps = StandIn(family, lambda inputs: modes[inputs["y"] % 3] + 0.1 * torch.randn(len(inputs["y"]), 2,
                                                                                        generator=gen))
    classify = nearest_mode(modes)
    good = label_accuracy(obeys, classify, n_per_label=50, batch_size=20)
    assert good["label_accuracy"] == 1.0 and good["label_accuracy_per_label"] == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    bad = label_accuracy(swaps, classify, n_per_label=50, labels=[0, 3])
    assert bad["label_accuracy_per_label"] == {0: 1.0, 3: 0.0}
    assert bad["label_accuracy"] == 0.5 and bad["label_accuracy_min"] == 0.0

    real_y = torch.arange(400) % 4
    real_x = modes[real_y] + 0.1 * torch.randn(400, 2, generator=gen)
    identity = lambda x: x  # noqa: E731
    fid_good = intra_class_fid(obeys, identity, real_x, real_y, n_per_label=100)
    fid_bad = intra_class_fid(swaps, identity, real_x, real_y, n_per_label=100)
    assert fid_good["intra_fid_n_real"] == {0: 100, 1: 100, 2: 100, 3: 100}
    assert fid_good["intra_fid"] < 0.1 and fid_good["intra_fid_max"] < 0.1
    assert fid_bad["intra_fid_per_label"][3] > 5 and fid_bad["intra_fid_per_label"][0] < 0.1

    with pytest.raises(ValueError, match="not class-conditional"):
        label_accuracy(StandIn(family_for("infogan"), identity), classify)


def test_infogan_code_accuracy_with_stand_ins():
    family = family_for("infogan")
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))  # code perm[k] means class k
    labels = torch.arange(200) % 10
    images = torch.zeros(200, 1, 28, 28)
    images[:, 0, 0, 0] = labels.float()  # the class, written in a pixel
    family.infer_codes = lambda x: (F.one_hot(perm[x[:, 0, 0, 0].round().long()], 10).float(), None)
    real = infogan_code_accuracy(family, images, labels)
    assert real["code_accuracy"] == 1.0 and all(perm[c] == code for code, c in real["code_to_class"].items())

    inverse = torch.argsort(perm)
    module = StandIn(family, lambda inputs: F.one_hot(inverse[inputs["c"]], 10).float())  # code c -> class inverse[c]
    generated = infogan_generated_code_accuracy(module, lambda x: x, n_per_code=20)
    assert generated["generated_code_accuracy"] == 1.0
    assert generated["generated_code_to_class"] == {c: int(inverse[c]) for c in range(10)}


def test_label_accuracy_with_the_domain_classifier_on_real_images(fmnist_root):
    from gan_lightning.data import TorchvisionDataModule
    from gan_lightning.metrics import domain
    from gan_lightning.metrics.conditional import DomainScorer

    if domain.shipped_weights("fashion_mnist") is None:
        pytest.skip("no shipped Fashion-MNIST domain classifier")
    images, labels = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root)).load_split("test")
    scorer = DomainScorer("fashion_mnist")
    family = family_for("cgan")
    by_class = {k: images[labels == k][:100].float().div(127.5).sub(1) for k in range(10)}
    # a 'generator' that returns real test images of the requested class: the classifier's own accuracy
    real = StandIn(family, lambda inputs: by_class[int(inputs["y"][0])][: len(inputs["y"])])
    result = label_accuracy(real, scorer.classify, n_per_label=100)
    assert result["label_accuracy"] > 0.85, result
    fid = intra_class_fid(real, scorer.features, images[:2000], labels[:2000], labels=[1, 8], n_per_label=100)
    assert all(v >= 0 and math.isfinite(v) for v in fid["intra_fid_per_label"].values())


def test_build_family_without_classes_is_a_value_error():
    with pytest.raises(ValueError, match="cgan is class-conditional but this data has no labels"):
        CGAN(dcgan.Generator, dcgan.Discriminator, NonSaturating(), DataSpec({"x": (1, 28, 28)}))
    with pytest.raises(UserError, match="^model: conditioning must be one of projection, concat"):
        family_for("cgan", (1, 28, 28), 10, "model.conditioning=nope")
    # the MLP backbone builds for 2-D data, and CGAN with it is what experiment=gaussian_ring_cgan trains
    assert isinstance(family_for("cgan", (2,), 8, "model/backbone=fcgan").generator.backbone, fc.Generator)


@pytest.mark.parametrize("model,override,needle", [
    ("cgan", "model.embed_dim=0", "embed_dim must be a positive integer; got 0"),
    ("cgan", "model.embed_dim=abc", "embed_dim must be a positive integer; got 'abc'"),
    ("acgan", "model.aux_weight=-1", "aux_weight must be a number >= 0; got -1"),
    ("infogan", "model.categorical_dim=0", "categorical_dim must be an integer >= 2; got 0"),
    ("infogan", "model.info_weight=lots", "info_weight must be a number >= 0; got 'lots'"),
])
def test_bad_model_options_are_one_line_user_errors(model, override, needle):
    with pytest.raises(UserError, match=f"^model: {needle}$"):
        family_for(model, (1, 28, 28), 10, override)


class IgnoresNoise(torch.nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.inner = generator

    def forward(self, z, y):
        return self.inner(torch.zeros_like(z), y)


def test_the_diversity_term_punishes_a_generator_that_ignores_the_noise():
    family = family_for("cgan", (1, 28, 28), 10, "model.diversity_weight=1")
    batch = {"x": torch.zeros(16, 1, 28, 28), "y": torch.arange(16) % 10}
    torch.manual_seed(0)
    fake, y, term = family.generator_fakes(batch, logs := {})
    assert fake.shape == (16, 1, 28, 28) and torch.equal(y, batch["y"])
    assert term.item() == pytest.approx(1 / (logs["diversity"].item() + 1e-5), rel=1e-4)

    generator = family.generator
    family.generator = IgnoresNoise(generator)  # the same image whatever the noise
    _, _, ignoring = family.generator_fakes(batch, {})
    assert ignoring.item() > 100 * term.item()
    term.backward()  # and it trains the generator
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    no_term = family_for("cgan", (1, 28, 28), 10)
    assert no_term.generator_fakes(batch, {})[2].item() == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("module", ["gan_lightning.metrics.conditional", "gan_lightning.metrics_conditional"])
def test_the_conditional_metrics_command_answers_under_its_new_and_its_documented_name(module, tmp_path):
    import subprocess
    import sys

    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    done = subprocess.run([sys.executable, "-m", module, str(junk)], capture_output=True, text=True, timeout=HANG_LIMIT_S)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "is not a readable checkpoint" in done.stderr
