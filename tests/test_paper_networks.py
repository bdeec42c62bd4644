"""The papers' presets (conf/experiment/*/paper*.yaml) build the authors' networks and recipes.

Each preset is composed as ``train.py`` composes it, its data module gives the batch layout (from the config: the
tiny folders are only listed), and the family is built as a run builds it. The parameter counts are the authors'
networks' (pytorch-CycleGAN-and-pix2pix at 256 px, the SRGAN paper's discriminator at 96 px, stylegan2-ada-pytorch
at paper256): a preset or a network that drifts from them fails here. Nothing is trained and no 256-px network
runs forward.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_lightning.errors import UserError
from gan_lightning.losses import LeastSquares, NonSaturating
from gan_lightning.train.build import build_family, instantiate_or_user_error
from gan_lightning.train.schedules import ConstantThenLinear

from .conftest import compose_cfg
from .helpers.folders import write_image_folders


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    return write_image_folders(tmp_path_factory.mktemp("folders"))


@pytest.fixture
def compose(tmp_path, folders):
    def _compose(preset: str, *overrides: str) -> DictConfig:
        return compose_cfg([f"experiment={preset}", f"data.path={folders}", *overrides], tmp_path)

    return _compose


def build(cfg: DictConfig):
    """The family a run of ``cfg`` trains, built for its data module's batches."""
    spec = instantiate_or_user_error(cfg.data).spec
    return build_family(OmegaConf.to_container(cfg.model, resolve=True),
                        OmegaConf.to_container(cfg.loss, resolve=True), spec), spec


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def schedule(cfg: DictConfig, player: str):
    return instantiate(cfg.optim.scheduler[player])(torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0))


def assert_100_plus_100_epochs(cfg: DictConfig, epoch: int) -> None:
    """Adam 2e-4 (0.5, 0.999) for both players, constant for 100 epochs of ``epoch`` iterations, then linearly
    to 0 over the next 100."""
    assert cfg.max_iterations == 200 * epoch
    for player in ("generator", "discriminator"):
        assert (cfg.optim[player].lr, list(cfg.optim[player].betas)) == (2e-4, [0.5, 0.999])
        sched = schedule(cfg, player)
        assert isinstance(sched, ConstantThenLinear) and sched.total == cfg.max_iterations
        assert sched.factor(100 * epoch) == 1.0 > sched.factor(100 * epoch + 1)
        assert sched.factor(150 * epoch) == pytest.approx(0.5, abs=1e-3)
        assert 0 < sched.factor(200 * epoch - 1) < 1e-3


def test_pix2pix_paper_is_the_authors_unet_and_patchgan_at_256_px(compose):
    cfg = compose("pix2pix/paper")
    family, spec = build(cfg)
    assert spec.shapes == {"a": (3, 256, 256), "b": (3, 256, 256)}
    assert parameters(family.generator) == 54_413_955
    assert parameters(family.discriminator) == 2_768_705  # on (a, b): 6 input channels, batch norm
    assert family.discriminator.body[0].in_channels == 6 and family.discriminator.field == 70  # n_layers 3
    dropouts = [m for m in family.generator.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 for m in dropouts)
    assert isinstance(family.loss, NonSaturating) and family.l1_weight == 100.0 and family.conditional
    assert (cfg.data.batch_size, cfg.data.load_size, cfg.data.crop, cfg.data.flip) == (1, 286, 256, True)
    assert cfg.module.ema_decay == 0
    assert_100_plus_100_epochs(cfg, epoch=400)  # facades: 400 training pairs


def test_cyclegan_paper_is_the_authors_resnet_9_and_patchgans_at_256_px(compose):
    cfg = compose("cyclegan/paper")
    family, spec = build(cfg)
    assert spec.shapes == {"a": (3, 256, 256), "b": (3, 256, 256)}
    for generator in (family.generator.ab, family.generator.ba):
        assert parameters(generator) == 11_378_179
    for discriminator in (family.discriminator.a, family.discriminator.b):
        assert parameters(discriminator) == 2_764_737 and discriminator.field == 70  # instance norm, n_layers 3
        assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())
    assert isinstance(family.loss, LeastSquares)
    assert (family.cycle_weight, family.identity_weight) == (10.0, 0.5)
    assert family.pool_a.size == family.pool_b.size == 50
    assert (cfg.data.batch_size, cfg.data.load_size, cfg.data.crop, cfg.data.channels) == (1, 286, 256, 3)
    assert_100_plus_100_epochs(cfg, epoch=1334)  # horse2zebra: the larger domain, 1334 zebras


def test_srgan_paper_is_the_papers_srresnet_and_discriminator_at_96_px(compose):
    cfg = compose("srgan/paper", "model.content.kind=none")  # (the networks; the VGG54 loss needs VGG19 weights)
    family, spec = build(cfg)
    assert spec.shapes == {"lr": (3, 24, 24), "hr": (3, 96, 96)} and cfg.data.batch_size == 16
    d = family.discriminator
    assert parameters(d) == 23_565_505
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7
    dense = [m for m in d.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    assert d(torch.randn(2, 3, 96, 96)).shape == (2,)

    g = family.generator
    assert g.head[0].kernel_size == g.tail.kernel_size == (9, 9) and isinstance(g.head[1], nn.PReLU)
    assert sum(type(m).__name__ == "ResidualBlock" for m in g.body) == 16
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.body.modules()) == 2 * 16 + 1
    assert [m.upscale_factor for m in g.upsample if isinstance(m, nn.PixelShuffle)] == [2, 2]
    with torch.no_grad():  # no bicubic skip: a zero last convolution outputs zeros
        g.tail.weight.zero_()
        g.tail.bias.zero_()
        assert g.eval()(torch.rand(1, 3, 24, 24) * 2 - 1).abs().max() == 0


def test_srgan_paper_recipe_is_vgg54_content_and_the_papers_two_stages(compose):
    cfg = compose("srgan/paper")
    model = cfg.model
    assert (model.content.kind, model.content.layer, model.content_weight) == ("vgg19", "relu5_4", 0.006)
    assert (model.pixel_loss, model.adversarial_weight, cfg.loss._target_) == ("mse", 1e-3,
                                                                               "gan_lightning.losses.NonSaturating")
    assert model.warmup == 1_000_000 and cfg.max_iterations == model.warmup + 200_000
    assert (model.warmup_content_weight, model.gan_pixel_weight) == (0, 0)  # MSE alone, then VGG54 + adversarial
    for player in ("generator", "discriminator"):
        assert (cfg.optim[player].lr, list(cfg.optim[player].betas)) == (1e-4, [0.9, 0.999])
        sched = schedule(cfg, player)
        assert isinstance(sched, torch.optim.lr_scheduler.MultiStepLR) and sched.gamma == 0.1
        assert list(sched.milestones) == [model.warmup + 100_000]
    with pytest.raises(UserError, match="^model.content.weights=None: no such file"):  # the weights are the user's
        build(cfg)


def test_stylegan2_paper256_is_stylegan2_adas_networks_at_256_px(compose):
    cfg = compose("stylegan2/paper256")
    family, spec = build(cfg)
    assert spec.shapes == {"x": (3, 256, 256)} and spec.num_classes is None
    assert parameters(family.generator) == 24_767_458
    assert parameters(family.discriminator) == 24_001_089
    assert cfg.data.batch_size == 64
