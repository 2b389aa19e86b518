"""Runs declared per paper (conf/runs/<paper>.yaml) and the file they expand into (conf/runs.json)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from reid_repro import declare
from reid_repro.config import load_params
from reid_repro.errors import ReidReproError

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_runs_file_is_what_the_paper_files_declare():
    assert declare.stale(ROOT) is None
    params = load_params(ROOT / "params.yaml")
    generated = json.loads((ROOT / declare.GENERATED).read_text())
    assert params["runs"] == generated["runs"] and params["larger"]["runs"] == generated["larger_runs"]
    assert "runs" not in yaml.safe_load((ROOT / "params.yaml").read_text())     # settings only
    # each paper's file (what its run stages read their params from) holds that paper's runs, every one of them
    by_paper = {p.stem: json.loads(p.read_text()) for p in (ROOT / declare.PAPERS).glob("*.json")}
    assert set(by_paper) == {p.stem for p in (ROOT / declare.PAPERS).glob("*.yaml")}
    for section in ("runs", "larger_runs"):
        assert {k: v for f in by_paper.values() for k, v in f[section].items()} == generated[section]
        assert all(run["paper"] == paper for paper, f in by_paper.items() for run in f[section].values())


def _paper(tmp_path: Path, name: str, runs: dict, paper: str | None = None) -> Path:
    folder = tmp_path / declare.PAPERS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"paper": paper or name, "runs": runs}, sort_keys=False))
    return path


def test_a_row_is_expanded_with_what_follows_from_its_method_and_dataset(tmp_path):
    """base is the method's base section (ISE builds on Cluster-Contrast), test the dataset, init pretrain,
    overrides {}; `for` makes one run per dataset with {d} in the name; `larger: true` a larger-profile run."""
    _paper(tmp_path, "ise", {
        "ise_{d}": {"for": ["market", "duke"], "method": "ise", "table": "6", "row": "ISE"},
        "ise_msmt2market": {"method": "ise", "dataset": "msmt", "test": "market", "init": "source_msmt",
                            "table": "5", "row": "ISE", "overrides": {"lambda0": 2.0}, "also": ["1/x"]},
        "cc_big": {"method": "cluster_contrast", "dataset": "market", "table": "6", "row": "B", "larger": True}})
    out = declare.generate(tmp_path)
    assert list(out["runs"]) == ["ise_market", "ise_duke", "ise_msmt2market"]
    # code: what ISE imports beyond every run (its module and Cluster-Contrast's, which it subclasses), padded to
    # the three slots CANU needs (its module, MMT's, the shared camera adversaries)
    code = ["src/reid_repro/methods/cluster_contrast.py", "src/reid_repro/methods/ise.py",
            "src/reid_repro/methods/ise.py"]
    assert out["runs"]["ise_duke"] == {"method": "ise", "base": "cluster_contrast", "dataset": "duke", "test": "duke",
                                       "init": "pretrain", "paper": "ise", "table": "6", "row": "ISE",
                                       "overrides": {}, "code": code}
    assert out["runs"]["ise_msmt2market"] == {
        "method": "ise", "base": "cluster_contrast", "dataset": "msmt", "test": "market", "init": "source_msmt",
        "paper": "ise", "table": "5", "row": "ISE", "overrides": {"lambda0": 2.0}, "also": ["1/x"], "code": code}
    assert out["tuning"] == {}                          # no params.yaml here: no studies
    assert list(out["larger_runs"]) == ["cc_big"] and "larger" not in out["larger_runs"]["cc_big"]
    assert out["larger_runs"]["cc_big"]["base"] == "cluster_contrast"
    # the written file parses back to the same runs, one run per line
    declare.write(tmp_path)
    text = (tmp_path / declare.GENERATED).read_text()
    assert json.loads(text) == out and sum('"method"' in line for line in text.splitlines()) == 4


@pytest.mark.parametrize("runs, message", [
    ({"a": {"method": "ise", "dataset": "market", "table": "6", "row": "r", "lr": 1}}, "unknown field 'lr'"),
    ({"a": {"method": "ise", "dataset": "market", "row": "r"}}, "missing field 'table'"),
    ({"a_{d}": {"method": "ise", "table": "6", "row": "r"}}, "{d} in a name needs `for"),
    ({"a": {"for": ["market"], "method": "ise", "table": "6", "row": "r"}}, "the name must hold {d}"),
    ({"a_{d}": {"for": ["market", "market"], "method": "ise", "table": "6", "row": "r"}}, "declared twice"),
])
def test_a_bad_row_is_named_with_its_file(tmp_path, runs, message):
    path = _paper(tmp_path, "ise", runs)
    with pytest.raises(ReidReproError, match=message) as caught:
        declare.generate(tmp_path)
    assert str(path) in str(caught.value)


def test_a_study_is_templated_from_its_run_and_its_methods_code(tmp_path):
    """The tune and tuned stages read ``tuning``: a study's run with its dataset, start and sections, and the code
    its method imports (CANU on MMT: its module, MMT's and the camera adversaries shared with CANU-SSG)."""
    _paper(tmp_path, "canu", {"canu_m2d": {"method": "canu", "dataset": "duke", "init": "source_market",
                                           "table": "I", "row": "CANU-MMT"}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"studies": {"canu_mmt": {"run": "canu_m2d"}}}))
    out = declare.generate(tmp_path)
    assert out["tuning"] == {"canu_mmt": {
        "run": "canu_m2d", "dataset": "duke", "init": "source_market", "method": "canu", "base": "mmt",
        "code": ["src/reid_repro/methods/adversary.py", "src/reid_repro/methods/canu.py",
                 "src/reid_repro/methods/mmt.py"]}}
    assert out["runs"]["canu_m2d"]["code"] == out["tuning"]["canu_mmt"]["code"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"studies": {"canu_mmt": {"run": "nope"}}}))
    with pytest.raises(ReidReproError, match=r"studies.canu_mmt.run='nope'; expected a declared run"):
        declare.generate(tmp_path)


