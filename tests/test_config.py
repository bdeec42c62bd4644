"""Config composition for every option, and one-line errors for bad input on the command line."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from gan_lightning.config import CONF_DIR, group_options, validate
from gan_lightning.errors import UserError
from gan_lightning.train.build import build_module

from .conftest import compose_cfg, run_cli, run_entry

GROUPS = ["model", "data", "loss", "optim", "trainer", "logger", "callbacks", "experiment"]


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes_and_validates(tmp_path, group, option):
    extra = ["data.path=/some/images"] if option == "image_folder" else []
    cfg = compose_cfg([f"{group}={option}", *extra], tmp_path)
    assert cfg.hydra.runtime.choices[group] == option
    validate(cfg)


def test_loss_choice_brings_its_paper_recipe(tmp_path):
    cfg = compose_cfg(["model=dcgan", "loss=wgan_gp"], tmp_path)
    assert (cfg.optim.n_critic, cfg.optim.generator.lr, list(cfg.optim.generator.betas)) == (5, 1e-4, [0.0, 0.9])
    assert cfg.model.discriminator.norm == "layer"
    cfg = compose_cfg(["model=dcgan", "loss=wgan"], tmp_path)
    assert (cfg.optim.n_critic, cfg.optim.discriminator._target_) == (5, "torch.optim.RMSprop")
    cfg = compose_cfg(["model=dcgan", "loss=wgan", "optim=adam"], tmp_path)  # the command line wins
    assert cfg.optim.n_critic == 1
    assert compose_cfg([], tmp_path).optim.n_critic == 1


MODEL_LOSS_PRESETS = [o for o in group_options("experiment") if o.startswith("fashion_mnist/") and "_" in o.split("/")[1]]


def test_there_is_a_preset_for_every_unconditional_model_and_loss():
    assert {p.split("/")[1] for p in MODEL_LOSS_PRESETS} == {
        f"{m}_{l}" for m in ("fcgan", "dcgan") for l in group_options("loss")}


@pytest.mark.parametrize("preset", MODEL_LOSS_PRESETS)
def test_a_preset_is_its_model_and_loss_with_a_tuned_optimizer(tmp_path, preset):
    model, loss = preset.split("/")[1].split("_", 1)
    cfg = compose_cfg([f"experiment={preset}"], tmp_path / "preset")
    recipe = compose_cfg([f"model={model}", f"loss={loss}"], tmp_path / "recipe")  # the paper's settings
    choices = cfg.hydra.runtime.choices
    assert (choices.model, choices.loss, choices.data) == (model, loss, "fashion_mnist")
    assert cfg.model == recipe.model and cfg.loss == recipe.loss  # same networks, same objective
    assert cfg.optim.discriminator._target_ == recipe.optim.discriminator._target_
    assert cfg.optim != recipe.optim  # what the preset tuned
    validate(cfg)


def test_make_train_runs_the_best_preset(tmp_path):
    makefile = (CONF_DIR.parent / "Makefile").read_text()
    assert "EXPERIMENT ?= fashion_mnist/best" in makefile and "experiment=$(EXPERIMENT)" in makefile
    cfg = compose_cfg(["experiment=fashion_mnist/best"], tmp_path)
    assert cfg.hydra.runtime.choices.model == "cgan" and cfg.model.diversity_weight > 0
    validate(cfg)


def test_python_train_py_runs_the_unconditional_recipe_and_model_dcgan_the_paper(tmp_path):
    cfg = compose_cfg([], tmp_path / "default")
    assert cfg.hydra.runtime.choices.model == "self_conditioned" and cfg.hydra.runtime.choices.optim == "adam_fast"
    assert cfg.model.clusters == 100 and cfg.model.diversity_weight == 1.0 and cfg.model.class_norm
    assert cfg.optim.generator.lr == cfg.optim.discriminator.lr == 5e-4 and cfg.optim.n_critic == 1
    assert cfg.model.generator == compose_cfg(["model=cgan"], tmp_path / "cgan").model.generator  # DCGAN networks
    validate(cfg)
    paper = compose_cfg(["model=dcgan"], tmp_path / "paper")
    assert paper.model._target_.endswith("families.gan.GAN") and paper.hydra.runtime.choices.optim == "adam"
    assert paper.optim.generator.lr == paper.optim.discriminator.lr == 2e-4
    assert list(paper.optim.generator.betas) == [0.5, 0.999]


SR_MODELS = ("srgan", "srresnet")  # generate from low-resolution images, not from noise
TRANSLATION_MODELS = ("pix2pix", "pix2pix_l1", "cyclegan", "inpaint", "inpaint_l1")  # translate images


@pytest.mark.parametrize("model", [m for m in group_options("model") if m not in SR_MODELS + TRANSLATION_MODELS])
@pytest.mark.parametrize("data,shape", [
    ("fashion_mnist", (1, 28, 28)),
    ("cifar10", (3, 32, 32)),
    ("mnist data.image_size=64", (1, 64, 64)),
    ("cifar10 data.channels=1 data.image_size=32", (1, 32, 32)),
])
def test_models_build_for_each_image_shape_without_reading_data(tmp_path, model, data, shape):
    name, *extra = data.split()
    cfg = compose_cfg([f"model={model}", f"data={name}", *extra], tmp_path)
    datamodule = instantiate(cfg.data)
    assert datamodule.shape == shape
    module = build_module(cfg, datamodule)
    inputs = module.family.sample_inputs(3)
    assert module.generate(inputs).shape == (3, *shape)
    assert module.family.discriminator(torch.zeros(3, *shape)).shape == (3,)


@pytest.mark.parametrize("model", SR_MODELS)
@pytest.mark.parametrize("data,lr,hr", [("fashion_sr", (1, 7, 7), (1, 28, 28)),
                                        ("fashion_sr data.scale=2", (1, 14, 14), (1, 28, 28)),
                                        ("fashion_sr data.name=cifar10", (3, 8, 8), (3, 32, 32))])
def test_sr_models_build_for_each_scale_without_reading_data(tmp_path, model, data, lr, hr):
    name, *extra = data.split()
    cfg = compose_cfg([f"model={model}", f"data={name}", *extra], tmp_path)
    module = build_module(cfg, instantiate(cfg.data))
    assert module.generate({"lr": torch.zeros(3, *lr)}).shape == (3, *hr)
    assert (module.family.discriminator is None) == (model == "srresnet")


def test_an_sr_model_on_data_without_low_resolution_inputs_is_a_user_error(tmp_path):
    cfg = compose_cfg(["model=srgan", "data=fashion_mnist"], tmp_path)
    with pytest.raises(UserError, match="use data=fashion_sr or data=sr_folder"):
        build_module(cfg, instantiate(cfg.data))


def test_dcgan_on_points_is_a_user_error(tmp_path):
    cfg = compose_cfg(["model=dcgan", "data=gaussian_mixture"], tmp_path)
    with pytest.raises(UserError, match="use model=fcgan"):
        build_module(cfg, instantiate(cfg.data))


def assert_one_line_error(proc, *needles):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args,needles", [
    (["model=nope"], ["unknown model 'nope'", "valid options: acgan, cgan, ", "dcgan", "pix2pix", "stylegan2"]),
    (["-m", "loss=hinge,nope"], ["unknown loss 'nope'", "non_saturating", "wgan_gp"]),
    (["data=imagenet"], ["unknown data 'imagenet'", "fashion_mnist"]),
    (["data.batch_size=-4"], ["data.batch_size must be a positive integer; got -4"]),
    (["data.batch_size=abc"], ["data.batch_size must be a positive integer; got 'abc'"]),
    (["model.latent_dim=0"], ["model.latent_dim must be a positive integer; got 0"]),
    (["optim.generator.lr=-0.001"], ["optim.generator.lr must be a positive number"]),
    (["module.ema_decay=1.5"], ["module.ema_decay must be a number in [0, 1)"]),
    (["data.batch_sz=3"], ["data.batch_sz"]),
    (["model=cgan", "model.conditioning=film"], ["model.conditioning must be projection or concat; got 'film'"]),
    (["model=infogan", "model.categorical_dim=1"], ["model.categorical_dim must be an integer >= 2; got 1"]),
    (["model=acgan", "model.aux_weight=-1"], ["model.aux_weight must be a number >= 0; got -1"]),
    (["model.compile=fast"], ["model.compile must be false, true or a torch.compile mode", "reduce-overhead"]),
    (["loss=wgan_gp", "model.compile=true"], ["model.compile can't train with a gradient penalty"]),
    (["data.device=gpu"], ["data.device must be auto or cpu; got 'gpu'"]),
    (["optim.generator.fused=yes"], ["optim.generator.fused must be true, false or null"]),
    (["model._target_=os.system"], ["refusing to instantiate 'os.system'"]),
    (["ckpt_path=/no/such.ckpt"], ["no such checkpoint file"]),
])
@pytest.mark.slow
def test_bad_command_lines_fail_with_one_line(tmp_path, args, needles):
    run_dir = tmp_path / "run"
    proc = run_cli("train.py", *args, f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   "logger=none", "trainer=cpu")
    assert_one_line_error(proc, *needles)
    assert not run_dir.exists() and not (tmp_path / "sweep").exists()  # nothing written


@pytest.mark.slow
def test_missing_data_says_how_to_get_it(tmp_path):
    proc = run_cli("train.py", "data=mnist", f"data.root={tmp_path / 'empty'}", "data.download=false",
                   f"hydra.run.dir={tmp_path / 'run'}", "logger=none", "trainer=cpu")
    assert_one_line_error(proc, "data.root")
    assert not (tmp_path / "run").exists()  # the rejected run leaves no directory behind


def test_generate_rejects_a_foreign_file(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint" * 10)
    proc = run_entry("generate.py", f"ckpt={junk}", f"out={tmp_path / 's.npz'}")
    assert_one_line_error(proc, "not a readable checkpoint")
    torch.save({"state_dict": {}}, junk)
    proc = run_entry("generate.py", f"ckpt={junk}", f"out={tmp_path / 's.npz'}")
    assert_one_line_error(proc, "not a gan_lightning checkpoint")
    assert not (tmp_path / "s.npz").exists()
    proc = run_entry("generate.py", f"out={tmp_path / 's.npz'}")
    assert_one_line_error(proc, "ckpt")


@pytest.mark.parametrize("model,data,shape", [
    ("pix2pix", "fashion_edges", (1, 28, 28)),
    ("pix2pix_l1", "fashion_edges", (1, 28, 28)),
    ("cyclegan", "fashion_domains", (1, 28, 28)),
    ("pix2pix", "fashion_edges data.name=cifar10", (3, 32, 32)),
    ("cyclegan", "fashion_domains data.name=cifar10 data.a=cat data.b=dog", (3, 32, 32)),
])
def test_translation_models_build_for_their_data_without_reading_it(tmp_path, model, data, shape):
    name, *extra = data.split()
    cfg = compose_cfg([f"model={model}", f"data={name}", *extra], tmp_path)
    module = build_module(cfg, instantiate(cfg.data))
    source = module.family.spec.shapes[module.family.spec.source]
    assert module.generate({"a": torch.zeros(2, *source)}).shape == (2, *shape)
    assert (module.family.discriminator is None) == (model == "pix2pix_l1")
