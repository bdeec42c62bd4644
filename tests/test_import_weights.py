"""Importing the authors' pix2pix and CycleGAN weights (``import_weights.py``, ``gan_lightning.importers``) and
starting training from a checkpoint's weights (``train.py init_from=...``).

The files are built here in the authors' formats (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py): the
key names and shapes of ``UnetGenerator`` (nested ``UnetSkipConnectionBlock``s), ``ResnetGenerator`` and
``NLayerDiscriminator``, with random tensors. Each network's output is computed from those keys by a functional
forward written here in the authors' module order (not by the package's modules), and the imported package
network must compute the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lightning.errors import UserError
from gan_lightning.importers import read
from gan_lightning.train.checkpoints import check_init_from, load_module, read_checkpoint
from tests.conftest import compose_cfg, run_entry
from tests.helpers.folders import write_image_folders

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the authors' formats ----------------------------------------------------------------------------------------
class Tensors:
    """Random tensors for a state dict: convolution weights, and norm layers' entries."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def randn(self, *shape: int, scale: float = 0.2) -> Tensor:
        return torch.randn(*shape, generator=self.gen) * scale

    def conv(self, sd: dict, name: str, shape: tuple[int, ...], bias: bool, bias_size: int | None = None) -> None:
        sd[f"{name}.weight"] = self.randn(*shape)
        if bias:
            sd[f"{name}.bias"] = self.randn(bias_size or shape[0], scale=0.05)

    def norm(self, sd: dict, name: str, channels: int, norm: str, stale: bool = False) -> None:
        """BatchNorm's five entries; instance norm: none, or (``stale``) the running statistics old CycleGAN
        checkpoints carry."""
        if norm == "batch":
            sd[f"{name}.weight"] = 1 + self.randn(channels, scale=0.1)
            sd[f"{name}.bias"] = self.randn(channels, scale=0.1)
        if norm == "batch" or stale:
            sd[f"{name}.running_mean"] = self.randn(channels, scale=0.1)
            sd[f"{name}.running_var"] = 0.5 + torch.rand(channels, generator=self.gen)
            sd[f"{name}.num_batches_tracked"] = torch.tensor(1000)


def unet_prefix(level: int) -> str:
    """``UnetGenerator.model`` is the outermost block; each block's ``model`` Sequential holds the next block at
    index 1 (outermost) or 3 (the others)."""
    return "model.model." + "".join("1.model." if k == 0 else "3.model." for k in range(level))


def authors_unet(in_c: int, out_c: int, num_downs: int, ngf: int, norm: str = "batch", seed: int = 0) -> dict:
    """``UnetGenerator(in_c, out_c, num_downs, ngf, norm_layer)``'s state dict: level k (0 outermost) has
    ``inner_nc = ngf * min(2**k, 8)``, ``outer_nc`` the level above's inner (``out_c`` for the outermost's
    up-convolution); convolutions have a bias only under instance norm (``use_bias``), except the outermost
    up-convolution's, which always has one."""
    t, sd = Tensors(seed), {}
    bias = norm == "instance"
    for k in range(num_downs):
        p, inner = unet_prefix(k), ngf * min(2**k, 8)
        outer = ngf * min(2 ** (k - 1), 8) if k else out_c
        if k == 0:
            t.conv(sd, p + "0", (inner, in_c, 4, 4), bias)
            t.conv(sd, p + "3", (2 * inner, out_c, 4, 4), True, out_c)
        elif k < num_downs - 1:
            t.conv(sd, p + "1", (inner, outer, 4, 4), bias)
            t.norm(sd, p + "2", inner, norm)
            t.conv(sd, p + "5", (2 * inner, outer, 4, 4), bias, outer)
            t.norm(sd, p + "6", outer, norm)
        else:
            t.conv(sd, p + "1", (inner, outer, 4, 4), bias)
            t.conv(sd, p + "3", (inner, outer, 4, 4), bias, outer)
            t.norm(sd, p + "4", outer, norm)
    return sd


