"""bench/rebuild_table.py: the README's rebuild table is generated from the recorded stage times (issue 43), so its
counts and sums must be the records', a stage built before a restart must not count, and a rebuild spread over
machines of different speed must say how much ran where."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("rebuild_table", ROOT / "bench" / "rebuild_table.py")
rebuild_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rebuild_table)

XEON, EPYC = "Intel(R) Xeon(R) Processor", "AMD EPYC"


def _log(tmp_path, lines):
    path = tmp_path / "rebuild_times.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _rec(stage, seconds, cpu):
    return {"stage": stage, "seconds": seconds, "cpu": cpu, "cpus": 2}


def test_only_stages_after_the_last_restart_count_and_a_rebuilt_stage_counts_at_its_last_time(tmp_path):
    log = _log(tmp_path, [_rec("pretrain", 392, EPYC), _rec("train@cc_market", 600, EPYC), {"restart": "numerics"},
                          _rec("pretrain", 700, XEON), _rec("synthetic/dvc.yaml:world", 900, XEON),
                          _rec("pretrain", 593, XEON)])
    recs = rebuild_table.records(log)
    assert sorted(recs) == ["pretrain", "world"]                 # cc_market was built before the restart
    assert recs["pretrain"]["seconds"] == 593


def test_the_table_sums_what_was_built_counts_what_was_not_and_splits_the_hours_by_machine(tmp_path):
    log = _log(tmp_path, [_rec("pretrain", 600, XEON), _rec("train@cc_market", 1200, XEON),
                          _rec("train@cc_duke", 1800, EPYC)])
    stages = ["pretrain", "train@cc_market", "train@cc_duke", "train@ise_market", "report"]
    runs = {"cc_market": {"method": "cluster_contrast"}, "cc_duke": {"method": "cluster_contrast"},
            "ise_market": {"method": "ise"}}
    text = rebuild_table.table(rebuild_table.records(log), stages, runs)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("| stages")}
    assert rows["pretrain"] == ["1", "0", "10.0", "10"]
    assert rows["train: cluster_contrast"] == ["2", "0", "20.0-30.0", "50"]
    assert rows["train: ise"] == ["0", "1", "–", "0"]
    assert rows["report"] == ["0", "1", "–", "0"]
    assert rows["**total**"] == ["**3**", "**2**", "", "**60 (1.0 h)**"]          # 10 + 20 + 30 minutes
    assert f"{XEON}, 2 cores: 2 stage(s), 0.5 h" in text and f"{EPYC}, 2 cores: 1 stage(s), 0.5 h" in text
    compact = rebuild_table.table(rebuild_table.records(log), stages, runs, compact=True)
    starts, trained = "| starts and sources | 1 | 0 | 10.0 | 10 |", "| runs | 2 | 1 | 20.0-30.0 | 50 |"
    assert compact.index(starts) < compact.index(trained)
    assert compact.index("| runs |") < compact.index("| figures and report | 0 | 1 | – | 0 |")


def test_write_replaces_only_the_marked_block_and_refuses_a_file_without_one(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"before\n{rebuild_table.START}\nold table\n{rebuild_table.END}\nafter\n")
    rebuild_table.write(page, "new table")
    assert page.read_text() == f"before\n{rebuild_table.START}\nnew table\n{rebuild_table.END}\nafter\n"
    other = tmp_path / "other.md"
    other.write_text("no block\n")
    with pytest.raises(SystemExit, match="rebuild-table:start") as exc:
        rebuild_table.write(other, "x")
    assert str(other) in str(exc.value)
    assert other.read_text() == "no block\n"


def test_the_committed_tables_are_the_ones_the_records_give():
    """The README's and docs/pipeline.md's rebuild tables are generated (the rebuild chain rewrites them with each
    stage it commits), never typed: each equals what the committed records and today's pipeline give."""
    from reid_repro.config import load_params

    recs, stages = rebuild_table.records(), rebuild_table.pipeline_stages()
    runs = load_params(ROOT / "params.yaml")["runs"]
    for name, compact in (("README.md", True), ("docs/pipeline.md", False)):
        body = (ROOT / name).read_text(encoding="utf-8")
        block = body[body.index(rebuild_table.START) + len(rebuild_table.START):body.index(rebuild_table.END)]
        assert block.strip() == rebuild_table.table(recs, stages, runs, compact=compact), (
            f"{name}: its rebuild table is not the generated one: run python bench/rebuild_table.py --write "
            "README.md docs/pipeline.md")
