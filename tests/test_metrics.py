"""Metrics: FID & co rank real data, noise and collapse correctly; torch-fidelity and torchmetrics agree; the
Inception path runs (random weights of the real architecture); the reference cache; DDP; training; evaluate.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_lightning.data import GaussianMixtureDataModule, TorchvisionDataModule
from gan_lightning.errors import UserError
from gan_lightning.metrics import core
from gan_lightning.metrics.core import Evaluator
from gan_lightning.metrics.domain import shipped_weights
from gan_lightning.metrics.reference import Reference, reference_for
from gan_lightning.metrics.spaces import INCEPTION_FILE, find_inception_weights, load_domain, resolve_spaces
from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.train.fit import train

from .conftest import run_entry


@pytest.fixture(scope="module")
def fmnist(fmnist_root):
    dm = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))
    dm.prepare_data()
    return dm, dm.load_split("train"), dm.load_split("test")


@pytest.fixture(scope="module")
def domain_space():
    path = shipped_weights("fashion_mnist")
    assert path is not None, "the package ships Fashion-MNIST domain classifier weights"
    return load_domain(path, "fashion_mnist", (1, 28, 28), 10)


@pytest.fixture
def no_inception(tmp_path, monkeypatch):
    """A torch hub cache without the Inception weights (as on this offline machine)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> Path:
    """torch-fidelity's Inception-v3 architecture with random weights, saved under the file name torch hub looks
    for (the real file can't be downloaded here): ``<torch home>/hub/checkpoints/<file>``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
            return None

    home = tmp_path_factory.mktemp("torch_home")
    empty = home / "empty.pt"
    torch.save({}, empty)
    torch.manual_seed(0)
    net = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    for m in net.modules():  # variance-preserving weights, so that features do not vanish through 40 layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = home / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return home


def score(space, real: torch.Tensor | Reference, fake: torch.Tensor, kid_subsets: int = 100) -> dict[str, float]:
    if not isinstance(real, Reference):
        real = reference_for(space, real, dataset="fashion_mnist", split="test", selection="test", cache_dir=None)
    ev = Evaluator([space], [real], kid_subsets=kid_subsets)
    ev.update(fake)
    return ev.compute()


@pytest.fixture(scope="module")
def test_ref(fmnist, domain_space) -> Reference:
    """2000 Fashion-MNIST test images in the domain space."""
    return reference_for(domain_space, fmnist[2][0][:2000], dataset="fashion_mnist", split="test",
                         selection="first 2000", cache_dir=None)


def test_fid_is_zero_on_itself_small_train_vs_test_large_for_noise(fmnist, domain_space, test_ref):
    _, (train_x, _), (test_x, _) = fmnist
    real = test_ref
    itself = score(domain_space, real, test_x[:2000], kid_subsets=10)
    assert abs(itself["fid_domain"]) < 1e-3 and itself["precision_domain"] == itself["recall_domain"] == 1.0
    assert itself["classes_covered"] == 10 and abs(itself["class_kl"]) < 1e-9

    train = score(domain_space, real, train_x[:1000], kid_subsets=10)
    noise = score(domain_space, real, torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8,
                                                    generator=torch.Generator().manual_seed(0)), kid_subsets=10)
    assert 0 < train["fid_domain"] < 0.05 * noise["fid_domain"], (train["fid_domain"], noise["fid_domain"])
    assert train["kid_domain"] < 0.05 * noise["kid_domain"]
    assert train["precision_domain"] > 0.6 and train["recall_domain"] > 0.6
    assert noise["precision_domain"] < 0.1
    assert train["is_domain"] > 5 > 2 > noise["is_domain"]  # balanced classes (label smoothing caps IS near 6)


def test_good_generator_ranks_better_than_a_collapsed_one(fmnist, domain_space, test_ref):
    _, (train_x, train_y), _ = fmnist
    good = score(domain_space, test_ref, train_x[:1000], kid_subsets=10)
    collapsed = score(domain_space, test_ref, train_x[train_y == 0][:1000], kid_subsets=10)  # only T-shirts
    assert good["fid_domain"] < collapsed["fid_domain"] / 5 and good["kid_domain"] < collapsed["kid_domain"] / 5
    assert good["recall_domain"] > collapsed["recall_domain"] + 0.25
    assert good["precision_domain"] > 0.6  # collapsed samples are real images too: precise, not diverse
    # a T-shirt is sometimes taken for a shirt: one or two classes
    assert good["classes_covered"] == 10 and collapsed["classes_covered"] <= 2
    assert good["class_kl"] < 0.05 and collapsed["class_kl"] > 1.5  # log 10 = 2.3 for one class of ten


class Identity(nn.Module):
    """A 'feature extractor' that passes precomputed features through, for torchmetrics."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


@pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features:UserWarning")
@pytest.mark.filterwarnings("ignore:std\\(\\)")  # torchmetrics IS with one split: no spread to compute
def test_torch_fidelity_and_torchmetrics_agree_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(500, 16, generator=gen)
    fake = 0.8 * torch.randn(500, 16, generator=gen) + 0.3
    logits = 3 * torch.randn(500, 10, generator=gen)

    tm_fid = FrechetInceptionDistance(feature=Identity(16))
    tm_fid.update(real, real=True)
    tm_fid.update(fake, real=False)
    ours = core.fid(fake, Reference(real, None, {}))
    assert ours == pytest.approx(float(tm_fid.compute()), rel=1e-4)

    # One subset of all 500: both libraries then use every sample (the unbiased MMD is order-free).
    tm_kid = KernelInceptionDistance(feature=Identity(16), subsets=1, subset_size=500)
    tm_kid.update(real, real=True)
    tm_kid.update(fake, real=False)
    assert core.kid(fake, real, subsets=1, subset_size=500)[0] == pytest.approx(float(tm_kid.compute()[0]), rel=1e-4)

    tm_is = InceptionScore(feature=Identity(10), splits=1)
    tm_is.update(logits)
    assert core.inception_score(logits, splits=1)[0] == pytest.approx(float(tm_is.compute()[0]), rel=1e-5)


@pytest.mark.slow
def test_inception_path_end_to_end_with_random_weights(fmnist, random_inception, monkeypatch):
    from torchmetrics.image.fid import NoTrainInceptionV3

    _, (train_x, _), (test_x, _) = fmnist
    monkeypatch.setenv("TORCH_HOME", str(random_inception))  # found where torch hub looks, as a user would have it
    warnings: list[str] = []
    spaces = resolve_spaces("auto", "fashion_mnist", (1, 28, 28), 10, warn=warnings.append)
    assert [s.name for s in spaces if not s.tag] == ["inception", "domain"]  # (then the panel's members)
    inception = spaces[0]
    assert inception.weights_sha256 and not inception.description["standard_weights"]
    assert len(warnings) == 1 and "not the standard" in warnings[0]  # random weights are not the paper's
    assert "TF1.x-compatible" in inception.description["resize"]

    # Same features as torchmetrics' Inception with the TF-compatible resize (antialias=False).
    images = test_x[:2]
    tm = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=inception.weights,
                            antialias=False)
    ours = inception.extract(images)[0]
    theirs = tm(images.repeat(1, 3, 1, 1))
    assert ours.abs().mean() > 1e-3  # the random network does not collapse to zeros
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)

    refs = [reference_for(s, test_x[:5], dataset="fashion_mnist", split="test", selection="first 5",
                          cache_dir=None) for s in spaces]
    ev = Evaluator(spaces, refs)
    ev.update(train_x[:5])
    values = ev.compute()
    for key in ("fid", "kid", "is", "precision", "recall", "fid_domain", "kid_domain", "classes_covered"):
        assert math.isfinite(values[key]), key

    # The same file given by path, with nothing in the hub cache; a missing path is one line.
    monkeypatch.setenv("TORCH_HOME", str(random_inception / "elsewhere"))
    assert find_inception_weights() is None
    assert find_inception_weights(inception.weights) == Path(inception.weights)
    with pytest.raises(UserError, match="no such file"):
        resolve_spaces("auto", "fashion_mnist", (1, 28, 28), 10, inception_weights="/nonexistent/inception.pth")


def test_missing_inception_weights_is_one_warning_and_domain_names(no_inception):
    warnings: list[str] = []
    spaces = resolve_spaces("auto", "fashion_mnist", (1, 28, 28), 10, warn=warnings.append)
    assert [s.name for s in spaces if not s.tag] == ["domain"] and spaces[0].suffix == "_domain"
    assert all(s.name == f"domain_{s.tag}" for s in spaces[1:])  # the classifier panel's members, if shipped
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert INCEPTION_FILE in warnings[0] and "hub/checkpoints" in warnings[0] and "inception_weights=" in warnings[0]
    with pytest.raises(UserError, match="unknown feature space"):
        resolve_spaces("vgg", "fashion_mnist", (1, 28, 28), 10)
    with pytest.raises(UserError, match="no domain classifier"):
        resolve_spaces("domain", "cifar10", (3, 32, 32), 10)


