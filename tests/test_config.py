"""All of params.yaml is validated by every stage at its start: an unknown or missing key anywhere (every
section, both scales, every run's overrides) stops the stage with the key and its section named."""

import copy
from pathlib import Path

import pytest
import yaml

from reid_repro.cli import main
from reid_repro.assemble import validate_params
from reid_repro.config import load_params
from reid_repro.errors import ReidReproError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")


def _bad(edit):
    p = copy.deepcopy(PARAMS)
    edit(p)
    return p


CASES = [
    ("top-level typo", lambda p: p.update(sclae="paper"), r"sclae: unknown top-level key"),
    ("inactive scale's loop", lambda p: p["ice"]["paper_loop"].update(alpah=0.9), r"ice\.paper_loop\.alpah: unknown"),
    ("a data entry", lambda p: p["data"]["market"].update(rooot="x"), r"data\.market\.rooot: unknown key"),
    ("a data entry's reader", lambda p: p["data"]["duke"].update(format="duke"), r"data\.duke\.format='duke'"),
    ("a source that is not a dataset", lambda p: p.update(sources=["market", "dukemtmc"]),
     r"sources=\['market', 'dukemtmc'\]; expected a list of distinct keys of data"),
    ("a run from a source not trained", lambda p: p.update(sources=["duke"]),
     r"init='source_market'; expected .* source_<dataset> of a dataset in sources"),
    ("the paper model", lambda p: p["model"]["paper"].update(arhc="resnet50"), r"model\.paper\.arhc: unknown"),
    ("out of range at the other scale", lambda p: p["cluster_contrast"]["paper_loop"].update(eps=1.5),
     r"cluster_contrast\.paper_loop\.eps"),
    ("a run's paper_overrides", lambda p: p["runs"]["cc_msmt"]["paper_overrides"].update(esp=0.7),
     r"runs\.cc_msmt \(scale paper\).*'esp' is not a setting"),
    ("a run's model override", lambda p: p["runs"]["ise_market"]["overrides"].update({"model.poling": "gem"}),
     r"runs\.ise_market \(scale cpu\).*model\.poling"),
    ("a run field", lambda p: p["runs"]["cc_market"].update(tabel="6"), r"runs\.cc_market\.tabel: unknown key"),
    ("a missing section", lambda p: p.pop("mixup"), r"mixup: missing top-level section"),
    ("a mesh source", lambda p: p["meshes"]["duke"].update(source="smpl"), r"meshes\.duke\.source='smpl'"),
    ("meshes of no dataset", lambda p: p["meshes"].update(viper={"source": "renders", "from": "x"}),
     r"meshes\.viper: not a dataset"),
    ("a video domain's key", lambda p: p["video"]["domains"]["mars"].update(frame=[2, 4]),
     r"video\.domains\.mars\.frame: unknown key"),
    ("a video domain's cameras", lambda p: p["video"]["domains"]["dukev"].update(cameras_of="dukemtmc"),
     r"video\.domains\.dukev\.cameras_of='dukemtmc'; expected one of world\.domains"),
    ("a video layout", lambda p: p["video"]["domains"]["mars"].update(layout="ilids"),
     r"video\.domains\.mars\.layout='ilids'"),
    ("a video tracklet length", lambda p: p["video"]["domains"]["mars"].update(frames=[12, 4]),
     r"video\.domains\.mars\.frames=\[12, 4\]"),
    ("a video profile", lambda p: p["video"].update(profile="huge"), r"video\.profile='huge'"),
    ("a run on ImageNet checkpoints", lambda p: p["data"]["market"].update(format="imagenet"),
     r"runs\.\w+\.(dataset|test)='market' is a folder of ImageNet checkpoints"),
    ("the old model.init", lambda p: p["model"]["cpu"].update(init="pretrain"), r"model\.init='pretrain'; expected scratch"),
]


def test_the_committed_params_are_valid():
    validate_params(PARAMS)