def test_a_run_in_two_paper_files_is_an_error(tmp_path):
    row = {"method": "ice", "dataset": "market", "table": "4a", "row": "r"}
    _paper(tmp_path, "ice", {"same": row})
    _paper(tmp_path, "ise", {"same": row})
    with pytest.raises(ReidReproError, match="'same' is also declared in another paper file"):
        declare.generate(tmp_path)


def test_an_edited_paper_file_makes_the_runs_file_stale_until_written(tmp_path):
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")       # its studies are part of the file too
    assert declare.stale(tmp_path) is None
    path = tmp_path / declare.PAPERS / "ise.yaml"
    path.write_text(path.read_text() + "  extra_market: {method: ise, "
                    'dataset: market, table: "6", row: ISE}\n')
    assert "a paper file, a study or `larger` was edited" in declare.stale(tmp_path)
    declare.write(tmp_path)
    assert declare.stale(tmp_path) is None
    assert "extra_market" in json.loads((tmp_path / declare.PAPERS / "ise.json").read_text())["runs"]
    (tmp_path / declare.PAPERS / "gone.json").write_text("{}")      # a paper file removed, its runs file left
    assert "gone.json: no paper declares its runs any more" in declare.stale(tmp_path)
    declare.write(tmp_path)
    assert declare.stale(tmp_path) is None and not (tmp_path / declare.PAPERS / "gone.json").exists()
    assert "extra_market" in json.loads((tmp_path / declare.GENERATED).read_text())["runs"]


def test_params_with_runs_in_both_places_or_in_neither_is_a_named_error(tmp_path):
    params = load_params(ROOT / "params.yaml")
    declare.write_project(tmp_path, params)
    assert load_params(tmp_path / "params.yaml") == params            # the split round-trips
    inline = yaml.safe_load((tmp_path / "params.yaml").read_text()) | {"runs": params["runs"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(inline))
    with pytest.raises(ReidReproError, match="runs are declared per paper"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / declare.GENERATED).unlink()
    assert load_params(tmp_path / "params.yaml")["runs"] == params["runs"]        # self-contained: inline
    inline.pop("runs")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(inline))
    with pytest.raises(ReidReproError, match=r"conf/runs.json: runs file not found"):
        load_params(tmp_path / "params.yaml")
