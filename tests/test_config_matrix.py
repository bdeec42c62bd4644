"""Every documented option with every preset, and every model on every data: the config space, composed and built.

A user picks a preset (``experiment=...``) or a model and data, and switches groups on top of it: ``callbacks``,
``logger``, ``metrics``, ``trainer``, ``augment``. Each such combination must either build what ``train()``
builds before it fits (the data module, the family and module, the callbacks, the loggers, and the Trainer where
this machine can run it) or be refused with one ``UserError`` line that names a config key or choice. Nothing
else may be raised. Every preset also trains 2 iterations on tiny data under each ``callbacks`` option.

Presets, models, data and options are read from conf/: a new one joins the matrix by being there. Nothing is
downloaded and no data is read, except by the 2-iteration runs (a 256-image Fashion-MNIST subset, 2-D points and
the tiny folders of tests/helpers/folders.py).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from gan_lightning.config import CONF_DIR, check_overrides, group_options, validate
from gan_lightning.errors import UserError
from gan_lightning.train.build import (build_callbacks, build_family, build_loggers, build_module, build_trainer,
                                       instantiate_or_user_error)
from gan_lightning.train.fit import train

from .conftest import compose_cfg
from .helpers.folders import write_image_folders

SWITCHES = ("callbacks", "logger", "metrics", "trainer", "augment")
"""The groups a user switches on top of a preset or a model and data."""


def _train_defaults() -> dict[str, str]:
    """conf/train.yaml's choice for each group."""
    choices = {}
    for entry in OmegaConf.to_container(OmegaConf.load(CONF_DIR / "train.yaml").defaults, resolve=False):
        if isinstance(entry, dict):
            choices.update({key.split()[-1]: value for key, value in entry.items()})  # ("optional experiment")
    return choices


DEFAULTS = _train_defaults()
OPTIONS = {g: [DEFAULTS[g]] + [o for o in group_options(g) if o != DEFAULTS[g]] for g in SWITCHES}
"""Each switch's options, its default first."""


def covering_rows(options: dict[str, list[str]], together: tuple[str, str]) -> list[dict[str, str]]:
    """Combinations of the switches in which every option of every switch occurs, and every pair of options of the
    two switches ``together``: first every default, then each time the combination with the most options not yet
    used, and among those the most pairs of options not yet used together."""
    groups = list(options)

    def singles(row):
        return {(g, row[g]) for g in groups}

    def pairs(row):
        return {((g, row[g]), (h, row[h])) for g, h in itertools.combinations(groups, 2)}

    def missing(used, used_pairs):
        a, b = together
        return ({(g, o) for g, opts in options.items() for o in opts} - used) | \
            ({((a, x), (b, y)) for x in options[a] for y in options[b]} - used_pairs)

    rows = [{g: opts[0] for g, opts in options.items()}]
    used, used_pairs = singles(rows[0]), pairs(rows[0])
    candidates = [dict(zip(groups, combo)) for combo in itertools.product(*options.values())]
    while missing(used, used_pairs):
        row = max(candidates, key=lambda r: (len(missing(used, used_pairs) & (singles(r) | pairs(r))),
                                             len(pairs(r) - used_pairs)))
        rows.append(row)
        used, used_pairs = used | singles(row), used_pairs | pairs(row)
    return rows


ROWS = covering_rows(OPTIONS, together=("callbacks", "metrics"))
"""Each preset is composed with each row; callbacks and metrics go together because ``callbacks.metrics`` is the
metrics group (``${metrics}``): a preset's settings for either must survive the other being off."""
PRESETS = group_options("experiment")
MODELS = group_options("model")
DATA = group_options("data")


def switched(row: dict[str, str]) -> list[str]:
    return [f"{g}={o}" for g, o in row.items()]


# --- building a composed config ------------------------------------------------------------------------------------
NAMES_A_CHOICE = re.compile(r"\b(" + "|".join(p.name for p in CONF_DIR.iterdir() if p.is_dir()) + r")[.=:]")
"""A refusal names the key or choice it is about: ``model: ...``, ``augment=ada ...``, ``data.path ...``."""

BUILT: dict = {}
"""What was built (or the refusal) per piece and resolved config: configs that agree on what a piece reads build
the same thing, so each is built once (the rows of all bases share one output folder, so paths agree too)."""