def test_reference_cache_is_hit_and_missed_after_the_data_changes(fmnist, domain_space, tmp_path):
    _, _, (test_x, _) = fmnist
    images = test_x[:500].clone()

    def ref(x, space=domain_space):
        return reference_for(space, x, dataset="fashion_mnist", split="test", selection="first 500",
                             cache_dir=tmp_path)

    first, second = ref(images), ref(images)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    torch.testing.assert_close(first.features, second.features)
    assert torch.equal(first.class_counts, second.class_counts)

    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1  # one pixel
    assert not ref(changed).cache_hit
    other_weights = type(domain_space)(**{**domain_space.__dict__, "weights_sha256": "0" * 64})
    assert not ref(images, other_weights).cache_hit
    assert len(list(tmp_path.glob("fashion_mnist-test-n500-domain-*.pt"))) == 3


def _tiny_module(data_shape: tuple[int, ...], bounded: bool = True):
    """A GANModule with a small generator, identical in every process (fixed seed)."""
    from gan_lightning.core.module import GANModule
    from gan_lightning.train.build import build_family

    torch.manual_seed(0)
    if len(data_shape) == 3:
        net = {"_target_": "gan_lightning.networks.dcgan.Generator", "_partial_": True, "ngf": 8, "norm": "batch"}
        critic = {"_target_": "gan_lightning.networks.dcgan.Discriminator", "_partial_": True, "ndf": 8}
    else:
        net = {"_target_": "gan_lightning.networks.fc.Generator", "_partial_": True, "hidden": [32]}
        critic = {"_target_": "gan_lightning.networks.fc.Discriminator", "_partial_": True, "hidden": [32]}
    model = {"_target_": "gan_lightning.families.gan.GAN", "latent_dim": 16, "generator": net, "discriminator": critic}
    family = build_family(model, {"_target_": "gan_lightning.losses.NonSaturating"},
                          {"shape": list(data_shape), "bounded": bounded})
    return GANModule(family, optimizer={}, ema_decay=0.9).eval()


def _evaluate_like_training(rank: int, world: int, root: str, cache: str, broadcast) -> dict[str, float]:
    """What MetricsCallback does in a DDP run (set-up: rank 0 fills the cache first; evaluation: each rank
    generates its share), for an image and a 2-D data module, with a stand-in for the Trainer."""
    from types import SimpleNamespace

    from gan_lightning.metrics.callback import MetricsCallback

    values = {}
    for dm in (TorchvisionDataModule("fashion_mnist", root=root), GaussianMixtureDataModule()):
        module = _tiny_module(tuple(dm.shape), bounded=dm.bounded)
        trainer = SimpleNamespace(global_rank=rank, world_size=world, is_global_zero=rank == 0, loggers=[],
                                  callback_metrics={}, datamodule=dm, strategy=SimpleNamespace(broadcast=broadcast))
        callback = MetricsCallback(n_samples=301, n_reference=600, cache_dir=cache, kid_subsets=10)  # uneven shares
        callback.setup(trainer, module, "fit")
        values.update(callback.evaluate(trainer, module, in_loop=False))
    # Diverse samples (real images), so that a lost or repeated share would show: the Evaluator alone.
    dm = TorchvisionDataModule("fashion_mnist", root=root)
    space = load_domain(shipped_weights("fashion_mnist"), "fashion_mnist", (1, 28, 28), 10)
    ref = reference_for(space, dm.load_split("test")[0][:600], dataset="fashion_mnist", split="test", selection="",
                        cache_dir=None)
    evaluator, fake = Evaluator([space], [ref], kid_subsets=10), dm.load_split("train")[0][:301]
    evaluator.update(fake[rank * 301 // world : (rank + 1) * 301 // world])
    values.update({f"real_{k}": v for k, v in evaluator.compute().items()})
    return values


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str, root: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        def broadcast(obj, src=0):  # what Lightning's DDP strategy does
            objects = [obj]
            dist.broadcast_object_list(objects, src=src)
            return objects[0]

        values = _evaluate_like_training(rank, world, root, str(Path(out_dir, "cache")), broadcast)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(values))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_gives_identical_values_on_both_ranks(fmnist, tmp_path, no_inception):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path), str(fmnist[0].root)), nprocs=2, join=True)
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0 == rank1
    assert {"fid_domain", "classes_covered", "high_quality_frac"} <= rank0.keys()
    # The gathered samples are all of them: one process scoring all 301 gets the same numbers.
    single = _evaluate_like_training(0, 1, str(fmnist[0].root), str(tmp_path / "cache"), lambda obj, src=0: obj)
    assert rank0.keys() == single.keys()
    for key, value in single.items():
        assert rank0[key] == pytest.approx(value, rel=1e-4, abs=1e-6, nan_ok=True), key


