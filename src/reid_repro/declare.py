"""Runs declared per paper, one line per table row (``conf/runs/<paper>.yaml``), and the file they expand into
(``conf/runs.json``), which DVC's ``foreach`` and every command read.

A paper file holds ``paper:`` and ``runs:``; each run is ``name: {fields}`` with the fields of a run
(config.RunSpec) less what follows from the rest:

- ``paper`` is the file's; ``base`` is the method's base section (methods/<method>.py ``base_section``, else the
  method itself); ``test`` is the dataset, ``init`` is ``pretrain`` and ``overrides`` is ``{}`` unless given;
- ``for: [market, duke, msmt]`` declares one run per dataset, ``{d}`` in the name standing for it;
- ``larger: true`` puts the row in the larger profile (params.yaml ``larger``: its own stages, which exist only
  while ``larger.enabled`` is true);
- ``seeds: n``: the run trains at least n seeds (the baselines: their gain over the start needs more seeds than
  a row's; verdicts pair a row's seeds with the baseline's same seeds).

Each expanded run also carries ``code``: the files its method imports beyond every run stage's
(reid_repro.wiring.method_code), which dvc.yaml's run stages list as ``${item.code[i]}``. ``tuning`` holds, per
study of params.yaml ``studies``, what the tune and tuned stages template from: its run, that run's dataset, start,
method and sections, and its method's ``code``. ``larger_stages`` is what the larger profile's stages template
from (``warmups``: params.yaml ``larger.warmups``; ``runs``: ``larger_runs``) while params.yaml ``larger.enabled`` is
true, and empty otherwise: the profile's 91 stages are then not in the pipeline at all, which takes a third off
every ``dvc status`` (bench/results/exp_dvc_status.json), and ``make repro LARGER=1`` writes them
(``reid-repro repro --exp -S larger.enabled=true`` writes this file again before DVC reads it).

``reid-repro pipeline --write`` writes ``conf/runs.json`` (one run per line, so a diff shows the rows that
changed) and, per paper, ``conf/runs/<paper>.json`` with its runs alone (what its run stages read their params
from); ``reid-repro pipeline`` and a test check that the committed files are what the paper files declare. DVC
parses the JSON file in milliseconds where params.yaml with the runs in it took a ruamel parse per stage
(bench/bench_dvc.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from reid_repro.config.core import GENERATED, PAPERS, SETTINGS, larger_stages, settings_file, with_settings
from reid_repro.errors import ReidReproError

# the expanded entry's fields, in this order (the rest follow in the order declared)
ORDER = ("method", "base", "dataset", "test", "init", "paper", "table", "row", "overrides")
FIELDS = {"method", "dataset", "test", "init", "table", "row", "overrides", "paper_overrides", "also",
          "ours_only", "column", "larger", "seeds", "frames", "for"}


def _code(method: str) -> list[str]:
    from reid_repro.wiring import method_code

    return method_code(method)


def tuning(studies: dict | None, runs: dict) -> dict:
    """{study: {run, dataset, init, method, base, code}} for the tune and tuned stages: each study's run (a key of
    ``runs``), with the study's own dataset, start, method and base where it names them, else its run's."""
    out = {}
    for name, study in (studies or {}).items():
        run = runs.get((study or {}).get("run"))
        if run is None:
            raise ReidReproError(f"{settings_file('studies')}: studies.{name}.run={(study or {}).get('run')!r}; "
                                 "expected a declared run (conf/runs/<paper>.yaml)")
        entry = {"run": study["run"], **{k: study.get(k, run[k]) for k in ("dataset", "init", "method", "base")}}
        out[name] = {**entry, "code": _code(entry["method"])}
    return out


def _base(method: str) -> str:
    from reid_repro.methods import base_section

    return base_section(method) or method


def expand_file(path: Path) -> tuple[dict, dict]:
    """(runs, larger runs) declared by one paper file, expanded to full entries."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ReidReproError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or sorted(doc) != ["paper", "runs"] or not isinstance(doc["runs"], dict):
        raise ReidReproError(f"{path}: expected the keys paper and runs (a mapping of run name to fields)")
    runs: dict = {}
    larger: dict = {}
    for name, entry in doc["runs"].items():
        where = f"{path}: runs.{name}"
        if not isinstance(entry, dict):
            raise ReidReproError(f"{where}: expected a mapping of fields, got {entry!r}")
        unknown = sorted(set(entry) - FIELDS)
        if unknown:
            raise ReidReproError(f"{where}: unknown field {unknown[0]!r}; expected some of {sorted(FIELDS)}")
        if "for" not in entry and "{d}" in name:
            raise ReidReproError(f"{where}: {{d}} in a name needs `for: [datasets]`")
        missing = [f for f in ("method", "table", "row") if f not in entry] + \
            (["dataset"] if "dataset" not in entry and "for" not in entry else [])
        if missing:
            raise ReidReproError(f"{where}: missing field {missing[0]!r}")
        datasets = entry.get("for")
        if datasets is not None and (not isinstance(datasets, list) or not datasets or "{d}" not in name
                                     or "dataset" in entry):
            raise ReidReproError(f"{where}: `for` takes a list of datasets, the name must hold {{d}} and the entry "
                                 "no dataset of its own")
        for d in datasets or [None]:
            fields = {k: v for k, v in entry.items() if k != "for"}
            key = name if d is None else name.replace("{d}", d)
            if d is not None:
                fields["dataset"] = d
            full = {"method": fields["method"], "base": _base(fields["method"]), "dataset": fields["dataset"],
                    "test": fields.get("test", fields["dataset"]), "init": fields.get("init", "pretrain"),
                    "paper": doc["paper"], "table": fields["table"], "row": fields["row"],
                    "overrides": fields.get("overrides") or {}}
            full.update({k: v for k, v in fields.items() if k not in ORDER and k != "larger"})
            full["code"] = _code(fields["method"])
            target = larger if fields.get("larger") else runs
            if key in runs or key in larger:
                raise ReidReproError(f"{where}: run {key!r} is declared twice")
            target[key] = full
    return runs, larger


