"""Every stage's code dependencies in dvc.yaml are exactly the files its command imports (reid_repro.codedeps),
and the import graph itself is read correctly."""

from pathlib import Path

import pytest

from reid_repro import codedeps
from reid_repro.config import load_params

ROOT = Path(__file__).resolve().parents[1]
SRC = "src/reid_repro"


def _declared_code(deps: list[str]) -> set[str]:
    """The package files a stage's deps cover: a folder dep covers every file below it (caches excluded)."""
    files = set()
    for d in deps:
        if not d.startswith(SRC):
            continue
        path = ROOT / d
        if path.is_dir():
            files |= {p.relative_to(ROOT).as_posix() for p in path.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts}
        else:
            files.add(d)
    return files


@pytest.fixture(scope="module")
def larger_on(tmp_path_factory) -> Path:
    """The project's pipeline files with the larger profile on, so that its stages (none while it is off) are
    checked too: params.yaml with larger.enabled true, the conf/runs.json that goes with it, dvc.yaml."""
    import shutil
    import subprocess

    from reid_repro.declare import write_project

    folder = tmp_path_factory.mktemp("larger_on")
    params = load_params(ROOT / "params.yaml")
    params["larger"]["enabled"] = True
    write_project(folder, params)
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=folder, check=True)
    return folder