def test_a_real_root_with_the_default_synthetic_meshes_stops_only_the_meshes_stage(tmp_path, capsys):
    """Real data roots with the default `meshes: synthetic` entries are valid params (every non-GCL stage starts);
    the meshes stage, the only one that makes renders, stops naming the key and what to set instead."""
    from reid_repro.cli import main
    from reid_repro.config import check_mesh_source

    real = copy.deepcopy(PARAMS)
    for name, root in (("market", "/datasets/Market-1501"), ("duke", "/datasets/DukeMTMC-reID")):
        real["data"][name]["root"] = root
    validate_params(real)
    with pytest.raises(ReidReproError, match=r"meshes\.market: source synthetic .* data\.market\.root is "
                                             r"/datasets/Market-1501; .* params .* renders"):
        check_mesh_source(real, "market")
    check_mesh_source(real, "msmt")                      # still the world's folder
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(real))
    assert main(["meshes", "--dataset", "market", "--out", str(tmp_path / "m"), "--params", str(path)]) == 2
    assert "meshes.market: source synthetic" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("what,edit,message", CASES, ids=[c[0] for c in CASES])
def test_a_typo_anywhere_is_a_named_error(what, edit, message):
    with pytest.raises(ReidReproError, match=message):
        validate_params(_bad(edit))


STAGE_ARGS = {
    "world": ["--out", "{tmp}/w"],
    "video-world": ["--out", "{tmp}/v"],
    "prepare": ["--dataset", "market1501", "--root", "{tmp}/none", "--out", "{tmp}/m"],
    "meshes": ["--images", "{tmp}/none", "--out", "{tmp}/me"],
    "pretrain": ["--out", "{tmp}/p"],
    "train": ["--run", "cc_market", "--out", "{tmp}/t"],
    "figures": ["--out", "{tmp}/f"],
    "report": ["--out", "{tmp}/r"],
    "check": [],
}


@pytest.mark.parametrize("stage", sorted(STAGE_ARGS))
def test_every_stage_stops_on_a_typo_before_it_starts(stage, tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(_bad(lambda p: p["ise"].update(lamda0=2.0))))
    args = [a.format(tmp=tmp_path) for a in STAGE_ARGS[stage]]
    assert main([stage, *args, "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"reid-repro {stage}: error: params.yaml: ise.lamda0: unknown key" in err
    assert not [p for p in tmp_path.iterdir() if p.name != "params.yaml"]      # nothing was written


def test_the_settings_files_load_as_one_params_and_a_section_lives_in_one_file(tmp_path):
    """conf/world.yaml (world, video) and conf/studies.yaml (studies) beside params.yaml: load_params returns
    the three as one mapping, the same as a self-contained params file holding every section; a section in two
    files, or a settings file holding a section that is not its own, stops with both named."""
    import shutil

    from reid_repro.config import SETTINGS

    root = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not set(SETTINGS) & set(root)                    # the project keeps them out of params.yaml
    merged = load_params(ROOT / "params.yaml", with_runs=False)
    for section, rel in SETTINGS.items():
        assert merged[section] == yaml.safe_load((ROOT / rel).read_text())[section]
    inline = tmp_path / "inline" / "params.yaml"
    inline.parent.mkdir()
    inline.write_text(yaml.safe_dump(merged))
    assert load_params(inline, with_runs=False) == merged
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    for name in ("params.yaml", "conf/world.yaml", "conf/studies.yaml"):
        shutil.copy(ROOT / name, project / name)
    doubled = dict(root, studies=merged["studies"])
    (project / "params.yaml").write_text(yaml.safe_dump(doubled))
    with pytest.raises(ReidReproError, match=r"params\.yaml: studies: also in .*conf/studies\.yaml"):
        load_params(project / "params.yaml")
    (project / "params.yaml").write_text(yaml.safe_dump(root))
    (project / "conf" / "studies.yaml").write_text(yaml.safe_dump({"studies": merged["studies"], "seeds": 3}))
    with pytest.raises(ReidReproError, match=r"conf/studies\.yaml: expected the sections \['studies'\], got "
                                             r"\['seeds', 'studies'\]"):
        load_params(project / "params.yaml")