@pytest.mark.slow
def test_training_logs_metrics_and_keeps_the_best_checkpoint(make_cfg, tmp_path, fmnist_root, no_inception):
    from gan_lightning.train.checkpoints import read_checkpoint
    from gan_lightning.train.fit import train

    from .test_training import read_metrics

    cache = tmp_path / "cache"
    cfg = make_cfg("model=dcgan", "max_iterations=4", "data.batch_size=16", "callbacks.samples.every_n_iterations=0",
                   "metrics=default", "metrics.every_n_iterations=2", "metrics.n_samples=300",
                   "metrics.n_reference=1000", f"metrics.cache_dir={cache}")
    result = train(cfg)
    run = Path(result["output_dir"])
    metrics = read_metrics(run)
    assert len(metrics["metrics/fid_domain"]) == 2  # iterations 2 and 4
    assert "metrics/fid" not in metrics  # no Inception numbers without Inception weights
    for key in ("kid_domain", "is_domain", "precision_domain", "recall_domain", "classes_covered", "class_kl"):
        assert len(metrics[f"metrics/{key}"]) == 2, key
    csv_file = sorted((run / "csv").rglob("metrics.csv"))[-1]
    with open(csv_file) as f:
        header = f.readline().strip().split(",")
        steps = [line.split(",")[header.index("step")] for line in f
                 if line.split(",")[header.index("metrics/fid_domain")]]
    assert steps == ["2", "4"]  # logged with the iteration as the step
    assert "metrics_protocol" in (csv_file.parent / "hparams.yaml").read_text()

    best = list((run / "checkpoints" / "best").glob("best-iter*.ckpt"))
    assert len(best) == 1
    ckpt = read_checkpoint(best[0])
    assert not any("inception" in k or "domain" in k or "bank" in k for k in ckpt["state_dict"])
    states = [v for k, v in ckpt["callbacks"].items() if k.startswith("BestCheckpoint")]
    assert states and states[0]["monitor"] == "metrics/fid_domain"
    assert float(states[0]["best_model_score"]) == pytest.approx(min(metrics["metrics/fid_domain"]), rel=1e-5)

    # evaluate.py on the best checkpoint: the data is recognised from the checkpoint, the reference cache reused.
    out = tmp_path / "eval" / "metrics.json"
    proc = run_entry("evaluate.py", f"ckpt={best[0]}", "n=300", "n_reference=1000", f"cache_dir={cache}",
                   f"out={out}", f"paths.data_dir={fmnist_root}", env={"TORCH_HOME": str(tmp_path / "th")})
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if INCEPTION_FILE in line] == \
        [proc.stderr.strip()]  # one warning line, nothing else
    report = json.loads(out.read_text())
    assert "fid_domain" in report["metrics"] and "fid" not in report["metrics"]
    assert "fid_domain" in proc.stdout and "sha256" in proc.stdout
    p = report["protocol"]
    assert p["implementation"]["formulas"].startswith("torch-fidelity 0.4.0")
    assert p["implementation"]["distributed_gathering"].startswith("torchmetrics ")
    assert (p["reference"]["dataset"], p["reference"]["split"], p["reference"]["n"]) == ("fashion_mnist", "train", 1000)
    assert (p["generated"]["n"], p["generated"]["seed"]) == (300, 0)
    domain = p["feature_spaces"]["domain"]
    assert len(domain["weights_sha256"]) == 64 and domain["resize"] and domain["reference_from_cache"]


@pytest.mark.slow
def test_evaluate_cli_bad_input_is_one_line(tmp_path):
    not_a_checkpoint = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}}, not_a_checkpoint)  # a torch file, not a gan_lightning checkpoint
    proc = run_entry("evaluate.py", f"ckpt={not_a_checkpoint}", f"out={tmp_path / 'm.json'}")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    proc = run_entry("evaluate.py", f"ckpt={not_a_checkpoint}", "data=nope")
    assert proc.returncode == 2 and "unknown data 'nope'" in proc.stderr


def test_setting_up_metrics_leaves_the_training_noise_alone(make_cfg, tmp_path):
    """Building the feature networks draws initial weights, and only on a reference-cache miss: that must not
    shift the training's random stream (a run with metrics trains the same weights as one without)."""
    common = ["model=dcgan", "max_iterations=2", "callbacks.samples.every_n_iterations=0"]
    with_metrics = train(make_cfg(*common, f"metrics.cache_dir={tmp_path / 'fresh_cache'}", "metrics.n_samples=64",
                                  "metrics.n_reference=64", output_dir=tmp_path / "a"))
    without = train(make_cfg(*common, "callbacks.metrics=null", "callbacks.best_checkpoint=null",
                             output_dir=tmp_path / "b"))
    a = read_checkpoint(with_metrics["last_checkpoint"])["state_dict"]
    b = read_checkpoint(without["last_checkpoint"])["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
