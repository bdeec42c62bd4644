"""The speed options change how the step runs, never what it computes: channels-last memory format, fused Adam,
torch.compile, and training data kept on the training device."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.data import TensorBatchLoader, data_device
from gan_lightning.errors import UserError
from gan_lightning.train.build import build_module
from gan_lightning.train.fit import train

COMMON = ["data.batch_size=16", "max_iterations=4", "callbacks.samples.every_n_iterations=0", "metrics=none"]


def trained_weights(make_cfg, tmp_path, name: str, *overrides: str) -> dict[str, torch.Tensor]:
    result = train(make_cfg(*COMMON, *overrides, output_dir=tmp_path / name))
    assert result["iteration"] == 4
    return read_checkpoint(result["last_checkpoint"])["state_dict"]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()  # checkpoints stay interchangeable
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=atol), key


def assert_trained(before: dict, after: dict) -> None:
    moved = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any(k.startswith("family.generator.") for k in moved) and any(
        k.startswith("family.discriminator.") for k in moved)


def initial_weights(make_cfg, tmp_path, *overrides: str) -> dict[str, torch.Tensor]:
    cfg = make_cfg(*COMMON, *overrides, output_dir=tmp_path / "init")
    pl.seed_everything(cfg.seed, verbose=False)
    return {k: v.clone() for k, v in build_module(cfg, instantiate(cfg.data)).state_dict().items()}


def test_channels_last_trains_the_same_weights_in_channels_last_layout(make_cfg, tmp_path):
    plain = trained_weights(make_cfg, tmp_path, "plain", "model=dcgan")
    fast = trained_weights(make_cfg, tmp_path, "cl", "model=dcgan", "model.channels_last=true")
    init = initial_weights(make_cfg, tmp_path, "model=dcgan")
    assert_trained(init, fast)
    # The layouts sum in different orders, and by how much that shows after a few Adam steps depends on the thread
    # count (3e-6 with 2 threads, 2e-5 with 1, as under `make test`'s workers): within a tenth of how far training
    # moved each tensor. A layout that computed something else would differ by about the whole movement.
    assert plain.keys() == fast.keys()
    for key in plain:
        moved = (plain[key].float() - init[key].float()).abs().max()
        assert (plain[key].float() - fast[key].float()).abs().max() <= 0.1 * moved + 1e-7, key

    cfg = make_cfg(*COMMON, "model=dcgan", "model.channels_last=true", "max_iterations=1")
    module = build_module(cfg, instantiate(cfg.data))
    module.setup("fit")
    convs = [p for p in module.family.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)  # really a different layout


def test_fused_adam_trains_the_same_weights(make_cfg, tmp_path):
    plain = trained_weights(make_cfg, tmp_path, "plain", "model=dcgan")
    fused = trained_weights(make_cfg, tmp_path, "fused", "model=dcgan", "optim.generator.fused=true",
                            "optim.discriminator.fused=true")
    assert_trained(initial_weights(make_cfg, tmp_path, "model=dcgan"), fused)
    assert_same_weights(plain, fused, atol=1e-5)


@pytest.mark.slow
def test_compiled_networks_train_the_same_weights_with_the_same_checkpoint_keys(make_cfg, tmp_path):
    torch._dynamo.reset()
    ring = ["experiment=gaussian_ring", "model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]"]
    plain = trained_weights(make_cfg, tmp_path, "plain", *ring)
    compiled = trained_weights(make_cfg, tmp_path, "compiled", *ring, "model.compile=true")
    assert_trained(initial_weights(make_cfg, tmp_path, *ring), compiled)
    assert_same_weights(plain, compiled, atol=1e-4)
    assert not any("_orig_mod" in key for key in compiled)


def test_compile_wraps_the_trained_networks_only(make_cfg):
    cfg = make_cfg(*COMMON, "experiment=gaussian_ring", "model.compile=reduce-overhead")
    module = build_module(cfg, instantiate(cfg.data))
    module.setup("fit")
    assert module.family.generator._compiled_call_impl is not None
    assert module.family.discriminator._compiled_call_impl is not None
    assert module.generator_ema._compiled_call_impl is None  # sampling runs eagerly


def test_batches_are_cut_and_normalised_on_the_loader_device():
    x = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(40) % 10
    host = TensorBatchLoader(x, y, batch_size=8, seed=3)
    moved = TensorBatchLoader(x, y, batch_size=8, seed=3, device="meta")  # a device other than the CPU
    assert moved.x.device.type == "meta" and moved.x.dtype == torch.uint8  # held as uint8, moved once
    for a, b in zip(host, moved):
        assert b["x"].device.type == "meta" and b["y"].device.type == "meta"
        assert (b["x"].dtype, b["x"].shape) == (a["x"].dtype, a["x"].shape) == (torch.float32, (8, 1, 4, 4))
    assert a["x"].min() >= -1 and a["x"].max() <= 1


def test_data_device_auto_uses_the_gpu_only_when_the_data_fits(monkeypatch):
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 2**30, 80 * 2**30))
    assert data_device("auto", gpu, 47_000_000) == gpu
    assert data_device("auto", gpu, 3 * 2**30) == torch.device("cpu")  # more than a quarter of the free memory
    assert data_device("cpu", gpu, 1000) == torch.device("cpu")
    assert data_device("auto", torch.device("cpu"), 1000) == torch.device("cpu")
    with pytest.raises(UserError, match="data.device"):
        data_device("gpu", gpu, 1000)