def _stages(root: Path):
    """(stage name, kind, method, declared deps, declared params) for every stage of ``root``/dvc.yaml, foreach
    expanded by DVC itself (deps as written: paths from the repository root)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    params = load_params(root / "params.yaml")
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            kind = stage.name.split("@")[0]
            key = stage.name.split("@")[-1]
            method = (params["runs"][key]["method"] if kind == "train" else
                      params["larger"]["runs"][key]["method"] if kind == "train_larger" else
                      params["studies"][key]["method"] if kind in ("tune", "tuned") else None)
            yield (stage.name, kind, method, [d.def_path for d in stage.deps],
                   [k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params])


def test_every_stage_depends_on_exactly_the_code_it_imports(larger_on):
    wrong = []
    for name, kind, method, deps, _ in _stages(larger_on):
        expected = set(codedeps.relative(codedeps.stage_files(kind, method), ROOT))
        declared = _declared_code(deps)
        if declared != expected:
            wrong.append(f"{name}: missing {sorted(expected - declared)}, not imported {sorted(declared - expected)}")
    assert not wrong, "dvc.yaml code deps drifted from the import graph:\n" + "\n".join(wrong[:10])


def test_run_stages_read_their_base_method_and_config():
    """The findings of the audit: a run depends on the config package and, for ISE and Mixup, on the Cluster-Contrast
    module they subclass; the figures stage on every module it imports."""
    by_name = {name: _declared_code(deps) for name, _, _, deps, _ in _stages(ROOT)}   # folders as their files
    for run in ("ise_market", "mixup_a0.5_market", "cc_market", "ice_aware_full_market"):
        if f"train@{run}" not in by_name:
            continue
        assert {f"{SRC}/config/runs.py", f"{SRC}/assemble.py"} <= by_name[f"train@{run}"]
    assert f"{SRC}/methods/cluster_contrast.py" in by_name["train@ise_market"]
    assert f"{SRC}/methods/ice.py" not in by_name["train@ise_market"]
    assert f"{SRC}/methods/cluster_contrast.py" not in by_name["train@ice_aware_full_market"]
    for module in ("report/plots.py", "clustering/jaccard.py", "methods/ise.py", "models.py", "training/data.py"):
        assert f"{SRC}/{module}" in by_name["figures"]


def test_closure_follows_imports_inside_functions_and_relative_ones(tmp_path):
    pkg = tmp_path / "reid_repro"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("import os\n")
    (pkg / "a.py").write_text("def f():\n    from reid_repro.sub import leaf\n    return leaf\n")
    (pkg / "b.py").write_text("from reid_repro import a\n")
    (pkg / "unused.py").write_text("import reid_repro.b\n")
    got = {p.relative_to(pkg).as_posix() for p in codedeps.closure(["reid_repro.b"], pkg)}
    assert got == {"__init__.py", "a.py", "b.py", "sub/__init__.py", "sub/leaf.py"}


def test_digest_changes_with_any_imported_file_only(tmp_path, monkeypatch):
    """On a copy of the package: editing any file an ISE run imports (each in turn; the Cluster-Contrast module it
    subclasses among them) changes its digest, and undoing the edit restores it; editing one it does not import
    (ICE's) leaves it."""
    import shutil

    src = tmp_path / "reid_repro"
    shutil.copytree(codedeps.SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedeps, "SRC", src.resolve())
    files = codedeps.stage_files("train", "ise", src)
    before = codedeps.digest(files)
    assert before == codedeps.digest(list(reversed(files)))           # order does not matter
    ice = src / "methods" / "ice.py"
    assert ice.resolve() not in {f.resolve() for f in files}
    ice.write_text(ice.read_text() + "\n# an edit\n")
    assert codedeps.digest(codedeps.stage_files("train", "ise", src)) == before
    for f in files:                                                    # every imported file, one at a time
        text = f.read_bytes()
        f.write_bytes(text + b"\n# an edit\n")
        assert codedeps.digest(codedeps.stage_files("train", "ise", src)) != before, f.name
        f.write_bytes(text)
    assert codedeps.digest(codedeps.stage_files("train", "ise", src)) == before
    base = src / "methods" / "cluster_contrast.py"                   # the module ISE subclasses is among them
    assert base.resolve() in {f.resolve() for f in files}


@pytest.mark.parametrize("kind", sorted(codedeps.STAGE_ROOTS))
def test_each_stage_kind_resolves(kind):
    files = codedeps.stage_files(kind, "cluster_contrast" if kind == "train" else None)
    assert (codedeps.SRC / "cli.py") in files and all(f.is_file() for f in files)


class _Reads(dict):
    """params.yaml's top level, recording which sections are read."""

    def __init__(self, data):
        super().__init__(data)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_every_run_stage_depends_on_exactly_the_method_sections_it_reads(larger_on):
    """A run's settings come from its method's section and its base's (ISE builds on cluster_contrast, CANU on
    mmt or ssg). Resolving each declared run's settings, at both scales, reads exactly the method sections its
    stage declares as params: `dvc exp run -S ice.tau_s=0.3` re-runs the ICE runs and no other."""
    from reid_repro.assemble import resolve_run
    from reid_repro.config import declared_runs, load_params, load_run

    params = load_params(ROOT / "params.yaml")
    runs = declared_runs(params)
    sections = {s for spec in runs.values() for s in (spec["method"], spec["base"])}
    wrong = []
    for name, kind, _, _, declared_params in _stages(larger_on):
        if kind not in ("train", "train_larger"):
            continue
        run = name.split("@")[1]
        read = set()
        for scale in ("cpu", "paper"):
            recorded = _Reads({**params, "scale": scale})
            resolve_run(recorded, load_run(params, run))
            read |= recorded.read & sections
        declared = {key.split(".")[0] for key in declared_params} & sections
        if read != declared:
            wrong.append(f"{name}: reads {sorted(read)}, declares {sorted(declared)}")
    assert not wrong, "\n".join(wrong[:10])



def test_the_committed_pipeline_files_are_what_the_wiring_command_writes(tmp_path):
    """`reid-repro pipeline --write` generates every stage's code dependencies (issue 40); the committed files
    are its output. On a copy with one stage's list damaged (a line gone, a stray one added), the check names
    that stage and the write restores the file byte for byte."""
    import shutil

    from reid_repro import wiring
    from reid_repro.cli import main

    assert wiring.drift() == {}
    for f in wiring.FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, tmp_path / f)
    text = (tmp_path / "dvc.yaml").read_text()
    damaged = text.replace("        - src/reid_repro/commands/evaluate.py\n", "", 1)
    damaged = damaged.replace("      - src/reid_repro/commands/report.py\n",
                              "      - src/reid_repro/commands/report.py\n      - src/reid_repro/stray.py\n", 1)
    assert damaged.count("stray.py") == 1 and len(damaged) < len(text) + 40
    (tmp_path / "dvc.yaml").write_text(damaged)
    drift = wiring.drift(tmp_path)
    assert set(drift) == {"dvc.yaml"} and "report" in drift["dvc.yaml"]
    assert set(drift["dvc.yaml"]) & {"start", "transfer"}
    assert wiring.write(tmp_path) == drift
    assert (tmp_path / "dvc.yaml").read_text() == text
    assert main(["pipeline"]) == 0               # the repository's own files, through the command
