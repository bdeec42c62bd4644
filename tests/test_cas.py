"""The classification accuracy score: samples that carry their class score like real data, samples drawn for the
wrong class score near zero, and evaluate.py reports it with its protocol for class-conditional checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_lightning.data import TorchvisionDataModule
from gan_lightning.data.convert import to_float
from gan_lightning.errors import UserError
from gan_lightning.metrics.cas import classification_accuracy_score
from gan_lightning.metrics.evaluation import evaluate
from gan_lightning.train.checkpoints import load_module

DATA = Path(__file__).parent / "data"


class Picker:
    """A stand-in conditional generator that returns held-out real images of the class it is asked for (or, with
    ``shift``, of the next class: samples whose labels lie)."""

    def __init__(self, family, images: torch.Tensor, labels: torch.Tensor, shift: int = 0):
        self.family, self.shift = family, shift
        self.by_class = [images[labels == k] for k in range(family.num_classes)]
        self.used = [0] * family.num_classes

    def parameters(self):
        return iter(())

    def generate(self, inputs: dict, use_ema: bool = True) -> torch.Tensor:
        out = []
        for k in ((inputs["y"] + self.shift) % self.family.num_classes).tolist():
            out.append(self.by_class[k][self.used[k] % len(self.by_class[k])])
            self.used[k] += 1
        return to_float(torch.stack(out))


@pytest.fixture(scope="module")
def fashion(tmp_path_factory, fmnist_root):
    return TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))


@pytest.mark.slow
def test_cas_ranks_samples_that_keep_their_class_over_samples_that_do_not(fashion):
    family = load_module(DATA / "pre_seam_cgan.ckpt").family
    test_x, test_y = fashion.load_split("test")
    pool_x, pool_y = fashion.load_split("train")  # the "samples": real training images of the asked class
    cnn = ("cnn",)  # the primary's architecture alone (the panel's second one: tests/test_panel.py)
    honest = classification_accuracy_score(Picker(family, pool_x, pool_y), fashion, n=1000, epochs=4, seed=1,
                                           architectures=cnn)
    liar = classification_accuracy_score(Picker(family, pool_x, pool_y, shift=1), fashion, n=1000, epochs=4, seed=1,
                                         architectures=cnn)
    good, bad = honest["metrics"], liar["metrics"]
    assert good["cas_real"] == bad["cas_real"] > 0.5  # the yardstick does not depend on the generator
    assert good["cas"] > 0.5 and abs(good["cas"] - good["cas_real"]) < 0.15, good
    assert bad["cas"] < 0.2 and bad["cas_ratio"] < 0.3, bad
    assert honest["protocol"]["n"] == 1000 and honest["protocol"]["epochs"] == 4


@pytest.mark.slow
def test_evaluate_reports_cas_for_a_conditional_checkpoint_and_refuses_it_for_others(fashion, fmnist_root, tmp_path):
    data = {"_target_": "gan_lightning.data.TorchvisionDataModule", "name": "fashion_mnist", "root": str(fmnist_root)}
    result = evaluate(str(DATA / "pre_seam_cgan.ckpt"), n=200, out=str(tmp_path / "m.json"), data=data,
                      features="domain", n_reference=200, cache_dir=str(tmp_path / "cache"), cas=True, cas_n=200,
                      cas_epochs=1)
    assert {"cas", "cas_real", "cas_ratio", "cas_pool", "cas_panel_mean", "cas_panel_min"} <= set(result["metrics"])
    assert result["protocol"]["cas"]["n"] == 200 and (tmp_path / "m.json").is_file()
    with pytest.raises(UserError, match="^cas=true scores class-conditional models"):
        evaluate(str(DATA / "pre_seam_dcgan.ckpt"), n=200, out=None, data=data, features="domain", cas=True)
