"""Shared fixtures: the real configs composed with Hydra's compose API, edited for CPU, few steps and tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from gan_lightning.config import compose_config

ROOT = Path(__file__).resolve().parents[1]


def _share_the_cores() -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2``), each worker and the subprocesses it starts get their share
    of the cores as torch threads, instead of every worker running as many threads as there are cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores()
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Small, fast versions of every model for tests.
TINY = {
    "dcgan": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16"],
    "fcgan": ["model.generator.hidden=[64,64]", "model.discriminator.hidden=[64,64]", "model.latent_dim=16"],
    "cgan": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16", "model.embed_dim=8"],
    "self_conditioned": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16",
                         "model.embed_dim=8", "model.cluster_samples=256"],
    "acgan": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16", "model.embed_dim=8"],
    "infogan": ["model.generator.ngf=8", "model.discriminator.ndf=8", "model.latent_dim=16", "model.q_hidden=16"],
    "srgan": ["data=fashion_sr", "model.generator.width=8", "model.generator.blocks=1", "model.discriminator.ndf=8",
              "model.discriminator.layers=4", "model.discriminator.hidden=16", "model.warmup=1"],
    "srresnet": ["data=fashion_sr", "model.generator.width=8", "model.generator.blocks=1"],
    "pix2pix": ["data=fashion_edges", "model.generator.ngf=4", "model.discriminator.ndf=4"],
    "pix2pix_l1": ["data=fashion_edges", "model.generator.ngf=4"],
    "inpaint": ["data=fashion_inpaint", "model.generator.ngf=4", "model.discriminator.ndf=4"],
    "inpaint_l1": ["data=fashion_inpaint", "model.generator.ngf=4"],
    "cyclegan": ["data=fashion_domains", "model.generator.ngf=4", "model.generator.blocks=1",
                 "model.discriminator.ndf=4", "model.pool_size=8"],
    # every phase on: R1 every 4 discriminator steps, path length every 2 iterations, style mixing
    "stylegan2": ["model.latent_dim=16", "model.generator.w_dim=16", "model.generator.channel_base=64",
                  "model.generator.channel_max=8", "model.discriminator.channel_base=64",
                  "model.discriminator.channel_max=8", "model.r1_interval=4", "model.pl_weight=2",
                  "model.pl_interval=2", "model.mixing=0.9"],
}
FASHION_DATA = ("data=fashion_mnist", "data=fashion_sr", "data=fashion_edges", "data=fashion_domains",
                "data=fashion_inpaint")
"""The data configs read from Fashion-MNIST (tests point them at the staged copy and a 256-image subset)."""


def compose_cfg(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    return compose_config(overrides, output_dir, config_name, cwd=ROOT)


@pytest.fixture
def make_cfg(tmp_path, fmnist_root):
    """``make_cfg(*overrides)``: a ready-to-train test config (trainer=cpu, logger=csv, tiny networks, a
    256-image Fashion-MNIST subset, outputs under tmp_path)."""

    def _make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        overrides = list(overrides)
        default_model = None if any(o.startswith("experiment=") for o in overrides) else "dcgan"
        model = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), default_model)
        if model == default_model == "dcgan" and "model=dcgan" not in overrides:
            overrides.insert(0, "model=dcgan")  # the tests' default: DCGAN (train.py's is model=self_conditioned)
        base = ["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
                "trainer.enable_model_summary=false", "module.log_every_n_iterations=1"]
        data = [o for o in overrides + TINY.get(model, []) if o.startswith(("data=", "experiment="))]
        if not data or data[-1] in FASHION_DATA:
            base += [f"data.root={fmnist_root}", "data.subset=256"]
        return compose_cfg(base + TINY.get(model, []) + overrides, output_dir or tmp_path / "run")

    return _make


@pytest.fixture(scope="session")
def fmnist_root(tmp_path_factory) -> Path:
    if not FASHION_MNIST.is_dir():
        pytest.skip("real Fashion-MNIST missing: apt-get install dataset-fashion-mnist")
    return tmp_path_factory.mktemp("data")


HANG_LIMIT_S = 1800
"""The only wall-clock limit in the suite: a guard against a hung subprocess, far beyond what any test needs on
a slow or busy machine (no test measures speed; benchmarks/ does)."""


def run_cli(script: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = HANG_LIMIT_S):
    """Run an entry point (train.py, generate.py) in a subprocess, as a user would."""
    try:
        return subprocess.run(
            [sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script} {' '.join(args)} did not finish within {timeout} s: that limit only guards against a "
                    "hung process (HANG_LIMIT_S in tests/conftest.py); a slow machine never reaches it")


def run_entry(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an entry point's ``__main__`` in this process, as ``python script args...`` would, and return its exit
    status, stdout and stderr like ``run_cli``. For the commands whose process adds nothing to what a test checks
    (generate, evaluate, upscale, report: no Hydra logging set-up, no signals, no DDP): it saves the 4-5 s a fresh
    interpreter spends importing torch and Lightning. ``env``: variables set for the call. ``run_cli`` stays the
    choice for train.py and for anything about the process itself."""
    import contextlib
    import io
    import runpy

    from hydra.core.global_hydra import GlobalHydra

    argv, out, err, code = sys.argv, io.StringIO(), io.StringIO(), 0
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    sys.argv = [str(ROOT / script), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(ROOT / script), run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            err.write(f"{e.code}\n")
    finally:
        sys.argv = argv
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        GlobalHydra.instance().clear()
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def one_thread():
    """One torch thread for the test (``pytestmark = pytest.mark.usefixtures("one_thread")``): the networks of many
    tests are tiny, and one thread is faster, many times faster on cores busy with other work."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
