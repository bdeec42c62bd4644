"""The contract every GAN family must pass (today's, and the coming ones through the same seam): each phase
changes only its player's parameters; a run resumed from the middle of an iteration ends exactly where an
uninterrupted one does; sampling works from noise or from a data source; bad options are one line.

``InvertTranslation`` (tests/helpers/toy.py) stands in for the families that generate from data: a generator-only
warm-up, the generator's output reused by the discriminator, lazy R1 as its own phase, paired metrics."""

from __future__ import annotations

import functools
import math

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from gan_lightning.config.entry import precheck
from gan_lightning.core.module import UNBOUNDED_STEPS, GANModule
from gan_lightning.errors import UserError
from gan_lightning.losses import NonSaturating
from gan_lightning.metrics.callback import MetricsCallback
from gan_lightning.metrics.paired import paired_metrics
from gan_lightning.render import panel_grid
from gan_lightning.train.build import build_family, build_module

from .conftest import TINY, compose_cfg
from .helpers.toy import InvertPairs, InvertTranslation

FAMILIES = ["fcgan", "dcgan", "cgan", "self_conditioned", "acgan", "infogan", "srresnet", "srgan", "pix2pix", "pix2pix_l1", "cyclegan",
            "stylegan2", "inpaint", "invert"]
FROM_DATA = ("invert", "srresnet", "srgan", "pix2pix", "pix2pix_l1", "cyclegan", "inpaint")  # translate held-out inputs


def make_run(name: str, tmp_path, fmnist_root, n_critic: int = 2, iterations: int = 3, **toy):
    """(module, datamodule) for a family: the real configs (tiny networks, 256 Fashion-MNIST images) or the toy."""
    pl.seed_everything(0, verbose=False)
    if name == "invert":
        dm = InvertPairs(n=64, batch_size=8)
        family = InvertTranslation(NonSaturating(), dm.spec, **{"warmup": 1, "r1_interval": 2, **toy})
        adam = functools.partial(torch.optim.Adam, lr=2e-3, betas=(0.5, 0.99))
        module = GANModule(family, {"generator": adam, "discriminator": adam}, n_critic=n_critic, ema_decay=0.9,
                           max_iterations=iterations)
        return module, dm
    cfg = compose_cfg(["trainer=cpu", "logger=none", f"model={name}", f"optim.n_critic={n_critic}",
                       f"max_iterations={iterations}", f"data.root={fmnist_root}", "data.subset=256",
                       "data.batch_size=16", *TINY[name]], tmp_path / "run")
    dm = instantiate(cfg.data)
    return build_module(cfg, dm), dm


def fit(module, dm, ckpt_path=None, callbacks=(), root=None):
    """Train ``module``; anything the callbacks write (metrics.jsonl) goes under ``root``, never the checkout."""
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, max_steps=UNBOUNDED_STEPS, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks),
                         default_root_dir=root)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    return trainer


@pytest.mark.parametrize("name", FAMILIES)
def test_each_phase_changes_only_its_players_parameters(tmp_path, fmnist_root, name):
    module, dm = make_run(name, tmp_path, fmnist_root, iterations=3)
    family = module.family
    owner = {id(p): player for player in family.players for p in family.parameters_of(player)}
    named = dict(module.named_parameters())
    steps: list[tuple[str, set[str]]] = []
    original = module._optimize

    def spy(phase, batch, ctx):
        before = {k: p.detach().clone() for k, p in named.items()}
        result = original(phase, batch, ctx)
        changed = {k for k, p in named.items() if not torch.equal(before[k], p)}
        steps.append((phase.name, changed, phase.player, result.loss is None))
        return result

    module._optimize = spy
    fit(module, dm)
    assert module.iteration == 3
    assert {s[0] for s in steps} == {p.name for p in module.phases}, "every phase ran"
    for phase, changed, player, skipped in steps:
        assert changed or skipped, f"phase {phase} changed nothing"
        strangers = {k for k in changed if owner.get(id(named[k])) != player}
        assert not strangers, f"phase {phase} ({player}) changed {sorted(strangers)[:3]}"


@pytest.mark.parametrize("name", FAMILIES)
def test_resume_from_the_middle_of_an_iteration_is_exact(tmp_path, fmnist_root, name):
    full, dm = make_run(name, tmp_path / "a", fmnist_root)
    fit(full, dm)

    class StopMidIteration(pl.Callback):  # after batch 3 of 6: iteration 1, its first of 2 batches done
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.fit_loop.total_batch_idx == 2:
                assert pl_module._batch_in_iteration == 1
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                trainer.should_stop = True

    first, dm = make_run(name, tmp_path / "b", fmnist_root)
    fit(first, dm, callbacks=[StopMidIteration()])
    assert first.iteration == 1
    resumed, dm = make_run(name, tmp_path / "c", fmnist_root)
    fit(resumed, dm, ckpt_path=str(tmp_path / "mid.ckpt"))
    assert resumed.iteration == full.iteration == 3
    expected, got = full.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