def generate(root: str | Path = ".", larger_enabled: bool | None = None) -> dict:
    """{"runs": ..., "larger_runs": ..., "tuning": ..., "larger_stages": ...} from every paper file under
    ``root``/conf/runs, in file name order, and the studies and larger profile of ``root``/params.yaml
    (``larger_enabled``: as if params.yaml's ``larger.enabled`` were that)."""
    import yaml

    folder = Path(root) / PAPERS
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ReidReproError(f"{folder}: no paper files (conf/runs/<paper>.yaml declares a paper's runs)")
    runs: dict = {}
    larger: dict = {}
    for path in files:
        more, more_larger = expand_file(path)
        for name in [*more, *more_larger]:
            if name in runs or name in larger:
                raise ReidReproError(f"{path}: run {name!r} is also declared in another paper file")
        runs.update(more)
        larger.update(more_larger)
    settings = Path(root) / "params.yaml"
    doc = with_settings(settings, yaml.safe_load(settings.read_text()) or {}) if settings.is_file() else {}
    return {"runs": runs, "larger_runs": larger, "tuning": tuning(doc.get("studies"), {**runs, **larger}),
            "larger_stages": larger_stages(doc.get("larger"), larger, larger_enabled)}


SECTIONS = ("runs", "larger_runs", "tuning", "larger_stages")
PAPER_SECTIONS = ("runs", "larger_runs")


