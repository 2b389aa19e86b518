"""Declared runs (conf/runs.json, expanded from conf/runs/<paper>.yaml by reid_repro.declare): one run is a row of
a paper table; the larger profile, GCL+ warm-ups, and the pretraining and source runs every method starts from."""

from __future__ import annotations

import dataclasses
import typing


from reid_repro.config.core import from_dict
from reid_repro.config.video import VIDEO_LAYOUTS
from reid_repro.errors import ReidReproError



@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One declared run: a row of a paper table."""

    method: str
    base: str             # the params section the method builds on (its own name unless ISE: cluster_contrast)
    dataset: str          # the training domain (a key of params.yaml: data)
    test: str             # the test domain (the same one unless the row is domain generalisation)
    init: str             # the checkpoint it starts from: models/<init>.pt
    paper: str            # which paper's table the row belongs to
    table: str
    row: str
    overrides: typing.Dict[str, typing.Any]          # applied at every scale
    paper_overrides: typing.Dict[str, typing.Any]    # applied on top at scale: paper (per-dataset paper settings)
    also: typing.List[str]                           # more rows this run fills: "<table>/<row>" of the same paper,
                                                     # or "<paper>:<table>/<row>" of another (a shared baseline)
    ours_only: bool = False   # a row no paper table has (e.g. a stand-in without a paper column): no paper cell
    column: str = ""          # the paper table's column it fills (default: its test domain; UDA: market2duke...)
    larger: bool = False      # a larger-profile row (conf/runs/<paper>.yaml larger: true; trained only with
                              # larger.enabled: true)
    seeds: typing.Optional[int] = None   # trains at least this many seeds (params.yaml seeds if larger): the
                                         # baselines, whose gain over the start needs more seeds than a row's
    frames: typing.Optional[int] = None  # a video dataset's frames drawn per tracklet each epoch (GCL+ §5.1: 2 on
                                         # MARS, 8 on DukeMTMC-VideoReID; training/loop.tracklet_frames); null
                                         # on an image dataset

    @property
    def table_column(self) -> str:
        return self.column or self.test

    def settings_overrides(self, scale: str) -> dict:
        return {**self.overrides, **(self.paper_overrides if scale == "paper" else {})}

    def targets(self) -> list[tuple[str, str, str]]:
        """(paper, table, row) of every row this run fills: its own, then its ``also`` rows."""
        out = [(self.paper, self.table, self.row)]
        for extra in self.also:
            where, _, row = extra.partition("/")
            paper, _, table = where.rpartition(":")
            out.append((paper or self.paper, table, row))
        return out


MAX_SEEDS = 20


def run_seeds(params: dict, spec: "RunSpec | None" = None) -> int:
    """How many seeds a run trains: ``params.yaml: seeds``, or the run's own ``seeds`` where that is more (seed s
    = the loop's seed + s, the same for every run, so that seed s of a row and of its baseline are paired)."""
    n = params.get("seeds", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise ReidReproError(f"params.yaml: seeds={n!r}; expected an integer from 1 to {MAX_SEEDS}")
    own = spec.seeds if spec is not None else None
    if own is not None and (isinstance(own, bool) or not isinstance(own, int) or not 1 <= own <= MAX_SEEDS):
        raise ReidReproError(f"runs: seeds={own!r} (a run's own); expected an integer from 1 to {MAX_SEEDS}")
    return max(n, own or 0)


LARGER_KEYS = ("enabled", "warmups", "runs")


def larger_section(params: dict) -> dict:
    """params.yaml ``larger``: the rows that do not fit the default budget on 2 cores (GCL+'s other domains and
    its hyperparameter sweeps), with stages of their own (``warmup_larger@``, ``train_larger@``) that exist only
    while ``enabled`` is true (conf/runs.json ``larger_stages``); otherwise the report shows their cells as "not run
    at the default scale" (and ``reid-repro train`` of one writes only a marker saying so). ``make repro LARGER=1``
    turns them all on."""
    raw = params.get("larger")
    if raw is None:
        return {"enabled": False, "warmups": {}, "runs": {}}
    if not isinstance(raw, dict) or sorted(raw) != sorted(LARGER_KEYS):
        raise ReidReproError(f"params.yaml: larger: expected keys {list(LARGER_KEYS)}, got "
                             f"{sorted(raw) if isinstance(raw, dict) else raw!r}")
    if not isinstance(raw["enabled"], bool):
        raise ReidReproError(f"params.yaml: larger.enabled={raw['enabled']!r}; expected true or false")
    return {"enabled": raw["enabled"], "warmups": raw["warmups"] or {}, "runs": raw["runs"] or {}}


def declared_runs(params: dict) -> dict:
    """Every declared run: ``runs`` and ``larger.runs`` (conf/runs.json; names are unique across both)."""
    return {**(params.get("runs") or {}), **larger_section(params)["runs"]}


def not_run_reason(params: dict, spec: RunSpec) -> str | None:
    """Why a larger-profile run or warm-up is not trained here (None: it is)."""
    if spec.larger and not larger_section(params)["enabled"]:
        return ("not run at the default scale: a larger-profile row (params.yaml: larger); "
                "`make repro LARGER=1` (reid-repro repro --exp -S larger.enabled=true) trains it")
    return None


def load_run(params: dict, key: str) -> RunSpec:
    runs = declared_runs(params)
    if key not in runs:
        raise ReidReproError(f"runs.{key}: no such run; expected one of {sorted(runs)}")
    spec = dict(runs[key])
    spec.pop("code", None)              # the pipeline's wiring (dvc.yaml ${item.code[i]}), not a setting
    spec["larger"] = key not in (params.get("runs") or {})
    for field in ("overrides", "paper_overrides"):
        spec[field] = spec.get(field) or {}
    spec["also"] = spec.get("also") or []
    spec.setdefault("ours_only", False)
    spec.setdefault("column", "")
    spec.setdefault("seeds", None)
    spec.setdefault("frames", None)
    run = from_dict(RunSpec, spec, f"runs.{key}")
    data = params.get("data") or {}
    video = (data.get(run.dataset) or {}).get("format") in VIDEO_LAYOUTS
    if video and (isinstance(run.frames, bool) or not isinstance(run.frames, int) or run.frames < 1):
        raise ReidReproError(f"runs.{key}.frames={run.frames!r}; data.{run.dataset} is a video dataset: expected "
                             "the frames drawn per tracklet each epoch (>= 1; GCL+: 2 on MARS, 8 on "
                             "DukeMTMC-VideoReID)")
    if not video and run.frames is not None and run.dataset in data:
        raise ReidReproError(f"runs.{key}.frames={run.frames!r}; data.{run.dataset} is an image dataset: expected "
                             "no frames (null)")
    for field in ("dataset", "test"):
        if getattr(run, field) not in data:
            raise ReidReproError(f"runs.{key}.{field}={getattr(run, field)!r}; expected a key of "
                                 f"data: {sorted(data)}")
        if data[getattr(run, field)].get("format") == "imagenet":
            raise ReidReproError(f"runs.{key}.{field}={getattr(run, field)!r} is a folder of ImageNet "
                                 "checkpoints (format: imagenet), which only pretrain reads; expected a re-ID dataset")
    return run


WARMUP_KEYS = ("dataset", "init", "overrides")


def load_warmup(params: dict, name: str) -> RunSpec:
    """A GCL+ stage-2 warm-up (params.yaml: gcl_warmups.<name>: {dataset, init: a run whose model is the
    identity encoder, overrides}): a gcl_plus run with ``stage: warmup``, written to models/<name>."""
    larger = larger_section(params)["warmups"]
    warmups = {**(params.get("gcl_warmups") or {}), **larger}
    if name not in warmups:
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}: no such warm-up; expected one of {sorted(warmups)}")
    entry = warmups[name]
    if not isinstance(entry, dict) or sorted(entry) != sorted(WARMUP_KEYS):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}: expected keys {list(WARMUP_KEYS)}, got {entry!r}")
    if entry["dataset"] not in (params.get("data") or {}):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}.dataset={entry['dataset']!r}; expected a key of data")
    if entry["init"] not in declared_runs(params):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}.init={entry['init']!r}; expected a run (stage 1: "
                             "the run whose model is the identity encoder)")
    return RunSpec(method="gcl_plus", base="gcl_plus", dataset=entry["dataset"], test=entry["dataset"],
                   init=entry["init"], paper="gcl_plus", table="", row="stage 2 warm-up",
                   overrides={**(entry["overrides"] or {}), "stage": "warmup"}, paper_overrides={}, also=[],
                   ours_only=True, larger=name in larger)


def pretrain_spec(dataset: str = "pretrain") -> RunSpec:
    """The supervised pretraining run every method starts from (settings: params.yaml ``pretrain``)."""
    return RunSpec(method="supervised", base="supervised", dataset=dataset, test=dataset, init="scratch", paper="",
                   table="", row="pretraining", overrides={}, paper_overrides={}, also=[])


SOURCE_SECOND_SEED = 1   # the second source training (MMT's net 2) uses the loop's seed + this


def source_spec(dataset: str) -> RunSpec:
    """The labelled source training of the UDA settings (settings: params.yaml ``source``): supervised on the
    source stand-in's identities, from the pretrained start (CANU §V-A; MMT's source pretraining)."""
    return RunSpec(method="supervised", base="supervised", dataset=dataset, test=dataset, init="pretrain",
                   paper="", table="", row="source", overrides={}, paper_overrides={}, also=[])