@pytest.mark.parametrize("name", FAMILIES)
def test_sampling_from_noise_or_from_a_source(tmp_path, fmnist_root, name):
    module, dm = make_run(name, tmp_path, fmnist_root)
    family = module.family
    dm.setup()
    source = dm.fixed_batch(6, split="test", seed=3)
    assert dm.fixed_batch(6, split="test", seed=3).keys() == source.keys()
    assert all(torch.equal(v, dm.fixed_batch(6, split="test", seed=3)[k]) for k, v in source.items())

    def draw(seed, src=source):
        inputs = family.sample_inputs(6, generator=torch.Generator().manual_seed(seed), source=src)
        return inputs, module.generate(inputs)

    inputs, samples = draw(1)
    assert samples.shape == (6, *family.spec.shape)
    assert torch.equal(samples, draw(1)[1])  # the same inputs, the same samples (eval mode)
    panels = family.visuals(inputs, samples)
    images, nrow = panel_grid(panels, 8)
    assert len(images) == 6 * len(panels)
    if family.needs_source:
        expected = {"input", "output", "target"} if family.paired else {"A", "G(A)", "F(G(A))", "B", "F(B)"}
        assert expected <= set(panels) and nrow == -(-8 // len(panels)) * len(panels)
        other = dm.fixed_batch(6, split="test", seed=4)
        assert not torch.equal(samples, draw(1, other)[1]), "the outputs do not depend on the source"
        assert torch.equal(samples, draw(2)[1]), "a translation from the same source depends on the noise seed"
    else:
        assert list(panels) == ["samples"] and nrow == 8
        assert not torch.equal(samples, draw(2)[1])


@pytest.mark.parametrize("name", [n for n in FAMILIES if n not in FROM_DATA])  # from noise
def test_a_bad_model_option_is_one_line(name):
    with pytest.raises(UserError) as err:
        precheck([f"model={name}", "model.latent_dim=0"], "train")
    assert str(err.value) == "model.latent_dim must be a positive integer; got 0"


def test_a_bad_option_of_a_family_is_one_line_from_its_constructor():
    spec = InvertPairs().spec
    with pytest.raises(UserError) as err:
        build_family({"_target_": "tests.helpers.toy.InvertTranslation", "warmup": -1},
                     {"_target_": "gan_lightning.losses.NonSaturating"}, spec)
    assert str(err.value) == "model: warmup must be >= 0; got -1"


# --- the schedule features the coming families use, on the toy ---------------------------------------------------
def test_warm_up_takes_no_discriminator_step_then_lazy_r1_keeps_its_rhythm(tmp_path, fmnist_root):
    module, dm = make_run("invert", tmp_path, fmnist_root, n_critic=1, iterations=7, warmup=3, r1_interval=2)
    ran: list[tuple[int, str, bool]] = []
    original = module._optimize

    def spy(phase, batch, ctx):
        result = original(phase, batch, ctx)
        ran.append((ctx.iteration, phase.name, bool(ctx.scratch.get("reused"))))
        return result

    module._optimize = spy
    trainer = fit(module, dm)
    assert [(i, p) for i, p, _ in ran if i < 3] == [(0, "warmup"), (1, "warmup"), (2, "warmup")]
    after = [(i, p) for i, p, _ in ran if i >= 3]
    assert after == [(3, "G"), (3, "D"), (4, "G"), (4, "D"), (4, "Dreg"), (5, "G"), (5, "D"), (6, "G"), (6, "D"),
                     (6, "Dreg")]  # R1 on every 2nd discriminator occasion (4, 6), counted from iteration 0
    assert all(reused for _, p, reused in ran if p == "D"), "D did not reuse the generator's output"
    assert trainer.global_step == len(ran)  # one optimizer step per phase that ran, none for skipped ones
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-3)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-3 * 2 / 3)  # c = r / (r + 1)
    assert opt_d.param_groups[0]["betas"] == pytest.approx((0.5 ** (2 / 3), 0.99 ** (2 / 3)))


@pytest.mark.slow
def test_a_translation_family_learns_and_its_paired_metrics_are_logged(tmp_path, fmnist_root):
    module, dm = make_run("invert", tmp_path, fmnist_root, n_critic=1, iterations=150, warmup=50)
    metrics = MetricsCallback(every_n_iterations=75, n_samples=32, features="auto", batch_size=16)
    dm.setup()
    held_out = dm.fixed_batch(32, split="test", seed=0)
    before = paired_metrics(module.generate(module.family.sample_inputs(32, source=held_out)), held_out["b"])
    fit(module, dm, callbacks=[metrics], root=tmp_path)
    after = metrics.latest
    assert (tmp_path / "metrics.jsonl").is_file()
    assert metrics.evaluated_iteration == 150 and {"psnr", "ssim", "l1"} <= set(after)
    assert after["psnr"] > before["psnr"] + 3 and after["l1"] < before["l1"] / 2, (before, after)


def test_paired_metrics_rank_good_over_bad():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(8, 3, 16, 16, generator=gen) * 2 - 1
    close = (target + 0.05 * torch.randn(8, 3, 16, 16, generator=gen)).clamp(-1, 1)
    far = (target + 0.5 * torch.randn(8, 3, 16, 16, generator=gen)).clamp(-1, 1)
    exact, good, bad = (paired_metrics(x, target) for x in (target, close, far))
    assert exact["l1"] < 0.01 and exact["ssim"] > 0.99 and exact["psnr"] > 45
    assert exact["psnr"] > good["psnr"] > bad["psnr"] and exact["ssim"] > good["ssim"] > bad["ssim"]
    assert exact["l1"] < good["l1"] < bad["l1"] and math.isfinite(bad["psnr"])


@pytest.mark.parametrize("name", FAMILIES)
def test_every_module_pickles_for_spawned_ddp_processes(tmp_path, fmnist_root, name):
    """DDP's spawn start method sends each process a pickled copy of the module: a phase condition or anything
    else a family holds must pickle (a local function does not)."""
    import pickle

    module, _ = make_run(name, tmp_path, fmnist_root)
    copy = pickle.loads(pickle.dumps(module))
    assert [p.name for p in copy.phases] == [p.name for p in module.phases]