def authors_resnet(in_c: int, out_c: int, ngf: int, blocks: int, norm: str = "instance", stale: bool = False,
                   seed: int = 0) -> dict:
    """``ResnetGenerator(in_c, out_c, ngf, norm_layer, n_blocks=blocks)`` (2 downsamplings, reflection padding, no
    dropout): ``model`` = pad, conv7, norm, relu, 2 x (conv3/2, norm, relu), blocks, 2 x (convT3/2, norm, relu),
    pad, conv7, tanh; each block's ``conv_block`` = pad, conv3, norm, relu, pad, conv3, norm."""
    t, sd = Tensors(seed), {}
    bias = norm == "instance"
    t.conv(sd, "model.1", (ngf, in_c, 7, 7), bias)
    t.norm(sd, "model.2", ngf, norm, stale)
    i, width = 4, ngf
    for _ in range(2):
        t.conv(sd, f"model.{i}", (2 * width, width, 3, 3), bias)
        t.norm(sd, f"model.{i + 1}", 2 * width, norm, stale)
        i, width = i + 3, 2 * width
    for _ in range(blocks):
        for conv, nrm in ((1, 2), (5, 6)):
            t.conv(sd, f"model.{i}.conv_block.{conv}", (width, width, 3, 3), bias)
            t.norm(sd, f"model.{i}.conv_block.{nrm}", width, norm, stale)
        i += 1
    for _ in range(2):
        t.conv(sd, f"model.{i}", (width, width // 2, 3, 3), bias, width // 2)  # (ConvTranspose2d: in, out, k, k)
        t.norm(sd, f"model.{i + 1}", width // 2, norm, stale)
        i, width = i + 3, width // 2
    t.conv(sd, f"model.{i + 1}", (out_c, ngf, 7, 7), True)
    return sd


def authors_patchgan(in_c: int, ndf: int, n_layers: int, norm: str = "batch", stale: bool = False,
                     seed: int = 0) -> dict:
    """``NLayerDiscriminator(in_c, ndf, n_layers, norm_layer)``: conv4/2 (bias), leaky; n_layers - 1 x (conv4/2,
    norm, leaky); conv4/1, norm, leaky; conv4/1 to 1 channel (bias)."""
    t, sd = Tensors(seed), {}
    bias = norm == "instance"
    t.conv(sd, "model.0", (ndf, in_c, 4, 4), True)
    i, mult = 2, 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        t.conv(sd, f"model.{i}", (ndf * mult, ndf * prev, 4, 4), bias)
        t.norm(sd, f"model.{i + 1}", ndf * mult, norm, stale)
        i += 3
    t.conv(sd, f"model.{i}", (1, ndf * mult, 4, 4), True)
    return sd


# --- their forward passes, functionally ----------------------------------------------------------------------------
def _norm(sd: dict, name: str, x: Tensor) -> Tensor:
    if f"{name}.weight" in sd:  # BatchNorm2d in eval mode: the running statistics
        return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-5)
    return F.instance_norm(x, eps=1e-5)  # InstanceNorm2d(affine=False, track_running_stats=False)


def _conv(sd: dict, name: str, x: Tensor, stride: int = 1, padding: int = 0) -> Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride, padding=padding)


def _up(sd: dict, name: str, x: Tensor, kernel: int) -> Tensor:
    if kernel == 4:  # the U-Net's ConvTranspose2d(k=4, s=2, p=1)
        return F.conv_transpose2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=2, padding=1)
    return F.conv_transpose2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=2, padding=1,
                              output_padding=1)


def unet_forward(sd: dict, x: Tensor, num_downs: int) -> Tensor:
    """``UnetGenerator.forward`` in eval mode (no dropout). The inner blocks start with an in-place LeakyReLU,
    which rewrites the block's input before ``cat([x, model(x)])`` reads it: their skip is ``leaky(x)``."""

    def block(k: int, x: Tensor) -> Tensor:
        p = unet_prefix(k)
        if k == 0:
            h = block(1, _conv(sd, p + "0", x, 2, 1))
            return torch.tanh(_up(sd, p + "3", F.relu(h), 4))
        x = F.leaky_relu(x, 0.2)  # (in place in their code: the skip below sees it)
        h = _conv(sd, p + "1", x, 2, 1)
        if k < num_downs - 1:
            h = block(k + 1, _norm(sd, p + "2", h))
            h = _norm(sd, p + "6", _up(sd, p + "5", F.relu(h), 4))
        else:
            h = _norm(sd, p + "4", _up(sd, p + "3", F.relu(h), 4))
        return torch.cat([x, h], 1)

    return block(0, x)


