"""``reid-repro check``: validate all of params.yaml and every run's paper row before a long rebuild."""

from __future__ import annotations

HELP = "validate params.yaml (every section, both scales, every run) and every run's paper row"


def add_arguments(p) -> None:
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from pathlib import Path

    from reid_repro import declare
    from reid_repro.config import larger_section, load_params
    from reid_repro.errors import ReidReproError
    from reid_repro.report.tables import check_rows

    root = Path(args.params).parent
    if (root / declare.PAPERS).is_dir() and (why := declare.stale(root)):
        raise ReidReproError(why)                # the runs DVC would train are not the declared ones
    params = load_params(args.params)      # validated by the dispatcher already
    n = check_rows(params)
    larger = larger_section(params)
    return (f"check: params.yaml valid at both scales; {len(params['runs'])} runs and {len(larger['runs'])} "
            f"larger-profile runs ({'on' if larger['enabled'] else 'off'}), {n} table rows found")
