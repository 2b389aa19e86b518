"""Screenshot of the pipeline's report page (reports/index.html) in headless Chromium, checked for content.

Writes bench/results/report_screenshot.png and bench/results/report_screenshot.json (size, ink, what the page
shows). Needs `make repro` first and Debian's chromium. Run: python bench/screenshot_report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    from reid_repro.report.screenshot import screenshot

    RESULTS.mkdir(exist_ok=True)
    png = screenshot(ROOT / "reports" / "index.html", RESULTS / "report_screenshot.png", height=2600)
    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    page = (ROOT / "reports" / "index.html").read_text()
    result = {"width": img.shape[1], "height": img.shape[0], "ink_fraction": round(float((img < 128).mean()), 4),
              "tables": page.count("<table>"), "figures": page.count("<img "),
              "blank": bool(img.std() < 5)}
    (RESULTS / "report_screenshot.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    if result["blank"] or not result["tables"] or not result["figures"]:
        raise SystemExit("the report page is blank or lacks its table or figure")
