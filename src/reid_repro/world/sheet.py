"""Contact sheets (PNG) a person can look at: identities across cameras, one person at every angle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from reid_repro.io import atomic_path


def grid(images: list[list[Image.Image | None]], labels: list[str], cell: tuple[int, int]) -> Image.Image:
    """Rows of equally sized images with a label column on the left; None leaves a blank cell."""
    cw, ch = cell
    label_w = 60
    cols = max(len(r) for r in images)
    sheet = Image.new("RGB", (label_w + cols * cw, len(images) * ch), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (row, label) in enumerate(zip(images, labels)):
        draw.text((4, r * ch + ch // 2 - 6), label, fill=(0, 0, 0))
        for c, img in enumerate(row):
            if img is not None:
                sheet.paste(img.resize((cw, ch)), (label_w + c * cw, r * ch))
    return sheet


def identity_sheet(root: Path, truth: pd.DataFrame, out: Path, identities: int = 8, seed: int = 0) -> Path:
    """One row per sampled identity, one column per camera (the first image of that identity there)."""
    people = truth[truth["pid"] > 0].drop_duplicates("pid").sample(
        n=min(identities, truth.loc[truth["pid"] > 0, "pid"].nunique()), random_state=seed)["pid"]
    cams = sorted(truth["camid"].unique())
    rows = []
    for pid in people:
        mine = truth[truth["pid"] == pid].drop_duplicates("camid").set_index("camid")
        rows.append([Image.open(root / mine.loc[c, "path"]).convert("RGB") if c in mine.index else None for c in cams])
    h, w = Image.open(root / truth["path"].iat[0]).size[::-1]
    sheet = grid(rows, [f"id {p}" for p in people], (w, h))
    ImageDraw.Draw(sheet).text((4, 2), "cam ->", fill=(0, 0, 0))
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
