"""Too few labels: a class-conditional GAN trained on a labelled subset (experiment=few_labels/...), its samples
written as a labelled dataset (synthesize.py), and what they add to a classifier (augmentation_gain.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from .conftest import compose_cfg, run_entry
from gan_lightning.data import TorchvisionDataModule
from gan_lightning.data.folders import ImageFolderDataModule
from gan_lightning.data.sources import ImageSource
from gan_lightning.errors import UserError
from gan_lightning.metrics import augmentation
from gan_lightning.metrics.domain import sha256_file
from gan_lightning.metrics.train_domain import accuracy
from gan_lightning.synthesize import synthesize
from gan_lightning.train.fit import train

TINY_CGAN = ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16", "model.embed_dim=8"]


@pytest.fixture(scope="module")
def few_labels_ckpt(tmp_path_factory, fmnist_root):
    """A tiny class-conditional GAN trained 150 iterations by experiment=few_labels/n10 (100 labelled images)."""
    out = tmp_path_factory.mktemp("few_labels")
    cfg = compose_cfg(["experiment=few_labels/n10", "trainer=cpu", "logger=csv", "~callbacks.progress_bar",
                       "~callbacks.model_summary", "trainer.enable_model_summary=false", f"data.root={fmnist_root}",
                       "max_iterations=150", "metrics=none", "callbacks.samples.every_n_iterations=0", *TINY_CGAN],
                      out / "run")
    result = train(cfg)
    assert result["iteration"] == 150
    return result["last_checkpoint"]


def test_subset_per_class_keeps_n_images_of_every_class_drawn_by_the_seed(fmnist_root):
    def subset(seed, n=10):
        module = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root), subset_per_class=n, seed=seed)
        return module.train_subset()

    x, y = subset(0)
    assert x.shape == (100, 1, 28, 28) and torch.equal(y.bincount(), torch.full((10,), 10))
    assert torch.equal(subset(0)[0], x) and not torch.equal(subset(1)[0], x)  # the seed picks it, reproducibly
    full_x, full_y = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root)).load_split("train")
    index = {bytes(img.numpy()): label for img, label in zip(full_x, full_y.tolist())}
    assert all(index[bytes(img.numpy())] == label for img, label in zip(x, y.tolist()))  # real images, true labels
    with pytest.raises(UserError, match="class T-shirt/top has only 6000 training images"):
        subset(0, 6001)
    with pytest.raises(UserError, match="both given"):
        TorchvisionDataModule("fashion_mnist", root=str(fmnist_root), subset=100, subset_per_class=10)


def test_few_labels_recipe_trains_on_its_subset_only(few_labels_ckpt, tmp_path, fmnist_root):
    from gan_lightning.train.checkpoints import read_checkpoint

    config = read_checkpoint(few_labels_ckpt)["gan_lightning"]["config"]
    data = config["data"]["cfg"]
    assert data["subset_per_class"] == 10 and data["subset"] is None
    assert config["model"]["_target_"].endswith("CGAN")
    cfg = compose_cfg(["experiment=few_labels/n500"], tmp_path)
    assert cfg.data.subset_per_class == 500 and cfg.augment.kind == "diffaugment"


def test_synthesize_writes_a_labelled_dataset_that_the_data_modules_read(few_labels_ckpt, tmp_path):
    out = tmp_path / "synthetic"
    result = synthesize(few_labels_ckpt, per_class=4, out=str(out), seed=3)
    names = result["provenance"]["class_names"]
    assert len(names) == 10 and result["counts"] == {n: 4 for n in names}
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders[0] == "0_T-shirt_top" and folders[9] == "9_Ankle_boot" and len(list(out.rglob("*.png"))) == 40
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["checkpoint"]["sha256"] == sha256_file(few_labels_ckpt)
    assert provenance["options"]["seed"] == 3 and provenance["options"]["psi"] == 1.0

    source = ImageSource(out)
    by_json, json_names = source.labels("auto")  # dataset.json: the model's class indices and names
    by_folder, _ = source.labels("subfolders")  # class folders sorted by name: the same indices
    assert by_json == by_folder and json_names == names and sorted(by_json) == [k // 4 for k in range(40)]
    dm = ImageFolderDataModule(str(out), image_size=28, channels=1, labels="auto", num_workers=0)
    assert list(dm.spec.class_names) == names

    # the same seed draws the same images; as a prepared zip, the same dataset
    again = synthesize(few_labels_ckpt, per_class=4, out=str(tmp_path / "again.zip"), seed=3, format="zip")
    zipped = ImageSource(again["out"])
    assert zipped.labels("auto") == (by_json, names)
    assert json.loads(zipped.read_text("provenance.json"))["checkpoint"]["sha256"] == sha256_file(few_labels_ckpt)
    assert len(zipped) == len(source) == 40  # (renamed in dataset_tool's way, in the same order)
    assert all(torch.equal(zipped.read(i, 1), source.read(i, 1)) for i in range(40))


def test_the_confidence_filter_keeps_only_samples_its_classifier_finds_on_label(few_labels_ckpt, tmp_path):
    # the filter's classifier, trained again the same way on the generator's own 100 labelled images
    judge = augmentation.fit_classifier(*_subset_of(few_labels_ckpt), 10, steps=60, seed=0)

    def confidence(folder):
        source = ImageSource(folder)
        labels, _ = source.labels("auto")
        images = torch.stack([source.read(i, 1) for i in range(len(source))])
        return augmentation.label_confidence(judge, images, torch.tensor(labels)).view(10, -1)

    plain = synthesize(few_labels_ckpt, per_class=40, out=str(tmp_path / "plain"), seed=0)
    # a threshold that about a third of every class's samples pass (this tiny generator is far from its data)
    threshold = confidence(tmp_path / "plain").quantile(0.67, dim=1).min().item()
    kept = synthesize(few_labels_ckpt, per_class=10, out=str(tmp_path / "kept"), seed=0, filter=threshold,
                      filter_steps=60)
    assert kept["drawn"] > plain["drawn"] == 400 and 0 < kept["accepted_share"] < 1
    passing = (confidence(tmp_path / "plain") >= threshold).float().mean().item()  # the same draws, judged alike
    assert kept["accepted_share"] == pytest.approx(passing, abs=0.15)
    assert sum(kept["provenance"]["passed"].values()) >= 10 * 10
    assert "no test images" in kept["provenance"]["filter"]["trained_on"]
    assert confidence(tmp_path / "kept").min() >= threshold > confidence(tmp_path / "plain").min()


def _subset_of(ckpt):
    from gan_lightning.metrics.evaluation import infer_data
    from gan_lightning.train.checkpoints import read_checkpoint

    return infer_data(read_checkpoint(ckpt)["gan_lightning"]["config"]["data"], "data").train_subset()


@pytest.mark.parametrize("options,message", [
    ({"per_class": 0}, "per_class must be a positive integer"),
    ({"filter": 1.0}, "filter must be a probability threshold in (0, 1)"),
    ({"filter": 0}, "filter must be a probability threshold in (0, 1)"),
    ({"format": "npz"}, "format must be one of folder, zip"),
])
def test_synthesize_refuses_bad_options_and_writes_nothing(few_labels_ckpt, tmp_path, options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        synthesize(few_labels_ckpt, **{"per_class": 2, "out": str(tmp_path / "out"), **options})
    assert list(tmp_path.iterdir()) == []


def test_synthesize_refuses_an_unconditional_model_and_an_occupied_folder(few_labels_ckpt, tmp_path):
    from pathlib import Path

    dcgan = Path(__file__).parent / "data" / "pre_seam_dcgan.ckpt"
    r = run_entry("synthesize.py", f"ckpt={dcgan}", "per_class=2", f"out={tmp_path / 'out'}")
    assert r.returncode == 2 and "needs a class-conditional model" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.png").write_bytes(b"keep me")
    r = run_entry("synthesize.py", f"ckpt={few_labels_ckpt}", "per_class=2", f"out={occupied}")
    assert r.returncode == 2 and "already holds a dataset" in r.stderr
    assert [p.name for p in occupied.iterdir()] == ["mine.png"] and (occupied / "mine.png").read_bytes() == b"keep me"


def test_more_correctly_labelled_images_help_the_arms_classifier_and_mislabelled_ones_do_not(fmnist_root):
    """The measure's classifier without a GAN: 10 real images a class, plus "synthetic" images that are 30 more real
    ones a class with their true labels (they must help), or the same with their labels shuffled (they must not)."""
    fashion = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))
    x, y = fashion.load_split("train")
    picked = torch.cat([(y == c).nonzero().flatten()[:40] for c in range(10)]).view(10, 40)
    real, extra = (x[picked[:, :10].flatten()], y[picked[:, :10].flatten()]), picked[:, 10:].flatten()
    shuffled = y[extra][torch.randperm(len(extra), generator=torch.Generator().manual_seed(0))]
    test_x, test_y = fashion.load_split("test")
    test = (test_x[:2000], test_y[:2000])
    arms = {"true": augmentation.arms_of(real, (x[extra], y[extra]), 10, [3.0], seed=0),
            "shuffled": augmentation.arms_of(real, (x[extra], shuffled), 10, [3.0], seed=0)}
    assert torch.equal(arms["true"]["real"][1], real[1]) and len(arms["true"]["real+3x"][0]) == 400
    score = {name: accuracy(augmentation.fit_classifier(*arms[name]["real+3x"], 10, steps=100, seed=0), *test)
             for name in arms}
    alone = accuracy(augmentation.fit_classifier(*real, 10, steps=100, seed=0), *test)
    assert score["true"] > alone + 0.02 and score["shuffled"] < score["true"] - 0.05


def test_mean_interval_is_the_student_t_interval():
    values = [0.70, 0.74, 0.72]
    out = augmentation.mean_interval(values)
    sd = math.sqrt(sum((v - 0.72) ** 2 for v in values) / 2)
    t_975_2 = 4.302653  # Student's t, 97.5% quantile, 2 degrees of freedom
    assert out["mean"] == pytest.approx(0.72) and out["ci95"] == pytest.approx(t_975_2 * sd / math.sqrt(3), rel=1e-6)
    assert augmentation.mean_interval([0.5])["ci95"] is None
    summary = augmentation.summarise([{"real": 0.6, "real+1x": 0.65}, {"real": 0.62, "real+1x": 0.66}])
    assert summary["gain_real+1x"]["values"] == pytest.approx([0.05, 0.04])


def test_augmentation_gain_measures_a_synthesized_dataset_against_the_generators_own_subset(few_labels_ckpt,
                                                                                             tmp_path):
    out = tmp_path / "synthetic"
    synthesize(few_labels_ckpt, per_class=30, out=str(out), seed=0)
    result = augmentation.measure([str(out)], seeds=[0], steps=10, ratios=[1.0, 3.0])
    assert result["datasets"][0]["real_images"] == 100 and result["datasets"][0]["synthetic_images"] == 300
    row = result["replicates"][0]
    assert set(row) >= {"real", "real+1x", "real+3x", "synthetic", "gan_test"} and row["steps"] == 10
    assert all(0 <= row[k] <= 1 for k in ("real", "real+1x", "real+3x", "synthetic", "gan_test"))
    assert "gain_real+3x" in result["summary"]

    r = run_entry("augmentation_gain.py", f"synthetic={out}", "ratios=[20]", f"out={tmp_path / 'gain.json'}")
    assert r.returncode == 2 and "needs 2000 synthetic images" in r.stderr and not (tmp_path / "gain.json").exists()
    r = run_entry("augmentation_gain.py", f"synthetic={tmp_path}", f"out={tmp_path / 'gain.json'}")
    assert r.returncode == 2 and "not written by synthesize.py" in r.stderr


def test_neighbours_tell_copies_and_collapse_from_new_images(fmnist_root):
    """The neighbour measures against real stand-ins for synthetic images: new real images of the classes (they
    must look like the test split: ratios near 1, about 5% "near copies"), the subset itself with a little noise
    (copies: nearer than the test split, most of them near copies), and one subset image a class repeated with noise
    (collapse: little spread, few subset images reached)."""
    fashion = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))
    x, y = fashion.load_split("train")
    picked = torch.cat([(y == c).nonzero().flatten()[:220] for c in range(3)]).view(3, 220)
    real = (x[picked[:, :20].flatten()], y[picked[:, :20].flatten()])
    test_x, test_y = fashion.load_split("test")
    keep = test_y < 3
    test = (test_x[keep][:600], test_y[keep][:600])
    gen = torch.Generator().manual_seed(0)

    def noisy(images):
        return (images.float() + 4 * torch.randn(images.shape, generator=gen)).clamp(0, 255).to(torch.uint8)

    new = (x[picked[:, 20:].flatten()], y[picked[:, 20:].flatten()])
    copies = (noisy(real[0].repeat(10, 1, 1, 1)), real[1].repeat(10))
    collapsed = (noisy(real[0][::20].repeat_interleave(200, 0)), real[1][::20].repeat_interleave(200))
    near = {name: augmentation.neighbours(real, synthetic, test, 3)
            for name, synthetic in [("new", new), ("copies", copies), ("collapsed", collapsed)]}
    assert 0.8 < near["new"]["nn_ratio"] < 1.25 and near["new"]["near_copies"] < 0.15
    assert 0.8 < near["new"]["spread"] < 1.25 and near["new"]["reached"] > 0.5 * near["new"]["reached_test"]
    assert near["copies"]["nn_ratio"] < 0.3 and near["copies"]["near_copies"] > 0.9
    assert near["collapsed"]["spread"] < 0.3 and near["collapsed"]["reached"] < 0.2 < near["new"]["reached"]


def test_a_labelled_folder_trains_the_few_labels_recipe_and_is_measured_on_its_own_test_folder(fmnist_root,
                                                                                                tmp_path):
    """data=image_folder with data.subset_per_class: the recipe trains on N images a class of a user's labelled
    folder, synthesize.py's filter classifier trains on that subset, and augmentation_gain.py tests on test=DIR."""
    from PIL import Image

    fashion = TorchvisionDataModule("fashion_mnist", root=str(fmnist_root))
    x, y = fashion.load_split("test")
    for split, rows in (("train", slice(0, 12)), ("test", slice(12, 40))):
        for c, name in ((0, "shirt"), (1, "trouser"), (7, "sneaker")):
            (tmp_path / split / name).mkdir(parents=True)
            for k, i in enumerate((y == c).nonzero().flatten()[rows].tolist()):
                Image.fromarray(x[i, 0].numpy()).save(tmp_path / split / name / f"{k}.png")
    folder = ["data=image_folder", f"data.path={tmp_path / 'train'}", "data.labels=subfolders",
              "data.image_size=28", "data.channels=1", "data.batch_size=8", "data.num_workers=0"]
    module = ImageFolderDataModule(str(tmp_path / "train"), image_size=28, channels=1, labels="subfolders",
                                   subset_per_class=5, seed=1)
    sx, sy = module.train_subset()
    assert sx.shape == (15, 1, 28, 28) and torch.equal(sy.bincount(), torch.full((3,), 5))
    cfg = compose_cfg(["experiment=few_labels/n10", "data.subset_per_class=5", *folder, "trainer=cpu", "logger=csv",
                       "~callbacks.progress_bar", "~callbacks.model_summary", "trainer.enable_model_summary=false",
                       "max_iterations=6", "metrics=none", "callbacks.samples.every_n_iterations=0", *TINY_CGAN],
                      tmp_path / "run")
    ckpt = train(cfg)["last_checkpoint"]
    out = tmp_path / "synthetic"
    synthesize(ckpt, per_class=10, out=str(out), seed=0)
    result = augmentation.measure([str(out)], seeds=[0], steps=5, ratios=[1.0], test=str(tmp_path / "test"))
    assert result["datasets"][0]["real_images"] == 15 and result["protocol"]["test"] == str(tmp_path / "test")
    assert set(result["neighbours"]) == {"nn_ratio", "near_copies", "reached", "reached_test", "spread"}
    r = run_entry("augmentation_gain.py", f"synthetic={out}", "steps=5", f"out={tmp_path / 'gain.json'}")
    assert r.returncode == 2 and "give test=DIR" in r.stderr and not (tmp_path / "gain.json").exists()
    r = run_entry("augmentation_gain.py", f"synthetic={out}", f"test={tmp_path / 'train'}", "steps=5",
                  f"out={tmp_path / 'gain.json'}")
    assert r.returncode == 2 and "trained on" in r.stderr and not (tmp_path / "gain.json").exists()
    with pytest.raises(UserError, match="needs labels"):
        ImageFolderDataModule(str(tmp_path / "train"), labels="none", subset_per_class=5).train_subset()
