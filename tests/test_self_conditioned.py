"""The self-conditioned GAN: k-means, the clusters it fits when training starts, sampling in the data's
proportions, resumed runs, unlabelled data, and a trained generator that follows its clusters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.data import GaussianMixtureDataModule
from gan_lightning.errors import UserError
from gan_lightning.families import self_conditioned
from gan_lightning.families.self_conditioned import kmeans
from gan_lightning.train.checkpoints import load_module, read_checkpoint
from gan_lightning.train.fit import train

from .test_conditional import family_for

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread is faster (tests/conftest.py)


def blobs(means: torch.Tensor, n_per: list[int], std: float = 0.05, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([m + std * torch.randn(n, len(m), generator=g) for m, n in zip(means, n_per)])


def test_kmeans_finds_separated_blobs_and_is_reproducible():
    means = torch.tensor([[0.0, 0, 0], [3, 0, 0], [0, 3, 0], [0, 0, 3]])
    x = blobs(means, [50, 100, 150, 200])
    found = kmeans(x, 4, generator=torch.Generator().manual_seed(1))
    # every true mean has a centroid within a few standard errors, one each
    nearest = torch.cdist(means, found).argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]
    assert torch.cdist(means, found).min(1).values.max() < 0.05
    again = kmeans(x, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(found, again)
    with pytest.raises(ValueError, match="5 clusters need at least 5 examples; got 4"):
        kmeans(x[:4], 5)


def test_kmeans_with_more_clusters_than_distinct_points_keeps_every_centroid_finite():
    x = torch.tensor([[0.0, 0.0]] * 10 + [[1.0, 1.0]] * 10)
    found = kmeans(x, 3, generator=torch.Generator().manual_seed(0))
    assert found.shape == (3, 2) and torch.isfinite(found).all()


class TwoKinds:
    """A stand-in data module: 30% dark images with a bright top half, 70% with a bright bottom half."""

    def __init__(self, n: int = 100):
        x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
        dark = int(0.3 * n)
        x[:dark, :, :14] = 255
        x[dark:, :, 14:] = 255
        self.x = x

    def real_samples(self, n: int, seed: int = 0) -> dict:
        idx = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed))[:n]
        return {"x": self.x[idx]}


def test_prepare_fits_the_clusters_and_their_shares_and_labels_real_batches_by_them():
    family = family_for("self_conditioned", (1, 28, 28), None, "model.clusters=2", "model.cluster_samples=100")
    assert not family.class_conditional and family.num_classes == 2
    family.prepare(TwoKinds())
    assert sorted(family.prior.tolist()) == pytest.approx([0.3, 0.7])
    top = TwoKinds().x[:3].float() / 127.5 - 1
    bottom = TwoKinds().x[-3:].float() / 127.5 - 1
    labels = family.labels({"x": torch.cat([top, bottom])})
    assert len(set(labels[:3].tolist())) == 1 and len(set(labels[3:].tolist())) == 1 and labels[0] != labels[3]
    assert family.prior[labels[0]] == pytest.approx(0.3)
    # a fitted (or restored) family keeps its clusters
    centroids = family.centroids.clone()
    other = TwoKinds()
    other.x = 255 - other.x
    family.prepare(other)
    assert torch.equal(family.centroids, centroids)


def test_samples_draw_the_clusters_in_the_data_proportions():
    family = family_for("self_conditioned", (1, 28, 28), None, "model.clusters=3")
    family.prior.copy_(torch.tensor([0.2, 0.3, 0.5]))
    inputs = family.sample_inputs(10, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(inputs["y"], minlength=3).tolist() == [2, 3, 5]
    assert torch.bincount(family.sample_inputs(7)["y"], minlength=3).tolist() == [1, 2, 4]  # largest remainders
    again = family.sample_inputs(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(inputs["y"], again["y"]) and torch.equal(inputs["z"], again["z"])
    assert (family.sample_inputs(4, clusters=1)["y"] == 1).all()


def test_the_generator_step_conditions_on_the_batch_clusters_with_the_diversity_term():
    family = family_for("self_conditioned", (1, 28, 28), None, "model.clusters=2", "model.cluster_samples=100",
                        "model.diversity_weight=1")
    family.prepare(TwoKinds())
    batch = {"x": TwoKinds(8).x.float() / 127.5 - 1}
    seen = []
    family.generator.register_forward_pre_hook(lambda module, args: seen.append(args[1]))
    result = family.generator_step(batch, None)
    assert torch.equal(seen[0][:8], family.labels(batch))  # fakes for the real batch's clusters (twice: z1, z2)
    assert result.logs["diversity"] > 0 and result.loss > result.logs["loss_g"]  # the mode-seeking term is on


def test_labels_before_the_clusters_are_fitted_is_an_error():
    family = family_for("self_conditioned", (1, 28, 28), None)
    with pytest.raises(RuntimeError, match="clusters are not fitted"):
        family.labels({"x": torch.zeros(2, 1, 28, 28)})


@pytest.mark.parametrize("override,needle", [
    ("model.clusters=0", "clusters must be an integer >= 1; got 0"),
    ("model.cluster_size=x", "cluster_size must be an integer >= 1; got 'x'"),
    ("model.cluster_samples=5", "cluster_samples must be an integer >= 100; got 5"),
])
def test_bad_options_are_one_line_user_errors(override, needle):
    with pytest.raises(UserError, match=f"^model: {needle}$"):
        family_for("self_conditioned", (1, 28, 28), 10, override)


def test_trains_on_unlabelled_images(make_cfg, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((28, 28), 10 if i % 2 else 240, dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = make_cfg("model=self_conditioned", "model.clusters=2", "model.cluster_samples=8", "data=image_folder",
                   f"data.path={folder}", "data.image_size=28", "data.channels=1", "data.batch_size=4",
                   "data.num_workers=0", "max_iterations=2", "metrics=none")
    result = train(cfg)
    state = read_checkpoint(result["last_checkpoint"])["state_dict"]
    assert bool(state["family.fitted"]) and state["family.prior"].sum().item() == pytest.approx(1.0)
    # dark and bright images fall in different clusters
    assert sorted((state["family.prior"] * 8).round().tolist()) == [4.0, 4.0]


def test_a_resumed_run_keeps_the_clusters_it_trained_with(make_cfg, tmp_path, monkeypatch):
    first = train(make_cfg("model=self_conditioned", "max_iterations=2", "metrics=none",
                           output_dir=tmp_path / "first"))
    before = read_checkpoint(first["last_checkpoint"])["state_dict"]["family.centroids"]
    # the resumed run fits clusters again when it starts (here: other ones); the checkpoint's must win
    fit = self_conditioned.kmeans
    monkeypatch.setattr(self_conditioned, "kmeans", lambda *args, **kwargs: fit(*args, **kwargs) + 1)
    resumed = read_checkpoint(train(make_cfg("model=self_conditioned", "max_iterations=4", "metrics=none",
                                             f"ckpt_path={first['last_checkpoint']}",
                                             output_dir=tmp_path / "second"))["last_checkpoint"])
    assert resumed["global_step"] > read_checkpoint(first["last_checkpoint"])["global_step"]
    assert torch.equal(resumed["state_dict"]["family.centroids"], before)


@pytest.mark.slow
def test_a_trained_generator_puts_each_cluster_on_its_mode_of_the_ring(make_cfg):
    cfg = make_cfg("experiment=gaussian_ring_self_conditioned", "max_iterations=300", "metrics=none",
                   "callbacks.samples.every_n_iterations=0", "data.n_samples=20000")
    module = load_module(train(cfg)["last_checkpoint"])
    family = module.family
    modes = GaussianMixtureDataModule(kind="ring").modes.float()
    # k-means on the ring finds its 8 modes, each an eighth of the data
    assert torch.cdist(modes, family.centroids).min(1).values.max() < 0.1
    assert family.prior.tolist() == pytest.approx([1 / 8] * 8, abs=0.02)
    mode_of_cluster = torch.cdist(family.centroids, modes).argmin(1)
    hits = []
    for k in range(8):
        inputs = family.sample_inputs(200, generator=torch.Generator().manual_seed(k), clusters=k)
        points = module.generate(inputs)
        hits.append((torch.cdist(points, modes).argmin(1) == mode_of_cluster[k]).float().mean().item())
    # chance is 1/8: each cluster's samples land on its own mode
    assert min(hits) > 0.8, hits