def runs_here(trainer: DictConfig) -> bool:
    """Can this machine build this Trainer (a GPU trainer needs a GPU)?"""
    return trainer.get("accelerator") in ("cpu", "auto") or torch.cuda.is_available()


def resolved(cfg: DictConfig, *keys: str) -> str:
    return repr([OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                 for k in keys])


def build_all(cfg: DictConfig) -> list[str]:
    """Build, each on its own, what ``train(cfg)`` builds before it fits; return the refusals (``UserError``
    messages, checked to be one line naming a choice). Anything else that is raised fails the test."""
    refusals = []

    def attempt(piece: str, key: str | None, build, *args):
        if key is None or (piece, key) not in BUILT:
            try:
                BUILT[piece, key] = build(*args)
            except UserError as e:
                message = str(e)
                assert message and "\n" not in message, f"a refusal must be one line: {message!r}"
                assert NAMES_A_CHOICE.search(message), f"a refusal must name the key or choice: {message!r}"
                BUILT[piece, key] = e
        if isinstance(BUILT[piece, key], UserError):
            refusals.append(str(BUILT[piece, key]))
            return None
        return BUILT[piece, key]

    attempt("validate", None, validate, cfg)
    datamodule = attempt("data", resolved(cfg, "data"), instantiate_or_user_error, cfg.data)
    if datamodule is not None:  # (what build_module reads)
        attempt("module", resolved(cfg, "data", "model", "loss", "augment", "optim", "module", "max_iterations"),
                build_module, cfg, datamodule)
    callbacks = attempt("callbacks", resolved(cfg, "callbacks"), build_callbacks, cfg)
    assert callbacks is None or all(isinstance(c, pl.Callback) for c in callbacks), callbacks
    loggers = attempt("loggers", resolved(cfg, "logger"), build_loggers, cfg)
    if runs_here(cfg.trainer):
        attempt("trainer", resolved(cfg, "trainer", "callbacks", "logger"), build_trainer, cfg, loggers or [],
                callbacks or [])
    return refusals


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread is faster (tests/conftest.py)


@pytest.fixture(autouse=True)
def restored_environment():
    """The W&B logger sets WANDB_MODE when it is built; train() restores the environment, the matrix does here."""
    environ = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    return write_image_folders(tmp_path_factory.mktemp("folders"))


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """The output folder of every composed config of the matrix (which trains nothing, so writes next to nothing)."""
    return tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def augments(out) -> dict[str, dict]:
    """Each augment option's config."""
    return {a: OmegaConf.to_container(compose_cfg([f"augment={a}"], out).augment, resolve=True)
            for a in OPTIONS["augment"]}


TINY_MODEL = {
    "model.latent_dim": 16, "model.embed_dim": 8, "model.q_hidden": 16, "model.cluster_samples": 256,
    "model.generator.ngf": 8, "model.discriminator.ndf": 8, "model.generator.hidden": [32, 32],
    "model.discriminator.hidden": [32, 32], "model.generator.w_dim": 16, "model.generator.channel_base": 512,
    "model.generator.channel_max": 8, "model.discriminator.channel_base": 512, "model.discriminator.channel_max": 8,
    "model.generator.width": 8, "model.generator.blocks": 1, "model.content.kind": "none",
}
"""Smaller networks (where a config has the key): the matrix builds each module a few times, the smoke runs train."""
TINY_DATA = {"data.subset": 256, "data.n_samples": 1024, "data.batch_size": 4, "data.load_size": 16, "data.crop": 16}
TINY_METRICS = {"metrics.n_samples": 64, "metrics.n_reference": 64, "metrics.kid_subsets": 2, "metrics.batch_size": 64}


def edited(cfg: DictConfig, values: dict) -> DictConfig:
    """``cfg`` with each of ``values``' keys that it has set to its value (and a missing ``data.path`` to the
    tiny folders): composed configs edited for tests, as conftest's ``make_cfg`` does with overrides, without
    knowing beforehand which model and data a preset picks."""
    with open_dict(cfg):
        for key, value in values.items():
            parent_key, _, leaf = key.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key)
            if not isinstance(parent, DictConfig) or leaf not in parent.keys():
                continue
            if key == "data.subset" and parent.get("subset_per_class") is not None:
                continue  # a preset's labelled subset (experiment=few_labels/...) is small already
            if OmegaConf.is_missing(parent, leaf) or isinstance(parent[leaf], ListConfig) == isinstance(value, list):
                parent[leaf] = value  # (a list for a list, a number for a number)
    return cfg


