"""Every command that writes checks where first: a location that can't be written is one line and exit 2 before any
work, and nothing is left half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gan_lightning.errors import UserError
from gan_lightning.outputs import atomic_write, check_output

from .conftest import run_cli


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A plain file where a folder would have to be."""
    path = tmp_path / "not_a_folder"
    path.write_text("keep me")
    return path


def test_check_output_names_the_option_the_path_and_the_reason(tmp_path, a_file):
    assert check_output(tmp_path / "new" / "deeper" / "x.npz", "out") == tmp_path / "new" / "deeper" / "x.npz"
    assert not (tmp_path / "new").exists()  # nothing created
    with pytest.raises(UserError, match=rf"^out: cannot create {a_file}/x.npz: {a_file} is a file"):
        check_output(a_file / "x.npz", "out")
    with pytest.raises(UserError, match="^out: .* is a folder: give a file path"):
        check_output(tmp_path, "out")
    with pytest.raises(UserError, match="^hydra.run.dir: .* exists and is not a folder"):
        check_output(a_file, "hydra.run.dir", folder=True)
    with pytest.raises(UserError, match="^out: cannot write under /proc"):  # a read-only file system, even as root
        check_output("/proc/gan_lightning/x.json", "out")


def test_atomic_write_leaves_the_old_file_or_the_whole_new_one(tmp_path):
    target = tmp_path / "samples.npz"
    atomic_write(target, lambda tmp: np.savez_compressed(tmp, images=np.zeros(3)))
    assert np.load(target)["images"].shape == (3,)

    def fails_half_way(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fails_half_way)
    assert np.load(target)["images"].shape == (3,)  # the old file, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npz"]  # no temporary left behind


def test_atomic_write_gives_a_file_the_permissions_of_any_new_file(tmp_path):
    """Not the private 0600 of the temporary file it starts as: results are for sharing."""
    (tmp_path / "plain").write_text("x")
    atomic_write(tmp_path / "written.json", lambda tmp: tmp.write_text("{}"))
    mode = lambda p: (tmp_path / p).stat().st_mode & 0o777  # noqa: E731
    assert mode("written.json") == mode("plain")


@pytest.mark.parametrize("script,args", [
    ("generate.py", ["ckpt=whatever.ckpt", "out={bad}/samples.npz"]),
    ("evaluate.py", ["ckpt=whatever.ckpt", "out={bad}/metrics.json"]),
    ("train.py", ["hydra.run.dir={bad}/run"]),
    ("train.py", ["-m", "hydra.sweep.dir={bad}/sweep", "seed=1,2"]),
    ("report.py", ["{tmp}", "--out", "{bad}/report"]),
])
def test_every_writing_command_refuses_an_unwritable_location_in_one_line(tmp_path, a_file, script, args):
    args = [a.format(bad=a_file, tmp=tmp_path) for a in args]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = run_cli(script, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(a_file) in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and a_file.read_text() == "keep me"