def resnet_forward(sd: dict, x: Tensor, blocks: int) -> Tensor:
    """``ResnetGenerator.forward`` (reflection padding, 2 downsamplings)."""
    pad = lambda h, p: F.pad(h, (p,) * 4, mode="reflect")  # noqa: E731
    h = F.relu(_norm(sd, "model.2", _conv(sd, "model.1", pad(x, 3))))
    i = 4
    for _ in range(2):
        h = F.relu(_norm(sd, f"model.{i + 1}", _conv(sd, f"model.{i}", h, 2, 1)))
        i += 3
    for _ in range(blocks):
        b = f"model.{i}.conv_block."
        r = F.relu(_norm(sd, b + "2", _conv(sd, b + "1", pad(h, 1))))
        h = h + _norm(sd, b + "6", _conv(sd, b + "5", pad(r, 1)))
        i += 1
    for _ in range(2):
        h = F.relu(_norm(sd, f"model.{i + 1}", _up(sd, f"model.{i}", h, 3)))
        i += 3
    return torch.tanh(_conv(sd, f"model.{i + 1}", pad(h, 3)))


def patchgan_forward(sd: dict, x: Tensor, n_layers: int) -> Tensor:
    """``NLayerDiscriminator.forward``."""
    h = F.leaky_relu(_conv(sd, "model.0", x, 2, 1), 0.2)
    i = 2
    for n in range(1, n_layers + 1):
        h = F.leaky_relu(_norm(sd, f"model.{i + 1}", _conv(sd, f"model.{i}", h, 2 if n < n_layers else 1, 1)), 0.2)
        i += 3
    return _conv(sd, f"model.{i}", h, 1, 1)