def compose(overrides: list[str], output_dir: Path, folders: Path, values: dict = TINY_MODEL) -> DictConfig:
    """The config of ``overrides``, with small networks and data that needs a folder pointed at the tiny ones."""
    cfg = compose_cfg(overrides, output_dir)
    if "path" in cfg.data.keys() and OmegaConf.is_missing(cfg.data, "path"):
        values = {**values, "data.path": str(folders)}
    return edited(cfg, values)


# --- the matrix ---------------------------------------------------------------------------------------------------
def test_the_rows_use_every_option_of_every_switch():
    for group, options in OPTIONS.items():
        assert {row[group] for row in ROWS} == set(options), group
    assert ROWS[0] == {g: DEFAULTS[g] for g in SWITCHES}
    together = {(row["callbacks"], row["metrics"]) for row in ROWS}
    assert len(together) == len(OPTIONS["callbacks"]) * len(OPTIONS["metrics"]), together
    assert len(ROWS) <= max(*map(len, OPTIONS.values()), len(together)), ROWS  # (each row costs a composition)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_with_every_switch_or_is_refused_in_one_line(preset, out, folders):
    """Every row; the first, every default, must build."""
    outcomes = [build_all(compose([f"experiment={preset}", *switched(row)], out, folders)) for row in ROWS]
    assert outcomes[0] == [], f"experiment={preset} with the default options: {outcomes[0]}"


@pytest.fixture(scope="module")
def data_specs(out, folders) -> dict:
    """Each data option's batch layout, from its data module (which reads nothing to give it but the tiny folders'
    file listing); a data option whose module refuses the tiny folders is left out of the models' matrix."""
    specs = {}
    for data in DATA:
        try:
            specs[data] = instantiate_or_user_error(compose([f"data={data}"], out, folders).data).spec
        except UserError as e:  # (a one-line refusal, as the matrix allows)
            assert "\n" not in str(e) and NAMES_A_CHOICE.search(str(e)), str(e)
    return specs


@pytest.mark.parametrize("model", MODELS)
def test_every_model_on_every_data_builds_or_is_refused_in_one_line(model, out, folders, data_specs, augments):
    """The model's family is built for every data option's batches: it builds or is refused in one line. The data
    options that give the family what it reads (a source for the families that translate, none for those that
    generate from noise: the uses README documents; a noise model on translation data merely learns the targets)
    are composed with the model and built whole, each with the switches of one row (the rows take turns; the row's
    ``augment`` where the family takes it, else none), and the family is built with every ``augment`` option."""
    i = MODELS.index(model)
    first = compose([f"model={model}", *switched({**ROWS[i % len(ROWS)], "augment": OPTIONS["augment"][0]})], out,
                    folders)  # (also the whole config of the model on its own data)
    model_cfg, loss_cfg = (OmegaConf.to_container(first[k], resolve=True) for k in ("model", "loss"))
    uses = []
    for data, spec in data_specs.items():
        try:
            family = build_family(model_cfg, loss_cfg, spec)
        except UserError as e:
            assert "\n" not in str(e) and NAMES_A_CHOICE.search(str(e)), str(e)
            continue
        if (spec.source is not None) == family.needs_source:
            uses.append(data)
    assert uses, f"model={model} takes none of the data options"
    built = []
    for j, data in enumerate(uses):
        takes = [OPTIONS["augment"][0]]
        for augment, options in list(augments.items())[1:]:
            try:
                build_family({**model_cfg, "augment": options}, loss_cfg, data_specs[data])
                takes.append(augment)
            except UserError as e:
                assert "\n" not in str(e) and str(e).startswith("augment: "), str(e)
        if data == first.hydra.runtime.choices.data:
            cfg = first
        else:
            row = dict(ROWS[(i + j) % len(ROWS)])
            row["augment"] = row["augment"] if row["augment"] in takes else OPTIONS["augment"][0]
            cfg = compose([f"model={model}", f"data={data}", *switched(row)], out, folders)
        if not build_all(cfg):
            built.append(data)
    assert built, f"model={model} builds whole with none of the data options its family takes: {uses}"


