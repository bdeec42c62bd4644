"""The classifier panel: every score made with the domain classifier is also made with each further classifier
beside it (``<stem>_<tag>.pt``), and summarised by the panel's mean, minimum and agreement.

The members here are stand-ins trained in the test for a few dozen steps (another seed of the shipped
architecture, and the pool architecture), the shipped primary itself under another name (a twin: the panel must
agree with itself) and the primary with its class rows rolled by one (a liar: it agrees with nobody)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gan_lightning.data import TorchvisionDataModule
from gan_lightning.data.convert import to_float
from gan_lightning.errors import UserError
from gan_lightning.metrics import domain
from gan_lightning.metrics.build import build_evaluator
from gan_lightning.metrics.cas import classification_accuracy_score
from gan_lightning.metrics.codes import code_scores
from gan_lightning.metrics.conditional import label_scores
from gan_lightning.metrics.core import Evaluator
from gan_lightning.metrics.options import MetricOptions
from gan_lightning.metrics.paired import scores_of
from gan_lightning.metrics.reference import reference_for
from gan_lightning.metrics.registry import (ScoreContext, classifier, classifier_panel, panel_predictions,
                                            panel_scores)
from gan_lightning.metrics.spaces import resolve_spaces
from gan_lightning.metrics.train_domain import train_classifier
from gan_lightning.metrics.translation import translation_scores

from .conftest import compose_cfg

SHAPE = (1, 28, 28)
OLD_KEYS = {"fid_domain", "kid_domain", "kid_domain_std", "is_domain", "is_domain_std", "precision_domain",
            "recall_domain", "classes_covered", "class_kl"}
"""What the domain space gave before the panel (and still gives with ``panel=False``)."""


def _save(state: dict, path: Path, **info) -> Path:
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    path.with_suffix(".json").write_text(json.dumps({"dataset": "fashion_mnist", **info}))
    return path


@pytest.fixture(scope="module")
def fashion(fmnist_root):
    dm = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))
    return dm, dm.load_split("train"), dm.load_split("test")


@pytest.fixture(scope="module")
def folders(fashion, tmp_path_factory) -> dict[str, Path]:
    """Folders of panels, each with the shipped classifier as its primary ``fashion_mnist.pt``: ``standins`` (members
    b: cnn seed 1, c: pool seed 2, a few steps each), ``twin`` (member b: the primary's own file), ``liar`` (member b:
    the primary with its class rows rolled, so that it predicts k + 1 where the primary predicts k)."""
    _, (train_x, train_y), (test_x, test_y) = fashion
    shipped = domain.shipped_weights("fashion_mnist")
    root = tmp_path_factory.mktemp("panels")
    out = {}
    for name in ("standins", "twin", "liar"):
        out[name] = root / name
        out[name].mkdir()
        shutil.copy(shipped, out[name] / "fashion_mnist.pt")
        shutil.copy(shipped.with_suffix(".json"), out[name] / "fashion_mnist.json")
    for tag, arch, seed, steps in (("b", "cnn", 1, 16), ("c", "pool", 2, 8)):  # (the pool one is slower a step)
        net = train_classifier(train_x[: steps * 128], train_y[: steps * 128], 10, epochs=1, lr=5e-3, seed=seed,
                               arch=arch, log=lambda message: None)
        _save(net.state_dict(), out["standins"] / f"fashion_mnist_{tag}.pt", recipe={"seed": seed},
              test_accuracy=0.5)
    shutil.copy(shipped, out["twin"] / "fashion_mnist_b.pt")
    state = torch.load(shipped, weights_only=True)
    state["head.weight"], state["head.bias"] = state["head.weight"].roll(1, 0), state["head.bias"].roll(1, 0)
    _save(state, out["liar"] / "fashion_mnist_b.pt")
    return out


def _spaces(folder: Path, panel: bool = True):
    return resolve_spaces("domain", "fashion_mnist", SHAPE, 10, domain_weights=str(folder / "fashion_mnist.pt"),
                          panel=panel)


def _score(spaces, fashion, n_fake: int = 300, n_real: int = 500) -> dict[str, float]:
    """Every feature-space score of ``n_fake`` training images against ``n_real`` test images."""
    _, (train_x, _), (test_x, _) = fashion
    refs = [reference_for(s, test_x[:n_real], dataset="fashion_mnist", split="test", cache_dir=None) for s in spaces]
    evaluator = Evaluator(spaces, refs, kid_subsets=5)
    evaluator.update(train_x[:n_fake])
    return evaluator.compute()


# --- discovery -----------------------------------------------------------------------------------------------------
def test_the_panel_is_the_primary_then_its_members_by_tag(tmp_path):
    for name in ("fashion_mnist", "fashion_mnist_c", "fashion_mnist_b", "fashion_mnist_word", "fashion_mnist_B",
                 "fashion_mnist_b2", "fashion_mnist_b_c", "mnist_b"):
        (tmp_path / f"{name}.pt").write_bytes(b"")
    (tmp_path / "fashion_mnist_d.json").write_text("{}")
    assert domain.panel_weights("fashion_mnist", tmp_path) == [
        tmp_path / f"{name}.pt" for name in ("fashion_mnist", "fashion_mnist_b", "fashion_mnist_c",
                                             "fashion_mnist_word")]
    assert domain.panel_weights("mnist", tmp_path) == []  # members without a primary are no panel
    shipped = domain.panel_weights("fashion_mnist")
    assert [p.name for p in shipped] == ["fashion_mnist.pt", "fashion_mnist_b.pt", "fashion_mnist_c.pt"]
    assert shipped[0] == domain.shipped_weights("fashion_mnist")
    states = [torch.load(p, weights_only=True) for p in shipped]
    assert [domain.architecture_of(state) for state in states] == ["cnn", "cnn", "pool"]
    assert [domain.weights_info(p)["recipe"]["seed"] for p in shipped] == [0, 1, 2]


def test_member_spaces_follow_the_primary_with_their_suffixes_and_panel_off_is_the_primary_alone(folders):
    spaces = _spaces(folders["standins"])
    assert [(s.name, s.suffix, s.tag) for s in spaces] == [
        ("domain", "_domain", ""), ("domain_b", "_domain_b", "b"), ("domain_c", "_domain_c", "c")]
    assert [s.description["architecture"] for s in spaces] == ["cnn", "cnn", "pool"]
    assert [s.description["seed"] for s in spaces] == [0, 1, 2]
    assert [s.name for s in _spaces(folders["standins"], panel=False)] == ["domain"]
    # A user's own file: the members beside it, none where there are none.
    lone = folders["standins"].parent / "lone"
    lone.mkdir(exist_ok=True)
    shutil.copy(folders["standins"] / "fashion_mnist.pt", lone / "mine.pt")
    assert [s.name for s in resolve_spaces("domain", "fashion_mnist", SHAPE, 10,
                                           domain_weights=str(lone / "mine.pt"))] == ["domain"]


def test_a_member_that_is_not_a_classifier_is_one_line(folders, tmp_path):
    shutil.copy(folders["standins"] / "fashion_mnist.pt", tmp_path / "fashion_mnist.pt")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "fashion_mnist_x.pt")
    with pytest.raises(UserError, match="^[^\n]*fashion_mnist_x.pt is not a domain classifier state dict[^\n]*$"):
        _spaces(tmp_path)
    (tmp_path / "fashion_mnist_x.pt").write_text("not a tensor file")
    with pytest.raises(UserError, match="^cannot read domain classifier weights [^\n]*fashion_mnist_x.pt"):
        _spaces(tmp_path)
    assert [s.name for s in _spaces(tmp_path, panel=False)] == ["domain"]  # panel off: the member is not read


# --- feature-space scores ------------------------------------------------------------------------------------------
def test_every_feature_space_score_is_made_in_every_member_space(folders, fashion):
    values = _score(_spaces(folders["standins"]), fashion)
    for tag in ("b", "c"):
        for key in ("fid", "kid", "is", "precision", "recall"):
            assert f"{key}_domain_{tag}" in values, (key, tag)
        assert values[f"fid_domain_{tag}"] != values["fid_domain"]
        assert f"classes_covered_domain_{tag}" in values and f"class_kl_domain_{tag}" in values
    covered = [values["classes_covered"], values["classes_covered_domain_b"], values["classes_covered_domain_c"]]
    assert values["classes_covered_panel_min"] == min(covered)
    assert min(covered) <= values["classes_covered_panel_mean"] <= max(covered)
    assert 0 < values["classes_covered_panel_agree"] < 1  # half-trained stand-ins disagree on some images
    # Panel off: exactly the names of before, with the same values.
    alone = _score(_spaces(folders["standins"], panel=False), fashion)
    assert set(alone) == OLD_KEYS
    assert all(alone[k] == pytest.approx(values[k], rel=1e-6, nan_ok=True) for k in OLD_KEYS)


def test_the_panel_agrees_with_its_twin_and_not_with_a_liar(folders, fashion):
    twin = _score(_spaces(folders["twin"]), fashion, n_fake=200, n_real=200)
    assert twin["classes_covered_panel_agree"] == 1.0
    assert twin["fid_domain_b"] == pytest.approx(twin["fid_domain"], rel=1e-6)
    liar = _score(_spaces(folders["liar"]), fashion, n_fake=200, n_real=200)
    assert liar["classes_covered_panel_agree"] < 0.05  # it predicts k + 1 wherever the primary predicts k
    assert liar["fid_domain_b"] == pytest.approx(liar["fid_domain"], rel=1e-3)  # the features are the same


def test_panel_scores_summarise_the_members_and_are_the_primary_alone_without_members():
    predicted = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 1, 0]])
    expected = torch.tensor([0, 1, 2, 3])
    out = panel_scores("s", ["domain", "domain_b", "domain_c"], predicted, expected)
    assert out == {"s": 1.0, "s_domain_b": 0.75, "s_domain_c": 0.5, "s_panel_mean": 0.75, "s_panel_min": 0.5,
                   "s_panel_agree": 0.5}
    assert panel_scores("s", ["domain"], predicted[:1], expected) == {"s": 1.0}
    same = panel_scores("s", ["a", "b"], predicted[[0, 0]], 3, agreement=False)
    assert same == {"s": 0.25, "s_b": 0.25, "s_panel_mean": 0.25, "s_panel_min": 0.25}


# --- classifier scores of the families -------------------------------------------------------------------------------
class _Family(SimpleNamespace):
    """A stand-in class-conditional family: the inputs are the labels."""

    class_conditional, num_classes = True, 10

    def sample_inputs(self, n, generator=None, labels=None, source=None):
        y = torch.full((n,), labels) if isinstance(labels, int) else labels
        return {"y": y}

    def label_tensor(self, n):
        return torch.arange(n) % self.num_classes


class _Picker:
    """A stand-in generator that returns real images of the class it is asked for."""

    def __init__(self, images, labels):
        self.family = _Family()
        self.by_class = [to_float(images[labels == k][:200]) for k in range(10)]
        self.used = [0] * 10

    def parameters(self):
        return iter(())

    def generate(self, inputs, use_ema=True):
        out = []
        for k in inputs["y"].tolist():
            out.append(self.by_class[k][self.used[k] % len(self.by_class[k])])
            self.used[k] += 1
        return torch.stack(out)


def _context(module, spaces, **kwargs) -> ScoreContext:
    """What the metrics callback and evaluate.py give the family scores, for ``spaces``."""
    return ScoreContext(module, SimpleNamespace(num_classes=10), classifier(None, spaces), 300, spaces=spaces,
                        panel=classifier_panel(spaces), **kwargs)


def _check_summary(values: dict, name: str, members=("domain_b", "domain_c")) -> None:
    member_values = [values[name]] + [values[f"{name}_{m}"] for m in members]
    assert values[f"{name}_panel_min"] == min(member_values)
    assert min(member_values) <= values[f"{name}_panel_mean"] <= max(member_values)


def test_label_accuracy_class_kept_and_target_share_by_the_panel(folders, fashion):
    _, _, (test_x, test_y) = fashion
    spaces = _spaces(folders["standins"])

    labels = label_scores(_context(_Picker(test_x, test_y), spaces))
    assert labels["label_accuracy"] > 0.85 and labels["label_accuracy_min"] < labels["label_accuracy"]
    for name in ("label_accuracy", "label_accuracy_min"):
        _check_summary(labels, name)
        assert labels[f"{name}_domain_b"] != labels[name]
    assert 0 < labels["label_accuracy_panel_agree"] < 1 and "label_accuracy_min_panel_agree" not in labels
    alone = label_scores(_context(_Picker(test_x, test_y), spaces[:1]))
    assert set(alone) == {"label_accuracy", "label_accuracy_min"}
    assert alone["label_accuracy"] == labels["label_accuracy"]

    images, y = to_float(test_x[:100]), test_y[:100]
    family = SimpleNamespace(spec=SimpleNamespace(target="x"))
    ctx = _context(SimpleNamespace(family=family, parameters=lambda: iter(())), spaces,
                   source={"x": images, "y": y})
    kept = scores_of(ctx, images)
    _check_summary(kept, "class_kept")
    assert {"psnr", "ssim", "l1", "class_kept_panel_agree"} <= set(kept) and kept["psnr"] == 100
    assert set(scores_of(ctx, images, panel=False)) == {"psnr", "ssim", "l1", "class_kept"}  # the baselines'

    # Translation: "sandals" (5) -> "sneakers" (7) by a stand-in that answers with real sneakers.
    a, b = to_float(test_x[test_y == 5][:100]), to_float(test_x[test_y == 7][:100])
    nets = SimpleNamespace(ab=lambda x: b[: len(x)], ba=lambda x: a[: len(x)])
    net = type("N", (torch.nn.Module,), {"forward": lambda self, x, d: (nets.ab if d == "AtoB" else nets.ba)(x)})()
    module = SimpleNamespace(sampling_generator=net, parameters=lambda: iter(()),
                             family=SimpleNamespace(key_a="a", key_b="b", generator=net))
    source = {"a": a, "b": b, "y_a": torch.full((100,), 5), "y_b": torch.full((100,), 7)}
    shares = translation_scores(_context(module, spaces, source=source))
    for tag in ("ab", "ba"):
        _check_summary(shares, f"target_share_{tag}")
        assert f"target_share_{tag}_panel_agree" in shares
        assert not any(k.startswith(f"baseline_target_share_{tag}_") for k in shares)
    assert shares["target_share_ab"] > 0.8
    assert {"fid_domain_ba", "fid_domain_b_ba", "fid_domain_c_ba"} <= set(shares)
    assert shares["fid_domain_b_ba"] != shares["fid_domain_ba"]
    alone = translation_scores(_context(module, spaces[:1], source=source))
    assert {k for k in shares if not re.search(r"_panel_|_domain_[bc](_|$)", k)} == set(alone)


def test_infogan_code_accuracy_by_the_panel(folders, fashion):
    _, _, (test_x, test_y) = fashion
    picker = _Picker(test_x, test_y)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))  # code c draws class perm[c]
    picker.family = SimpleNamespace(categorical_dim=10,
                                    sample_inputs=lambda n, generator=None, categorical=0: {"y": perm[[categorical] * n]})
    spaces = _spaces(folders["standins"])
    codes = code_scores(_context(picker, spaces))
    assert codes["generated_code_accuracy"] > 0.85  # the primary's accuracy, under the best assignment
    _check_summary(codes, "generated_code_accuracy")
    assert 0 < codes["generated_code_accuracy_panel_agree"] < 1
    picker.used = [0] * 10
    assert set(code_scores(_context(picker, spaces[:1]))) == {"generated_code_accuracy"}


def test_agreement_is_one_for_twins_and_low_against_a_liar(folders, fashion):
    _, _, (test_x, test_y) = fashion
    images, expected = to_float(test_x[:300]), test_y[:300]

    def kept(name: str) -> dict[str, float]:
        panel = classifier_panel(_spaces(folders[name]))
        return panel_scores("kept", [n for n, _ in panel], panel_predictions(panel, images, 100, "cpu"), expected)

    twin, liar = kept("twin"), kept("liar")
    assert twin["kept_panel_agree"] == 1.0 and twin["kept_panel_min"] == twin["kept"] == twin["kept_domain_b"]
    assert liar["kept"] > 0.85 and liar["kept_panel_min"] == liar["kept_domain_b"] < 0.05
    assert liar["kept_panel_agree"] < 0.05


# --- CAS, the protocol, the options ----------------------------------------------------------------------------
def test_cas_trains_one_classifier_per_panel_architecture(fashion):
    _, (train_x, train_y), (test_x, test_y) = fashion
    picker = _Picker(train_x, train_y)
    splits = {"train": (train_x[:2000], train_y[:2000]), "test": (test_x[:500], test_y[:500])}
    dm = SimpleNamespace(load_split=splits.__getitem__)  # a 500-image test split: 4 classifiers to test
    scored = classification_accuracy_score(picker, dm, n=300, epochs=1, seed=0)
    m = scored["metrics"]
    assert set(m) == {"cas", "cas_real", "cas_ratio", "cas_pool", "cas_real_pool", "cas_ratio_pool",
                      "cas_panel_mean", "cas_panel_min"}
    assert m["cas"] != m["cas_pool"] and m["cas_panel_min"] == min(m["cas"], m["cas_pool"])
    assert m["cas_panel_mean"] == pytest.approx((m["cas"] + m["cas_pool"]) / 2)
    assert set(scored["protocol"]["architectures"]) == {"cnn", "pool"}
    with pytest.raises(UserError, match="^cas architectures must be some of cnn, pool; got vgg$"):
        classification_accuracy_score(picker, dm, n=300, epochs=1, architectures=("vgg",))


def test_the_protocol_records_each_member_and_the_references_are_cached_apart(folders, fashion, tmp_path):
    dm = fashion[0]
    options = MetricOptions(features="domain", n_reference=300, reference_split="test", cache_dir=str(tmp_path),
                            domain_weights=str(folders["standins"] / "fashion_mnist.pt"))
    _, protocol = build_evaluator(dm, options)
    panel = protocol["panel"]
    assert [(name, m["architecture"], m["seed"]) for name, m in panel.items()] == [
        ("domain", "cnn", 0), ("domain_b", "cnn", 1), ("domain_c", "pool", 2)]
    assert panel["domain"]["test_accuracy"] == 0.9155 and panel["domain_b"]["test_accuracy"] == 0.5
    assert all(len(m["sha256"]) == 64 and Path(m["weights"]).is_file() for m in panel.values())
    assert len({m["sha256"] for m in panel.values()}) == 3 and "panel" in protocol["settings"]
    keys = {name: sp["reference_cache_key"] for name, sp in protocol["feature_spaces"].items()}
    assert len(set(keys.values())) == 3 and len(list(tmp_path.glob("fashion_mnist-test-n300-domain*.pt"))) == 3
    _, again = build_evaluator(dm, options)
    assert all(sp["reference_from_cache"] for sp in again["feature_spaces"].values())
    _, off = build_evaluator(dm, MetricOptions(**{**options.as_dict(), "panel": False}))
    assert list(off["feature_spaces"]) == ["domain"] and "panel" not in off and "panel" not in off["settings"]


def test_the_panel_is_on_in_evaluate_off_in_training_by_default_and_takes_only_true_or_false(tmp_path):
    assert compose_cfg(["trainer=cpu"], tmp_path / "train").metrics.panel is False
    assert compose_cfg(["trainer=cpu", "metrics.panel=true"], tmp_path / "train2").metrics.panel is True
    assert compose_cfg(["ckpt=x.ckpt"], tmp_path / "evaluate", config_name="evaluate").panel is True
    with pytest.raises(UserError, match="^metrics.panel must be true or false; got 'yes'$"):
        MetricOptions(panel="yes").check("metrics.")