def save(sd: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


def imported_module(kind: str, src: Path, tmp_path: Path, *overrides: str):
    """``import_weights`` into ``tmp_path/imported.ckpt``, read back by ``load_module`` (as generate.py does)."""
    from gan_lightning.importers.checkpoint import import_weights

    out = tmp_path / f"imported-{kind}-{len(list(tmp_path.glob('imported-*')))}.ckpt"
    result = import_weights(kind, str(src), str(out), overrides=list(overrides))
    return load_module(out), result, out


def assert_same(a: Tensor, b: Tensor) -> None:
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (a - b).abs().max()


# --- the readers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_downs,norm", [(5, "batch"), (6, "batch"), (5, "instance")])
def test_pix2pix_networks_compute_what_the_authors_compute(tmp_path, num_downs, norm):
    g = authors_unet(3, 3, num_downs, ngf=4, norm=norm, seed=1)
    d = authors_patchgan(6, ndf=4, n_layers=2, norm=norm, seed=2)
    src = save(g, tmp_path / "run" / "latest_net_G.pth")
    save(d, tmp_path / "run" / "latest_net_D.pth")

    imported = read("pix2pix", src)
    assert len(imported.state) == len(g) + len(d)  # every tensor, renamed: none dropped
    assert f"model.generator.num_downs={num_downs}" in imported.overrides
    assert {f"model.generator.norm={norm}", "model.discriminator.n_layers=2"} <= set(imported.overrides)
    assert f"model.generator.dropout_layers={num_downs - 5}" in imported.overrides  # the authors' num_downs - 5

    module, result, _ = imported_module("pix2pix", src, tmp_path)
    assert result["loaded"] == ["generator", "discriminator"] and result["at_init"] == []
    size = 2**num_downs
    a = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    b = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        assert_same(module.family.generator(a), unet_forward(g, a, num_downs))
        assert_same(module.family.discriminator(b, a=a), patchgan_forward(d, torch.cat([a, b], 1), 2))
    spec = module.family.spec
    assert spec.shapes["a"] == spec.shapes["b"] == (3, size, size)


def test_cyclegan_networks_map_to_their_directions_and_domains(tmp_path):
    """G_A (A -> B) is generator.ab, G_B generator.ba; D_A, trained on B in the authors' code, judges B
    (discriminator.b). Old checkpoints' InstanceNorm running statistics are dropped, nothing else."""
    run = tmp_path / "horse2zebra"
    files = {"G_A": authors_resnet(3, 3, ngf=4, blocks=2, stale=True, seed=1),
             "G_B": authors_resnet(3, 3, ngf=4, blocks=2, seed=2),
             "D_A": authors_patchgan(3, ndf=4, n_layers=3, norm="instance", stale=True, seed=3),
             "D_B": authors_patchgan(3, ndf=4, n_layers=3, norm="instance", seed=4)}
    for name, sd in files.items():
        save(sd, run / f"latest_net_{name}.pth")
    stale = sum(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in files["G_A"])
    assert stale > 0

    imported = read("cyclegan", run / "latest_net_D_B.pth")  # any file of the run names it
    assert len(imported.state) == sum(len(sd) for sd in files.values()) - stale - sum(
        k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in files["D_A"])
    assert {"model.generator.blocks=2", "model.generator.downsamplings=2", "model.generator.norm=instance",
            "model.discriminator.n_layers=3", "model.discriminator.ndf=4"} <= set(imported.overrides)

    module, result, _ = imported_module("cyclegan", run / "latest_net_G_A.pth", tmp_path)
    assert sorted(result["loaded"]) == ["discriminator.a", "discriminator.b", "generator.ab", "generator.ba"]
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    fam = module.family
    with torch.no_grad():
        assert_same(fam.generator.ab(x), resnet_forward(files["G_A"], x, 2))
        assert_same(fam.generator.ba(x), resnet_forward(files["G_B"], x, 2))
        assert_same(fam.discriminator.b(x), patchgan_forward(files["D_A"], x, 3))
        assert_same(fam.discriminator.a(x), patchgan_forward(files["D_B"], x, 3))


def test_one_released_generator_is_a_to_b_and_the_rest_stays_at_init(tmp_path):
    g = authors_resnet(3, 3, ngf=4, blocks=1, seed=7)
    src = save(g, tmp_path / "horse2zebra.pth")
    module, result, _ = imported_module("cyclegan", src, tmp_path)
    assert result["loaded"] == ["generator.ab"]
    assert sorted(result["at_init"]) == ["discriminator.a", "discriminator.b", "generator.ba"]
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        assert_same(module.family.generator.ab(x), resnet_forward(g, x, 1))


def test_residual_blocks_with_the_authors_dropout_keep_their_second_convolution(tmp_path):
    """``use_dropout`` puts a Dropout at ``conv_block.4``: the second convolution and norm move to 6 and 7."""
    g = authors_resnet(3, 3, ngf=4, blocks=2, seed=3)
    shifted = {}
    for key, value in g.items():
        parts = key.split(".")
        if len(parts) > 3 and parts[2] == "conv_block" and int(parts[3]) >= 5:
            parts[3] = str(int(parts[3]) + 1)
        shifted[".".join(parts)] = value
    module, result, _ = imported_module("cyclegan", save(shifted, tmp_path / "g.pth"), tmp_path)
    assert any("dropout" in note for note in result["notes"])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    with torch.no_grad():
        assert_same(module.family.generator.ab(x), resnet_forward(g, x, 2))  # (eval mode: no dropout either way)


def test_every_key_has_a_place_and_none_is_left_over(tmp_path):
    """A tensor the package's network has no place for, or lacks, is a one-line error naming it."""
    g = authors_unet(3, 3, 5, ngf=4, seed=1)
    extra = {**g, "model.model.1.model.9.weight": torch.zeros(1)}
    with pytest.raises(UserError, match=r"model\.model\.1\.model\.9\.weight has no place"):
        read("pix2pix", save(extra, tmp_path / "a" / "latest_net_G.pth"))
    missing = {k: v for k, v in g.items() if k != "model.model.1.model.2.running_var"}
    with pytest.raises(UserError, match=r"lacks downs\.1\.2\.running_var"):
        imported_module("pix2pix", save(missing, tmp_path / "b" / "latest_net_G.pth"), tmp_path)
    assert not list(tmp_path.glob("*.ckpt"))


def test_the_ema_generator_takes_the_generators_weights_when_the_file_has_none(tmp_path):
    g = authors_unet(3, 3, 5, ngf=4, seed=1)
    module, result, _ = imported_module("pix2pix", save(g, tmp_path / "r" / "latest_net_G.pth"), tmp_path,
                                        "module.ema_decay=0.999")
    assert result["loaded"] == ["generator"] and sorted(result["at_init"]) == ["discriminator"]
    ema, raw = module.generator_ema.state_dict(), module.family.generator.state_dict()
    assert ema.keys() == raw.keys() and all(torch.equal(ema[k], raw[k]) for k in raw)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert_same(module.generate({"a": x}), unet_forward(g, x, 5))  # what sampling uses: the EMA


def test_any_kind_through_read_declared_data_and_leftovers(tmp_path, monkeypatch):
    """The command takes whatever a reader returns: here a DCGAN generator on ``data=spec_only`` (the images
    declared, no data read or recorded); the EMA starts as the generator; a tensor without a place is refused."""
    from gan_lightning.importers import Imported, checkpoint

    overrides = ["model=dcgan", "model.generator.ngf=4", "model.discriminator.ndf=4", "model.latent_dim=8",
                 "data=spec_only", "data.shape=[1,32,32]", "data.num_classes=null"]
    donor = checkpoint.build_module_for(overrides, tmp_path)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v + 7 for k, v in donor.state_dict().items()
             if k.startswith("family.generator.")}
    monkeypatch.setattr(checkpoint, "read", lambda kind, src: Imported(state, overrides, "a test generator"))
    module, result, out = imported_module("pix2pix", tmp_path, tmp_path)
    assert result["loaded"] == ["generator"] and result["at_init"] == ["discriminator"]
    assert any("generator_ema: the generator's weights" in n for n in result["notes"])
    assert "cfg" not in read_checkpoint(out)["gan_lightning"]["config"]["data"]
    assert module.family.spec.shape == (1, 32, 32)
    for key, value in state.items():
        assert torch.equal(module.state_dict()[key], value)
        assert torch.equal(module.state_dict()["generator_ema." + key[len("family.generator."):]], value)

    state["family.generator.extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError, match=r"its generator has extra\.weight, which the package's generator lacks"):
        imported_module("pix2pix", tmp_path, tmp_path)
    with pytest.raises(UserError, match=r"data\.shape must be \[channels, height, width\]"):
        checkpoint.build_module_for(["model=dcgan", "data=spec_only"], tmp_path)


# --- the command -------------------------------------------------------------------------------------------------
@pytest.fixture
def pix2pix_run(tmp_path) -> Path:
    """An authors' pix2pix run folder: a 5-downsampling U-Net (ngf 4, 32 px) and its PatchGAN on (a, b)."""
    run = tmp_path / "facades"
    save(authors_unet(3, 3, 5, ngf=4, seed=1), run / "latest_net_G.pth")
    save(authors_patchgan(6, ndf=4, n_layers=1, seed=2), run / "latest_net_D.pth")
    return run


def test_the_command_writes_a_checkpoint_that_translate_reads(pix2pix_run, tmp_path):
    from PIL import Image

    out = tmp_path / "ckpts" / "facades.ckpt"
    r = run_entry("import_weights.py", "kind=pix2pix", f"src={pix2pix_run / 'latest_net_G.pth'}", f"out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "imported pix2pix generator and discriminator" in r.stdout and "init_from=" in r.stdout
    ckpt = read_checkpoint(out)
    assert ckpt["gan_lightning"]["iteration"] == 0 and ckpt["gan_lightning"]["imported"]["kind"] == "pix2pix"
    assert "cfg" not in ckpt["gan_lightning"]["config"]["data"]  # no data was needed, nor recorded
    assert [p.name for p in out.parent.iterdir()] == ["facades.ckpt"]  # (no temporary file left)
    module = load_module(out)
    g = torch.load(pix2pix_run / "latest_net_G.pth", weights_only=True)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert_same(module.family.generator(x), unet_forward(g, x, 5))

    images = tmp_path / "photos"
    images.mkdir()
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).round().astype("uint8"), "RGB").save(
        images / "x.png")
    r = run_entry("translate.py", f"ckpt={out}", f"input={images}", f"out={tmp_path / 'translated'}")
    assert r.returncode == 0, r.stderr[-2000:]
    with Image.open(tmp_path / "translated" / "x.png") as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def _refused(r, out: Path, *words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_bad_input_is_one_line_exit_2_and_writes_nothing(pix2pix_run, tmp_path):
    out = tmp_path / "out" / "x.ckpt"
    resnet = save(authors_resnet(3, 3, ngf=4, blocks=1), tmp_path / "cyclegan" / "latest_net_G_A.pth")
    text = tmp_path / "notes.pth"
    text.write_text("not a tensor file\n")
    data = (pix2pix_run / "latest_net_G.pth").read_bytes()
    truncated = tmp_path / "cut" / "latest_net_G.pth"
    truncated.parent.mkdir()
    truncated.write_bytes(data[: len(data) // 2])
    cases = [
        (("kind=pix2pix", f"src={resnet}"), ("ResNet generator", "kind=cyclegan")),
        (("kind=cyclegan", f"src={pix2pix_run / 'latest_net_G.pth'}"), ("U-Net",)),
        (("kind=pix2pix", f"src={text}"), ("not a readable",)),
        (("kind=pix2pix", f"src={truncated}"), ("truncated",)),
        (("kind=pix2pix", f"src={tmp_path / 'nowhere.pth'}"), ("no such file",)),
        (("kind=pixtopix", f"src={resnet}"), ("kind",)),
    ]
    for args, words in cases:
        _refused(run_entry("import_weights.py", *args, f"out={out}"), out, *words)

    good = run_entry("import_weights.py", "kind=pix2pix", f"src={pix2pix_run / 'latest_net_G.pth'}", f"out={out}")
    assert good.returncode == 0, good.stderr[-2000:]
    before = out.read_bytes()
    again = run_entry("import_weights.py", "kind=pix2pix", f"src={pix2pix_run / 'latest_net_G.pth'}", f"out={out}")
    assert again.returncode == 2 and "exists" in again.stderr and out.read_bytes() == before
    package = run_entry("import_weights.py", "kind=pix2pix", f"src={out}", f"out={tmp_path / 'y.ckpt'}")
    _refused(package, tmp_path / "y.ckpt", "gan_lightning checkpoint")
    # user overrides that build other networks than the file's: the first mismatch, named
    other = run_entry("import_weights.py", "kind=pix2pix", f"src={pix2pix_run / 'latest_net_G.pth'}",
                      f"out={tmp_path / 'z.ckpt'}", 'overrides=["data.channels=1"]')
    _refused(other, tmp_path / "z.ckpt", "generator is for 3 channels", "for 1")


# --- init_from ---------------------------------------------------------------------------------------------------
def _train_cfg(tmp_path: Path, overrides: list[str], *extra: str):
    folders = write_image_folders(tmp_path / "pairs", size=32, n=4)
    base = ["trainer=cpu", "logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary",
            "trainer.enable_model_summary=false", "metrics=none", "callbacks.samples.every_n_iterations=0",
            "module.log_every_n_iterations=1"]
    return compose_cfg([*base, *overrides, f"data.path={folders}", "data.batch_size=2", *extra], tmp_path / "run")


def test_init_from_starts_a_fresh_run_from_the_imported_weights(pix2pix_run, tmp_path):
    import pytorch_lightning as pl

    from gan_lightning.train.fit import train

    _, result, ckpt = imported_module("pix2pix", pix2pix_run / "latest_net_G.pth", tmp_path)
    weights = read_checkpoint(ckpt)["state_dict"]
    seen = {}

    class AtStart(pl.Callback):
        def on_train_start(self, trainer, module):
            seen["iteration"] = module.iteration
            seen["optimizer_state"] = [len(o.state) for o in module.optimizers()]
            seen["same"] = all(torch.equal(v, weights[k]) for k, v in module.state_dict().items()
                               if k.startswith(("family.generator.", "family.discriminator.")))

    cfg = _train_cfg(tmp_path, result["overrides"], "max_iterations=2", f"init_from={ckpt}")
    done = train(cfg, callbacks=[AtStart()])
    assert seen == {"iteration": 0, "optimizer_state": [0, 0], "same": True}
    assert done["iteration"] == 2  # counted from 0: a new run, not a resumed one
    trained = read_checkpoint(done["last_checkpoint"])
    assert "imported" not in trained["gan_lightning"]
    assert not torch.equal(trained["state_dict"]["family.generator.downs.0.0.weight"],
                           weights["family.generator.downs.0.0.weight"])  # and it trained from there


def test_init_from_refusals(pix2pix_run, tmp_path):
    from gan_lightning.train.fit import train

    _, result, ckpt = imported_module("pix2pix", pix2pix_run / "latest_net_G.pth", tmp_path)
    with pytest.raises(UserError, match=r"init_from: .*its generator is for 3 channels, this run's for 1"):
        train(_train_cfg(tmp_path, result["overrides"], "data.channels=1", "max_iterations=1", f"init_from={ckpt}"))
    with pytest.raises(UserError, match="give one of them"):
        train(_train_cfg(tmp_path, result["overrides"], f"ckpt_path={ckpt}", f"init_from={ckpt}"))
    check_init_from(str(ckpt), "last")  # a re-run resumes its own last.ckpt; the first run starts from init_from
    with pytest.raises(UserError, match="holds imported weights.*init_from="):  # an import has nothing to resume
        train(_train_cfg(tmp_path, result["overrides"], f"ckpt_path={ckpt}"))
    with pytest.raises(UserError, match="init_from: no such checkpoint file"):
        train(_train_cfg(tmp_path, result["overrides"], f"init_from={tmp_path / 'nowhere.ckpt'}"))
    with pytest.raises(UserError, match="holds none of this run's networks"):
        train(_train_cfg(tmp_path, ["model=cyclegan", "data=unaligned_folder", "data.crop=32", "data.channels=3",
                                    "model.generator.ngf=4", "model.generator.blocks=1", "model.discriminator.ndf=4"],
                         f"init_from={ckpt}"))