# --- what the matrix found -----------------------------------------------------------------------------------------
def test_a_presets_callback_settings_are_dropped_when_its_callback_is_off(tmp_path, caplog):
    """``python train.py experiment=gaussian_ring callbacks=none metrics=none logger=none`` ended in a traceback: the
    preset's ``callbacks.samples.every_n_iterations`` stayed behind as a bare dict, handed to the Trainer as a
    callback."""
    cfg = compose_cfg(["experiment=gaussian_ring", "callbacks=none", "metrics=none", "logger=none", "trainer=cpu",
                       "max_iterations=2", "data.n_samples=1024"], tmp_path)
    assert OmegaConf.to_container(cfg.callbacks) == {"samples": {"every_n_iterations": 250}}  # what the preset left
    with caplog.at_level(logging.INFO, logger="gan_lightning.train.build"):
        assert build_callbacks(cfg) == []
    assert "callbacks.samples (every_n_iterations=250)" in caplog.text and "ignored" in caplog.text
    probe = Iterations()
    train(cfg, callbacks=[probe])
    assert probe.iteration == 2


def test_settings_for_a_logger_or_metrics_that_are_off_are_dropped_too(tmp_path):
    cfg = compose_cfg(["model=dcgan", "logger=none", "metrics=none", "trainer=cpu"], tmp_path)
    with open_dict(cfg):  # what a preset tuning W&B and the metrics would leave under logger=none, metrics=none
        cfg.logger = {"wandb": {"project": "mine"}}
        cfg.metrics = {"every_n_iterations": 100}
    assert build_loggers(cfg) == []
    assert not any(type(c).__name__ == "MetricsCallback" for c in build_callbacks(cfg))
    cfg.optimized_metric = "metrics/fid_domain"  # and a search needs metrics that are on
    with pytest.raises(UserError, match="needs metrics during training"):
        validate(cfg)


@pytest.mark.parametrize("node,message", [
    ({"_target_": "torch.nn.Identity"}, "callbacks.extra: torch.nn.Identity is not a Lightning callback"),
    (5, "callbacks.extra must be a config with a _target_, or null to turn it off; got 5"),
])
def test_a_callback_entry_that_builds_no_callback_is_one_line(tmp_path, node, message):
    cfg = compose_cfg(["model=dcgan", "callbacks=none"], tmp_path)
    with open_dict(cfg):
        cfg.callbacks.extra = node
    with pytest.raises(UserError) as info:
        build_callbacks(cfg)
    assert str(info.value) == message


def test_a_paired_model_on_unpaired_data_is_refused_in_one_line(tmp_path):
    cfg = compose_cfg(["model=pix2pix", "data=fashion_domains"], tmp_path)
    with pytest.raises(UserError, match=r"^model: Pix2Pix learns from aligned pairs, .*unpaired.*data=fashion_edges"):
        build_module(cfg, instantiate_or_user_error(cfg.data))


def test_a_file_shared_by_a_groups_options_is_not_an_option(tmp_path):
    assert "_torchvision" not in DATA and (CONF_DIR / "data" / "_torchvision.yaml").is_file()
    with pytest.raises(UserError, match="unknown data '_torchvision'"):
        check_overrides(["data=_torchvision"])


# --- 2 iterations of every preset ---------------------------------------------------------------------------------
class Iterations(pl.Callback):
    """Records the iteration a run ended at (callbacks=none writes no checkpoint to read it from)."""

    iteration = None

    def on_train_end(self, trainer, pl_module):
        self.iteration = pl_module.iteration


@pytest.mark.parametrize("callbacks", OPTIONS["callbacks"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_two_iterations(preset, callbacks, tmp_path, tmp_path_factory, fmnist_root, folders):
    cfg = compose([f"experiment={preset}", f"callbacks={callbacks}", "trainer=cpu", "logger=none", "max_iterations=2"],
                  tmp_path / "run", folders, {**TINY_MODEL, **TINY_DATA, **TINY_METRICS})
    with open_dict(cfg):
        if "root" in cfg.data.keys():  # the torchvision sets: the staged Fashion-MNIST (conftest)
            cfg.data.root = str(fmnist_root)
        if "image_size" in cfg.data.keys() and "path" in cfg.data.keys():  # folders (torchvision sets keep theirs)
            cfg.data.image_size = 16
        if "cache_dir" in (cfg.get("metrics") or {}):  # the real images' statistics, computed once
            cfg.metrics.cache_dir = str(tmp_path_factory.getbasetemp() / "metric_cache")
    probe = Iterations()
    train(cfg, callbacks=[probe])
    assert probe.iteration == 2
