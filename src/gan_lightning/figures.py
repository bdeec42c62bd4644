"""Figures of a trained generator (``generate.py figure=NAME out=X.png``), as StyleGAN's papers draw them:

- ``truncation``: one row per seed, one column per psi (1 down to 0: from the sample to the mean image); families
  with the truncation trick (StyleGAN2);
- ``mixing``: style mixing (Karras et al. 2019, figure 3): the column sources along the top, the row sources down
  the left, and in each cell the row source's styles before index ``cutoff`` (coarse: 3 keeps the 4 and 8 px
  layers) with the column source's styles after it; families with a W space (StyleGAN2);
- ``interpolation``: one strip per seed pair, from one sample to another in ``steps`` equal steps: a straight line
  in W for StyleGAN2, a spherical one in z for the other noise-driven image families.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torchvision.io import write_png

from .errors import UserError
from .outputs import atomic_write, check_output
from .render import to_uint8_grid
from .sampling import has_truncation, truncation_options
from .train.checkpoints import load_module

FIGURES = ("truncation", "mixing", "interpolation")
PSIS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between the rows of ``a`` and ``b`` (their norms interpolated linearly)."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return direction * torch.lerp(na, nb, t)


Draw = Callable[[dict[str, Tensor]], Tensor]  # the generator's inputs -> images (the module's generate)


def truncation_sweep(family, draw: Draw, rows: int, gen: torch.Generator, psis=PSIS) -> tuple[Tensor, int]:
    """``rows`` x ``len(psis)`` images: the same z per row, psi per column."""
    state = gen.get_state()
    columns = []
    for psi in psis:
        gen.set_state(state)  # the same z (and labels) in every column
        columns.append(draw(family.sample_inputs(rows, generator=gen, **truncation_options(family, psi))))
    return torch.stack(columns, 1).flatten(0, 1), len(psis)


def style_mixing(family, draw: Draw, rows: int, cols: int, gen: torch.Generator,
                 cutoff: int | None) -> tuple[Tensor, int]:
    """(rows + 1) x (cols + 1) images: a blank corner, the column sources, then per row its source and the mixes."""
    num_ws = family.generator.num_ws
    cutoff = 3 if cutoff is None else cutoff
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or not 1 <= cutoff < num_ws:
        raise UserError(f"cutoff must be an integer in [1, {num_ws - 1}] (this generator has {num_ws} styles; "
                        f"3: the 4 and 8 px layers); got {cutoff!r}")
    top = family.sample_inputs(cols, generator=gen)
    left = family.sample_inputs(rows, generator=gen)
    top_images, left_images = draw(top), draw(left)
    grid = [torch.full_like(top_images[:1], -1), top_images]
    for i in range(rows):
        row = {k: v[i : i + 1].repeat(cols, *[1] * (v.dim() - 1)) for k, v in left.items()}
        mixed = draw({**row, "mix_z": top["z"], "cutoff": torch.full((cols,), cutoff)})
        grid += [left_images[i : i + 1], mixed]
    return torch.cat(grid), cols + 1


def interpolation(family, draw: Draw, rows: int, steps: int, gen: torch.Generator) -> tuple[Tensor, int]:
    """``rows`` strips of ``steps`` images from one sample to another."""
    start, end = family.sample_inputs(rows, generator=gen), family.noise(rows, generator=gen)
    strips = []
    for t in torch.linspace(0, 1, steps).tolist():
        if family.style_based:
            inputs = {**start, "z_end": end, "t": torch.full((rows,), t)}
        else:
            inputs = {**start, "z": slerp(start["z"], end, t)}
        strips.append(draw(inputs))
    return torch.stack(strips, 1).flatten(0, 1), steps


def write_figure(ckpt: str, figure: str, out: str, seed: int = 0, rows: int = 6, cols: int = 6, steps: int = 8,
                 cutoff: int | None = None, use_ema: bool = True, device: str = "cpu") -> dict:
    """Write the ``figure`` of the checkpoint's (EMA) generator to ``out`` (.png); what was written."""
    if figure not in FIGURES:
        raise UserError(f"figure={figure}: unknown; choose one of {', '.join(FIGURES)}")
    out_path = Path(out)
    if out_path.suffix != ".png":
        raise UserError(f"out must be a .png file for figure={figure}; got {out}")
    for name, value, low in (("rows", rows, 1), ("cols", cols, 1), ("steps", steps, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{name} must be an integer >= {low}; got {value!r}")
    check_output(out_path, "out")
    module = load_module(ckpt).to(device)
    family = module.family
    kind = type(family).__name__
    if family.needs_source or len(family.data_shape) != 3 or "z" not in family.sample_inputs(1):
        raise UserError(f"figure={figure} draws images from noise; this checkpoint's model ({kind}) does not")
    if figure == "truncation" and not has_truncation(family):
        raise UserError(f"figure=truncation needs a model with the truncation trick (model=stylegan2); this "
                        f"checkpoint's is {kind}")
    if figure == "mixing" and not family.style_based:
        raise UserError(f"figure=mixing needs a model with styles (model=stylegan2); this checkpoint's is {kind}")

    def draw(inputs: dict[str, Tensor]) -> Tensor:
        return module.generate({k: v.to(device) for k, v in inputs.items()}, use_ema=use_ema).cpu()

    gen = torch.Generator().manual_seed(seed)
    if figure == "truncation":
        images, nrow = truncation_sweep(family, draw, rows, gen)
    elif figure == "mixing":
        images, nrow = style_mixing(family, draw, rows, cols, gen, cutoff)
    else:
        images, nrow = interpolation(family, draw, rows, steps, gen)
    grid = to_uint8_grid(images, nrow)
    atomic_write(out_path, lambda tmp: write_png(grid, str(tmp)))
    return {"out": str(out_path), "figure": figure, "images": len(images), "columns": nrow,
            "rows": math.ceil(len(images) / nrow), "iteration": module.iteration}