def dumps(data: dict, sections: tuple = SECTIONS) -> str:
    """The generated file's text: JSON with one run per line."""
    lines = ["{"]
    for i, section in enumerate(sections):
        lines.append(f' "{section}": {{')
        items = list(data[section].items())
        for j, (name, entry) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            lines.append(f"  {json.dumps(name)}: {json.dumps(entry, ensure_ascii=False)}{comma}")
        lines.append(" }" + ("," if i < len(sections) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def files(data: dict) -> dict[Path, str]:
    """{path from the project root: text} of every generated file: conf/runs.json, and per paper
    conf/runs/<paper>.json with that paper's ``runs`` and ``larger_runs`` alone, which its run stages read their
    params from: DVC walks a params file whole for every key it reads (bench/exp_dvc_status.py), and a paper's
    file is a quarter of the runs."""
    out = {GENERATED: dumps(data)}
    papers = sorted({run["paper"] for section in PAPER_SECTIONS for run in data[section].values()})
    for paper in papers:
        mine = {section: {k: v for k, v in data[section].items() if v["paper"] == paper} for section in PAPER_SECTIONS}
        out[PAPERS / f"{paper}.json"] = dumps(mine, PAPER_SECTIONS)
    return out


def _write_files(root: Path, data: dict) -> bool:
    """Write :func:`files` under ``root`` (and remove a paper's file that no run of it is left to read);
    whether any text changed."""
    wanted = files(data)
    changed = False
    for old in sorted((root / PAPERS).glob("*.json")):
        if old.relative_to(root) not in wanted:
            old.unlink()
            changed = True
    for rel, text in wanted.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed = True
    return changed


def write(root: str | Path = ".", larger_enabled: bool | None = None) -> bool:
    """Write conf/runs.json and the papers' run files from the paper files (the larger profile's stages as
    ``larger_enabled`` says, None: as params.yaml does); whether a text changed."""
    return _write_files(Path(root), generate(root, larger_enabled))


def stale(root: str | Path = ".") -> str | None:
    """Why the committed conf/runs.json (or a paper's conf/runs/<paper>.json) is not what the paper files
    declare (None: it is)."""
    root = Path(root)
    wanted = files(generate(root))
    extra = sorted(p.relative_to(root) for p in (root / PAPERS).glob("*.json") if p.relative_to(root) not in wanted)
    for rel, text in wanted.items():
        path = root / rel
        if not path.is_file():
            return f"{path}: missing; `reid-repro pipeline --write` writes it from {PAPERS}/*.yaml"
        if path.read_text() != text:
            return (f"{path} is not what {PAPERS}/*.yaml and params.yaml's studies and larger profile declare (a "
                    "paper file, a study or `larger` was edited, or a method imports other code); `reid-repro "
                    "pipeline --write` writes it again")
    if extra:
        return f"{root / extra[0]}: no paper declares its runs any more; `reid-repro pipeline --write` removes it"
    return None


def write_project(folder: str | Path, params: dict) -> None:
    """A project's params.yaml and settings files (conf/world.yaml, conf/studies.yaml), conf/runs.json and
    conf/runs/<paper>.json (the runs) from ``params`` as config.load_params returns it: for tests and experiments
    that build a project of their own."""
    import yaml

    folder = Path(folder)
    larger = params.get("larger") or {"enabled": False, "warmups": {}, "runs": {}}
    settings = {k: v for k, v in params.items() if k != "runs" and k not in SETTINGS}
    settings["larger"] = {k: v for k, v in larger.items() if k != "runs"}
    (folder / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    for rel in dict.fromkeys(SETTINGS.values()):        # conf/world.yaml, conf/studies.yaml
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        own = {k: params[k] for k, v in SETTINGS.items() if v == rel and k in params}
        (folder / rel).write_text(yaml.safe_dump(own, sort_keys=False))
    runs = {k: {**v, "code": v.get("code") or _code(v["method"])} for k, v in (params.get("runs") or {}).items()}
    more = {k: {**v, "code": v.get("code") or _code(v["method"])} for k, v in (larger.get("runs") or {}).items()}
    _write_files(folder, {"runs": runs, "larger_runs": more, "tuning": tuning(params.get("studies"), {**runs, **more}),
                          "larger_stages": larger_stages(larger, more)})
