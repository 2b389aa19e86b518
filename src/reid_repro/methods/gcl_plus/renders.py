"""The structure inputs of GCL+'s generator: the meshes stage's grey renders, and DG-Net's grey image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reid_repro.errors import ReidReproError

ANGLES = (45, 90, 135, 180, 225, 270, 315)


def load_renders(root: Path, names: list[str], height: int, width: int) -> torch.Tensor:
    """N x 8 x H x W uint8: each training image's grey render at 0, 45, ... 315 degrees (meshes stage layout)."""
    folders = ["render"] + [f"render_{a}" for a in ANGLES]
    out = torch.empty(len(names), len(folders), height, width, dtype=torch.uint8)
    for i, name in enumerate(names):
        for k, folder in enumerate(folders):
            path = root / folder / name
            if not path.is_file():
                raise ReidReproError(f"{path}: missing; expected the meshes stage's render of every training image "
                                     f"(dvc repro meshes@<dataset>)")
            with Image.open(path) as img:
                out[i, k] = torch.from_numpy(np.array(img.convert("L").resize((width, height), Image.BICUBIC)))
    return out


def grey_render(renders_u8: torch.Tensor) -> torch.Tensor:
    """uint8 renders -> [-1, 1] (the code's mean 0.5, std 0.5)."""
    return renders_u8.float().div(255).sub(0.5).div(0.5)


def grey_image(x: torch.Tensor) -> torch.Tensor:
    """DG-Net's structure input for ``gray_switch``: the luminance of a normalised image, scaled to [-1, 1]."""
    mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
    rgb = (x * std + mean).clamp(0, 1)
    lum = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return lum[:, None].sub(0.5).div(0.5)
