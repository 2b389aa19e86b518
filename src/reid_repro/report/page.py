"""The report's pages: sections (one model) rendered by two templates (index.html, results.md), its tables as HTML or
markdown, and its paragraphs (prose.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from markupsafe import Markup

# the report's paragraphs are data (prose.yaml), read once
PROSE: dict[str, str] = yaml.safe_load(Path(__file__).with_name("prose.yaml").read_text(encoding="utf-8"))
# the report's run lists (which runs each figure draws, labels, baselines, model figures) are data too
LAYOUT: dict = yaml.safe_load(Path(__file__).with_name("figures.yaml").read_text(encoding="utf-8"))


def _markdown(cells: pd.DataFrame) -> str:
    """A displayed table as GitHub markdown (results.md)."""
    def row(values):
        return "| " + " | ".join(str(v).replace("|", "/") for v in values) + " |"

    return "\n".join([row(cells.columns), "|" + "---|" * len(cells.columns), *(row(r) for r in cells.to_numpy())])


def _html(cells: pd.DataFrame) -> Markup:
    """A displayed table as HTML (index.html): pandas writes the table and escapes every cell; **bold** is kept.
    Markup: the page template inserts it as it is."""
    import re

    table = cells.to_html(index=False, border=0, classes="results")
    return Markup(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", table))


@dataclass
class Section:
    """One section of the report: templates/index.html.j2 and templates/results.md.j2 draw each field that is set,
    in this order, so the page and results.md say the same things in the same order."""
    id: str                       # the anchor the table of contents links to
    title: str
    csv: str = ""                 # a paper table's CSV of per-seed values, named in its legend
    text: str = ""                # a paragraph
    cells: pd.DataFrame | None = None   # the displayed table, one string per cell (**bold** = ours)
    sentences: list[str] = field(default_factory=list)
    note: str = ""                # under the table: which of its runs hold results of earlier code (STALE_NOTE)
    rebuild: str = ""             # the section's `dvc repro` targets
    example: str = ""             # one `dvc exp run -S` setting for the item's main setting
    runs: list = field(default_factory=list)   # (run name, link to its folder) of the runs it reads
    figure: str = ""              # a PNG, relative to the page
    alt: str = ""
    width: int = 900
    pre: str = ""                 # preformatted text
    level: int = 2                # heading level (3: a subsection of the section before it)


PAGES = {"index.html": "index.html.j2", "results.md": "results.md.j2"}


def render_page(sections: list[Section], template: str = "index.html.j2", **values) -> str:
    """One page of the report from its template: index.html (every value escaped, autoescape) or results.md (text
    as it is); tables through :func:`_html` or :func:`_markdown`. A value the template names but is not given is
    an error."""
    import re

    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("reid_repro.report", "templates"),
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(html_table=_html, md_table=_markdown)
    text = env.get_template(template).render(sections=sections, **values)
    return re.sub(r"\n{3,}", "\n\n", text) if template.endswith(".md.j2") else text


def _anchor(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
