"""The shared loop's parts against hand computations, and the loop itself: determinism and exact resume."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from reid_repro.config import LoopConfig, RunSpec, load_method_config
from reid_repro.errors import ReidReproError
from reid_repro.training.data import PKSampler
from reid_repro.methods.base import lr_factor
from reid_repro.methods.cluster_contrast import ClusterMemory


def test_cluster_memory_loss_is_centroid_infonce():
    rng = np.random.default_rng(0)
    cent, f = rng.normal(size=(5, 8)), torch.tensor(rng.normal(size=(3, 8)), dtype=torch.float32)
    y = torch.tensor([0, 3, 3])
    mem = ClusterMemory(cent, temperature=0.05, momentum=0.2)
    c = cent / np.linalg.norm(cent, axis=1, keepdims=True)
    fn = f.numpy() / np.linalg.norm(f.numpy(), axis=1, keepdims=True)
    logits = fn @ c.T / 0.05
    expected = np.mean([-(logits[i, y[i]] - np.log(np.exp(logits[i]).sum())) for i in range(3)])   # Eq. 1
    assert mem.loss(f, y).item() == pytest.approx(expected, rel=1e-5)


def test_cluster_memory_updates_hardest_or_mean():
    cent = np.eye(3, dtype=np.float32)
    f = torch.tensor([[1.0, 0.1, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    y = torch.tensor([0, 0, 2])
    hard = ClusterMemory(cent, 0.05, momentum=0.2, update="hard")
    hard.update(f, y)
    # cluster 0: the hardest sample is the one least similar to the centroid e0, i.e. (0.6, 0.8, 0)
    m = 0.2 * np.array([1, 0, 0]) + 0.8 * np.array([0.6, 0.8, 0])                               # Eq. 2
    np.testing.assert_allclose(hard.features[0].numpy(), m / np.linalg.norm(m), rtol=1e-5)
    np.testing.assert_allclose(hard.features[1].numpy(), [0, 1, 0])                            # untouched
    mean = ClusterMemory(cent, 0.05, momentum=0.2, update="mean")
    mean.update(f, y)
    fn = F.normalize(f, dim=1).numpy()
    m = 0.2 * np.array([1, 0, 0]) + 0.8 * fn[:2].mean(0)
    np.testing.assert_allclose(mean.features[0].numpy(), m / np.linalg.norm(m), rtol=1e-5)


def test_pk_sampler_batches():
    labels = np.repeat(np.arange(6), [5, 5, 3, 1, 4, 6])
    cams = np.arange(len(labels)) % 3
    labels[0] = -1                                                   # an outlier is never sampled
    for mode in ("gallery", "more_camera"):
        sampler = PKSampler(labels, cams, 4, 3, 5, [0, 1], True, camera_sampler=mode)
        batches = list(sampler)
        assert len(batches) == 5 and batches == list(PKSampler(labels, cams, 4, 3, 5, [0, 1], True,
                                                               camera_sampler=mode))
        assert batches != list(PKSampler(labels, cams, 4, 3, 5, [0, 2], True, camera_sampler=mode))
        for b in batches:
            assert len(b) == 12 and 0 not in b
            ids = labels[b].reshape(4, 3)
            assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 4
    with pytest.raises(ReidReproError, match="only 1 labelled cluster"):
        PKSampler(np.zeros(5, dtype=int), np.zeros(5), 2, 2, 1, 0)
    with pytest.raises(ReidReproError, match="camera_sampler='random'"):
        PKSampler(labels, cams, 2, 2, 1, 0, camera_sampler="random")


def _draws(members_cams, K, mode, cross=True, n=4000):
    """The K images drawn for one identity whose images have ``members_cams`` cameras, ``n`` times."""
    labels = np.concatenate([np.zeros(len(members_cams), int), np.ones(K, int)])
    cams = np.concatenate([members_cams, np.zeros(K, int)])
    sampler = PKSampler(labels, cams, 2, K, n, [0], cross, camera_sampler=mode)
    return [np.array([i for i in b if labels[i] == 0]) for b in sampler]


def test_the_gallery_sampler_takes_an_anchor_and_its_other_cameras_as_the_reference_code():
    """RandomMultipleGallerySampler: an anchor, then K-1 of the images from other cameras, without replacement
    only when there are at least K of them; one camera: the other images."""
    cams = np.array([0, 0, 0, 1, 2])                                 # 3 images on camera 0, one each on 1 and 2
    for draw in _draws(cams, 3, "gallery"):
        anchor, rest = draw[0], draw[1:]
        assert (cams[rest] != cams[anchor]).all()                    # never the anchor's camera while others exist
    # anchor on camera 0: the 2 other-camera images < K = 3, so the code draws with replacement
    repeats = [len(set(d[1:])) == 1 for d in _draws(cams, 3, "gallery") if cams[d[0]] == 0]
    assert 0.3 < np.mean(repeats) < 0.7                              # P(both picks equal) = 1/2
    one_cam = _draws(np.array([4, 4, 4, 4]), 3, "gallery")
    assert all(d[0] not in d[1:] for d in one_cam)                   # 3 others >= K: no replacement, no anchor


def test_the_more_camera_sampler_takes_one_image_per_camera_first_as_ices_code():
    cams = np.array([0, 0, 1, 1, 2, 3])
    for draw in _draws(cams, 3, "more_camera"):                       # 4 cameras >= K: K distinct cameras
        assert len(set(cams[draw])) == 3 and len(set(draw)) == 3
    two = np.array([0, 0, 0, 1])
    for draw in _draws(two, 3, "more_camera"):                        # 2 cameras: both, then another image
        assert set(two[draw[:2]]) == {0, 1} and len(set(draw)) == 3
    plain = _draws(np.array([0, 1, 2, 3, 4]), 3, "gallery", cross=False)
    assert all(len(set(d)) == 3 for d in plain)                      # RandomIdentitySampler: no replacement


def test_lr_schedule():
    cfg = LoopConfig(0, 50, 1, 2, 2, 1e-3, 0, 10, 20, 0.1, 0.5, 20, 6, 4, "pseudo", False, 0)
    assert [lr_factor(cfg, e) for e in (0, 5, 10, 19, 20, 40)] == pytest.approx([0.1, 0.55, 1, 1, 0.1, 0.01])


def test_method_config_errors_name_the_key():
    from reid_repro.methods.cluster_contrast import ClusterContrastConfig
    from reid_repro.config import load_params

    params = json.loads(json.dumps(load_params(Path(__file__).resolve().parents[1] / "params.yaml")))
    # each scale reads its own loop block, and a run's override wins over either (values set here, not defaults)
    params["cluster_contrast"]["loop"].update(momentum=0.37, temperature=0.11, update="mean")
    params["cluster_contrast"]["paper_loop"].update(momentum=0.42, temperature=0.06, update="hard")
    cfg = load_method_config(params, "cluster_contrast", ClusterContrastConfig, {"momentum": 0.3})
    assert (cfg.momentum, cfg.temperature) == (0.3, 0.11)
    cpu = load_method_config(params, "cluster_contrast", ClusterContrastConfig)
    paper = load_method_config({**params, "scale": "paper"}, "cluster_contrast", ClusterContrastConfig)
    assert (cpu.update, cpu.momentum, cpu.temperature) == ("mean", 0.37, 0.11)
    assert (paper.update, paper.momentum, paper.temperature) == ("hard", 0.42, 0.06)
    with pytest.raises(ReidReproError, match="runs override 'mommentum' is not a setting of cluster_contrast"):
        load_method_config(params, "cluster_contrast", ClusterContrastConfig, {"mommentum": 0.1})
    bad = json.loads(json.dumps(params))
    bad["cluster_contrast"]["loop"]["eps"] = 1.5
    with pytest.raises(ReidReproError, match=r"cluster_contrast.loop.eps=1.5 is out of range"):
        load_method_config(bad, "cluster_contrast", ClusterContrastConfig)
    bad["cluster_contrast"]["loop"]["eps"] = 0.5
    bad["cluster_contrast"]["loop"]["update"] = "median"
    with pytest.raises(ReidReproError, match=r"cluster_contrast.loop.update='median'"):
        load_method_config(bad, "cluster_contrast", ClusterContrastConfig)


# ---------------------------------------------------------------------------------------------------------------
# the loop end to end on a smoke world


@pytest.fixture(scope="module")
def smoke(world, tmp_path_factory):
    """params for tiny runs on the session's smoke world (market domain), with manifests prepared."""
    from reid_repro.config import load_params
    from reid_repro.data.manifest import prepare

    out, _ = world
    tmp = tmp_path_factory.mktemp("smoke_runs")
    prepare("market1501", out / "market", tmp / "manifests" / "market")
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    params["data"] = {"market": {"root": str(out / "market"), "manifest": str(tmp / "manifests" / "market"),
                                 "format": "market1501"}}
    params["sources"] = ["market"]              # the one stand-in these runs have
    params["meshes"] = {}                   # no structure renders in these runs
    params["gcl_warmups"], params["studies"] = {}, {}     # they name runs the tests below replace
    params["larger"] = {"enabled": False, "warmups": {}, "runs": {}}
    params["model"]["cpu"].update(height=32, width=16, init="scratch")
    loop = dict(epochs=3, iters=2, batch_ids=3, instances=2, warmup_epochs=1, lr_step=2, k1=4, k2=2, eps=0.6,
                min_samples=2, workers=0)
    for section in ("pretrain", "cluster_contrast", "ice"):
        params[section]["loop"].update(loop)
    return params, tmp


def _spec(method="cluster_contrast", **kw):
    base = dict(method=method, base=method, dataset="market", test="market", init="pretrain", paper="ise", table="6",
                row="Cluster-Contrast (Our Baseline)", overrides={}, paper_overrides={}, also=[])
    base.update(kw)
    return RunSpec(**base)


@pytest.fixture(scope="module")
def pretrained(smoke):
    from reid_repro.training.run import execute

    params, tmp = smoke
    spec = _spec("supervised", init="scratch", row="pretraining")
    execute(params, "pretrain", spec, tmp / "models" / "pretrain", "pretrain", root=tmp, track=False,
            section="pretrain")
    return tmp / "models"


def _history(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "history.parquet").drop(columns=["seconds", "cluster_seconds"])


def test_same_seed_same_results_and_exact_resume(smoke, pretrained):
    from reid_repro.training.run import execute

    params, tmp = smoke
    a = execute(params, "a", _spec(), tmp / "a", "train@a", root=tmp, models_dir=pretrained, track=False)
    b = execute(params, "b", _spec(), tmp / "b", "train@b", root=tmp, models_dir=pretrained, track=False)
    for k in ("mAP", "rank1", "mINP", "nmi", "num_clusters"):
        assert a[k] == b[k], k
    pd.testing.assert_frame_equal(_history(tmp / "a"), _history(tmp / "b"))
    # killed after epoch 1, started again: the same final metrics and history as the uninterrupted run
    stopped = execute(params, "c", _spec(), tmp / "c", "train@c", root=tmp, models_dir=pretrained, track=False,
                      stop_after=1)
    assert stopped == {"stopped_after_epoch": 1} and not (tmp / "c" / "metrics.json").exists()
    assert len(list((tmp / ".cache" / "checkpoints").glob("c.pt"))) == 1
    c = execute(params, "c", _spec(), tmp / "c", "train@c", root=tmp, models_dir=pretrained, track=False)
    for k in ("mAP", "rank1", "mINP", "nmi", "num_clusters"):
        assert c[k] == a[k], k
    pd.testing.assert_frame_equal(_history(tmp / "c"), _history(tmp / "a"))
    assert not list((tmp / ".cache" / "checkpoints").glob("c.*"))            # removed once the run is done
    # another seed is another run
    other = replace(_spec(), overrides={"seed": 1})
    execute(params, "d", other, tmp / "d", "train@d", root=tmp, models_dir=pretrained, track=False)
    assert not _history(tmp / "d").equals(_history(tmp / "a"))


def test_seeds_are_paired_aggregated_and_reused(smoke, pretrained, capsys, monkeypatch):
    """A run trains seeds loop.seed + 0..seeds-1; seed s equals a single run with seed s (so seed s of a row and
    of its baseline share everything a seed fixes); metrics.json holds the mean, the sd and each seed's values;
    a later call with more seeds trains only the new one, and none is reused under other numerics."""
    from reid_repro.training.run import execute, execute_seeds, seed_list

    params, tmp = smoke
    one, two = {**params, "seeds": 1}, {**params, "seeds": 2}
    assert seed_list(two, _spec()) == seed_list(two, _spec("ise", base="cluster_contrast")) == [0, 1]
    # a run's own seeds (a baseline's) count where they are more than params.yaml's, never fewer
    assert seed_list(two, _spec(seeds=4)) == [0, 1, 2, 3] and seed_list({**params, "seeds": 5}, _spec(seeds=4)) == \
        [0, 1, 2, 3, 4]
    with pytest.raises(ReidReproError, match=r"runs: seeds=0 \(a run's own\); expected an integer from 1"):
        seed_list(two, _spec(seeds=0))
    first = execute_seeds(one, "s", _spec(), tmp / "s", "train@s", root=tmp, models_dir=pretrained, track=False)
    assert first["seed_list"] == [0] and first["mAP_std"] == 0.0
    capsys.readouterr()
    m = execute_seeds(two, "s", _spec(), tmp / "s", "train@s", root=tmp, models_dir=pretrained, track=False)
    out = capsys.readouterr().out
    assert out.count("result reused") == 1 and "seed 1 (2/2)" in out      # only the new seed trained
    alone = execute(params, "s1", replace(_spec(), overrides={"seed": 1}), tmp / "s1", "train@s1", root=tmp,
                    models_dir=pretrained, track=False)
    written = json.loads((tmp / "s" / "metrics.json").read_text())
    assert written["seed_list"] == [0, 1] and written["seeds"]["1"]["mAP"] == alone["mAP"]
    assert written["seeds"]["0"] == first["seeds"]["0"]
    # under other numerics nothing is reused: here the record of another MKL branch (MKL has loaded: it computes as
    # before, but a run would record, and key its results by, the branch it was told)
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    execute_seeds(one, "s", _spec(), tmp / "s_other", "train@s", root=tmp, models_dir=pretrained, track=False)
    assert "result reused" not in capsys.readouterr().out
    values = [written["seeds"][k]["mAP"] for k in ("0", "1")]
    assert written["mAP"] == pytest.approx(np.mean(values)) and written["mAP_std"] == pytest.approx(np.std(values, ddof=1))
    assert m["mAP"] == written["mAP"]
    pd.testing.assert_frame_equal(_history(tmp / "s" / "seeds" / "1"), _history(tmp / "s1"))
    assert (tmp / "s" / "model.pt").is_file() and not list((tmp / "s" / "seeds").rglob("model.pt"))
    # every seed's embeddings are an output: scored again from the file (float16), each gives its seed's mAP, and
    # the training images are there too (what the figures read instead of running the model)
    from reid_repro.evaluation.stored import read_features, score_features

    assert sorted(f.name for f in (tmp / "s" / "features").iterdir()) == ["0.parquet", "1.parquet"]
    for seed in ("0", "1"):
        again = score_features(tmp / "s" / "features" / f"{seed}.parquet")
        assert again["mAP"] == pytest.approx(written["seeds"][seed]["mAP"], abs=2e-3)
    table, feats = read_features(tmp / "s" / "features" / "0.parquet")
    assert set(table["split"]) == {"query", "gallery", "train"} and feats.shape[0] == len(table)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=2e-3)


def test_the_report_names_a_run_of_earlier_code_or_settings(smoke, pretrained):
    """The report recomputes what training recorded in run.json (the digest of the code the run imported, the hash
    of its resolved settings, and whether it computed under reference numerics): a run just trained is current; the same run read with other settings, with another
    code digest, or from a run.json written before inputs were recorded is named stale, and why."""
    import copy

    from reid_repro.report.runs import stale_reason
    from reid_repro.training.run import execute_seeds

    params, tmp = smoke
    one = {**params, "seeds": 1}
    execute_seeds(one, "cur", _spec(), tmp / "cur", "train@cur", root=tmp, models_dir=pretrained, track=False)
    info = json.loads((tmp / "cur" / "run.json").read_text())
    # the suite's workers compute with 1 thread, off the reference (2): the report says so, naming the kernel set
    numerics = info["environment"]["numerics"]
    if not numerics["reference"]:
        assert stale_reason(one, "cur", _spec(), info) == (f"computed off the reference numerics "
                                                           f"({numerics['kernel_set']}, fp32)")
    info["environment"]["numerics"] = {**numerics, "reference": True}
    assert stale_reason(one, "cur", _spec(), info) is None
    off = {**info, "environment": {**info["environment"], "numerics": {**numerics, "reference": False}}}
    assert stale_reason(one, "cur", _spec(), off).startswith("computed off the reference numerics")
    other = copy.deepcopy(one)
    other["cluster_contrast"]["loop"]["eps"] = 0.7
    assert stale_reason(other, "cur", _spec(), info) == "built with other settings"
    hotter = replace(_spec(), overrides={"temperature": 0.2})        # a run's own override counts too
    assert stale_reason(one, "cur", hotter, info) == "built with other settings"
    earlier = {**info, "inputs": {**info["inputs"], "code": "0" * 16}}
    assert stale_reason(one, "cur", _spec(), earlier) == "built with earlier code"
    before = {k: v for k, v in info.items() if k != "inputs"}
    assert stale_reason(one, "cur", _spec(), before).startswith("written before runs recorded")
    assert stale_reason(one, "cur", _spec(), {"git_revision": "abc"}) is None     # a hand-made run: nothing to check


def test_ground_truth_labels_are_the_true_ids(smoke, pretrained):
    from reid_repro.training.run import execute

    params, tmp = smoke
    m = execute(params, "gt", _spec(overrides={"labels": "ground_truth"}), tmp / "gt", "train@gt", root=tmp,
                models_dir=pretrained, track=False)
    h = pd.read_parquet(tmp / "gt" / "history.parquet")
    assert (h["nmi"] == 1.0).all() and (h["num_clusters"] == h["num_true_ids"]).all()
    assert m["num_outliers"] == 0


def test_missing_init_checkpoint_is_a_clear_error(smoke, tmp_path):
    from reid_repro.training.run import execute

    params, _ = smoke
    with pytest.raises(ReidReproError, match=r"pretrain/model.pt: missing"):
        execute(params, "x", _spec(), tmp_path / "x", "train@x", root=tmp_path, models_dir=tmp_path, track=False)


@pytest.mark.parametrize("method,row,overrides", [("ise", "Our ISE", {}), ("ice", "ICE(aware)", {}),
                                                 ("ice", "ICE(aware)", {"fidelity": "paper", "cross_camera": False}),
                                                 ("mixup", "Mixup, α=1.0", {})], ids=["ise", "ice-code", "ice-paper", "mixup"])
def test_each_method_trains_on_the_smoke_world(smoke, pretrained, method, row, overrides):
    from reid_repro.training.run import execute

    params, tmp = smoke
    spec = replace(_spec(method), base="cluster_contrast" if method in ("ise", "mixup") else method, row=row,
                   paper="ise" if method != "ice" else "ice", overrides=overrides)
    name = f"{method}-{len(overrides)}"
    m = execute(params, name, spec, tmp / name, f"train@{name}", root=tmp, models_dir=pretrained, track=False)
    h = pd.read_parquet(tmp / name / "history.parquet")
    losses = [c for c in h.columns if c.startswith("loss_")]
    # every loss finite and non-negative (ICE's cross-camera term is 0 in an epoch whose clusters each lie in one
    # camera: no cross-camera positive exists), the total positive
    assert losses and np.isfinite(h[losses].to_numpy()).all() and (h[losses].to_numpy() >= 0).all()
    assert (h["loss"] > 0).all()
    assert 0 <= m["mAP"] <= 1 and m["epochs"] == 3
    if method == "ice":
        assert {"loss_agnostic", "loss_cross", "loss_h_ins", "loss_s_ins"} <= set(losses) and (h["kl"] > 0).all()


def test_corrupt_or_missing_images_name_the_path(tmp_path):
    from reid_repro.training.data import ImageCache, load_split

    table = pd.DataFrame({"path": ["bounding_box_train/0001_c1s1_000001_00.jpg"]})
    (tmp_path / "bounding_box_train").mkdir()
    (tmp_path / table["path"][0]).write_bytes(b"not a jpeg")
    with pytest.raises(ReidReproError, match="0001_c1s1_000001_00.jpg: cannot decode image"):
        ImageCache(tmp_path, table, 32, 16)
    with pytest.raises(ReidReproError, match="nowhere: dataset folder not found"):
        ImageCache(tmp_path / "nowhere", table, 32, 16)
    with pytest.raises(ReidReproError, match="manifest.parquet: missing"):
        load_split(tmp_path, "train")


def _resumed(capsys) -> str:
    return capsys.readouterr().out


def test_resume_never_mixes_inputs(smoke, pretrained, tmp_path, capsys):
    """Interrupted, then the data or the starting weights change: the next run starts from scratch."""
    import shutil

    import torch

    from reid_repro.data.manifest import prepare
    from reid_repro.training.run import execute

    params, tmp = smoke
    full = execute(params, "ref", _spec(), tmp / "ref", "train@ref", root=tmp, models_dir=pretrained, track=False)
    # other data: the same world folder less one training image
    world = Path(params["data"]["market"]["root"])
    other = tmp_path / "market"
    shutil.copytree(world, other)
    next((other / "bounding_box_train").glob("*.jpg")).unlink()
    prepare("market1501", other, tmp_path / "manifest")
    changed = {**params, "data": {"market": {"root": str(other), "manifest": str(tmp_path / "manifest"),
                                              "format": "market1501"}}}
    assert execute(params, "k", _spec(), tmp / "k", "train@k", root=tmp, models_dir=pretrained, track=False,
                   stop_after=1) == {"stopped_after_epoch": 1}
    capsys.readouterr()
    execute(changed, "k", _spec(), tmp / "k", "train@k", root=tmp, models_dir=pretrained, track=False)
    out = _resumed(capsys)
    assert "written for other inputs" in out and "resuming" not in out
    # other starting weights (pretraining re-run): the same
    assert execute(params, "w", _spec(), tmp / "w", "train@w", root=tmp, models_dir=pretrained, track=False,
                   stop_after=1) == {"stopped_after_epoch": 1}
    models = tmp_path / "models"
    (models / "pretrain").mkdir(parents=True)
    state = torch.load(pretrained / "pretrain" / "model.pt", weights_only=True)
    # a change far below what moves a feature: the file differs, the clustering does not
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 1)
    torch.save({**state, name: state[name] + 1e-7}, models / "pretrain" / "model.pt")
    capsys.readouterr()
    execute(params, "w", _spec(), tmp / "w", "train@w", root=tmp, models_dir=models, track=False)
    out = _resumed(capsys)
    assert "written for other inputs" in out and "resuming" not in out
    # unchanged inputs still resume, and end where the uninterrupted run ended
    assert execute(params, "r", _spec(), tmp / "r", "train@r", root=tmp, models_dir=pretrained, track=False,
                   stop_after=2) == {"stopped_after_epoch": 2}
    capsys.readouterr()
    again = execute(params, "r", _spec(), tmp / "r", "train@r", root=tmp, models_dir=pretrained, track=False)
    assert "resuming" in _resumed(capsys) and again["mAP"] == full["mAP"]


def test_truncated_or_old_checkpoint_starts_fresh(smoke, pretrained, capsys):
    from reid_repro.training.run import execute

    params, tmp = smoke
    ref = execute(params, "t0", _spec(), tmp / "t0", "train@t0", root=tmp, models_dir=pretrained, track=False)
    execute(params, "t", _spec(), tmp / "t", "train@t", root=tmp, models_dir=pretrained, track=False, stop_after=1)
    ckpt = tmp / ".cache" / "checkpoints" / "t.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    m = execute(params, "t", _spec(), tmp / "t", "train@t", root=tmp, models_dir=pretrained, track=False)
    out = capsys.readouterr().out
    assert "unreadable" in out and "starting fresh" in out and "Traceback" not in out
    assert m["mAP"] == ref["mAP"]
    # a checkpoint of the old format (keyed on settings only)
    import torch

    torch.save({"epoch": 1, "config_hash": "abc", "model": {}}, ckpt)
    m = execute(params, "t", _spec(), tmp / "t", "train@t", root=tmp, models_dir=pretrained, track=False)
    assert "not a checkpoint of this version" in capsys.readouterr().out and m["mAP"] == ref["mAP"]


def test_sigkill_during_checkpoint_write_keeps_the_previous_one(tmp_path):
    """A write through atomic_path killed halfway leaves the old checkpoint loadable; the orphan temporary file
    is removed by the next load."""
    import signal
    import subprocess
    import sys

    import torch

    from reid_repro.training.loop import load_checkpoint

    ckpt = tmp_path / "run.pt"
    state = {"epoch": 1, "input_key": "k", "model": {}, "method": {}, "optimizers": [], "schedulers": [],
             "history": [{"epoch": 1}]}
    torch.save(state, ckpt)
    code = ("import sys, time, torch\n"
            "from reid_repro.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    f = open(tmp, 'wb'); f.write(b'partial checkpoint'); f.flush()\n"
            "    print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(ckpt)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert list(tmp_path.glob(".run.pt.*.tmp"))                 # the killed write's orphan
    loaded = load_checkpoint(ckpt, "k", torch.device("cpu"))
    assert loaded is not None and loaded["history"] == [{"epoch": 1}]
    assert not list(tmp_path.glob(".run.pt.*.tmp"))


def test_a_training_step_can_yield_updates_that_see_each_other():
    """The loop's multi-network contract (methods/base.py Step): a discriminator step, then a generator step that
    uses the updated discriminator; each steps only its own optimiser. Checked against a hand-run of SGD."""
    from collections import defaultdict

    from reid_repro.methods.base import Step
    from reid_repro.training.loop import run_steps

    torch.manual_seed(0)
    gen, disc = torch.nn.Linear(2, 1), torch.nn.Linear(1, 1)
    g0 = [p.detach().clone() for p in gen.parameters()]
    d0 = [p.detach().clone() for p in disc.parameters()]
    opts = {"model": torch.optim.SGD(gen.parameters(), lr=0.5), "disc": torch.optim.SGD(disc.parameters(), lr=0.5)}
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]])

    def training_step():
        fake = gen(x)
        yield Step({"d": disc(fake.detach()).pow(2).mean()}, ("disc",))
        yield Step({"g": (disc(gen(x)) - 1).pow(2).mean()}, ("model",))

    sums = defaultdict(float)
    total = run_steps(training_step(), opts, sums, encoder=("model",))

    # by hand: D's SGD step on its loss with G fixed, then G's SGD step through the *updated* D
    gw, gb, dw, db = (p.clone().requires_grad_() for p in g0 + d0)
    fake = (x @ gw.t() + gb).detach()
    loss_d = (fake * dw + db).pow(2).mean()
    dw_grad, db_grad = torch.autograd.grad(loss_d, (dw, db))
    dw1, db1 = (dw - 0.5 * dw_grad).detach(), (db - 0.5 * db_grad).detach()
    loss_g = ((x @ gw.t() + gb) * dw1 + db1 - 1).pow(2).mean()
    gw_grad, gb_grad = torch.autograd.grad(loss_g, (gw, gb))
    assert torch.allclose(disc.weight, dw1) and torch.allclose(disc.bias, db1)
    assert torch.allclose(gen.weight, gw - 0.5 * gw_grad) and torch.allclose(gen.bias, gb - 0.5 * gb_grad)
    assert sums["d"] == pytest.approx(loss_d.item()) and sums["g"] == pytest.approx(loss_g.item())
    assert total == pytest.approx(loss_g.item())          # the history's `loss`: the trained network's steps only

    with pytest.raises(KeyError, match="'critic'"):
        run_steps(iter([Step({"g": gen(x).sum()}, ("critic",))]), opts, sums)


def test_a_dict_of_losses_is_one_update_of_every_optimiser():
    from collections import defaultdict

    from reid_repro.training.loop import run_steps

    torch.manual_seed(0)
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in (*a.parameters(), *b.parameters())]
    opts = {"model": torch.optim.SGD(a.parameters(), lr=0.1), "head": torch.optim.SGD(b.parameters(), lr=0.1)}
    x = torch.ones(1, 2)
    run_steps({"a": a(x).sum(), "b": 2 * b(x).sum()}, opts, defaultdict(float))
    # d/dw of w.x + c is x (=1) and d/dc is 1: every parameter of a moves by -0.1, of b by -0.2
    for p, p0, lr in zip((*a.parameters(), *b.parameters()), before, (0.1, 0.1, 0.2, 0.2)):
        assert torch.allclose(p, p0 - lr)


def test_every_method_is_built_with_the_runs_context(tmp_path):
    """make_method hands each method a RunContext (the training table, the start's folder): the supervised start's
    classifier counts the true identities from it, and a method that needs the table says so when it is missing."""
    import pandas as pd

    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_params, source_spec
    from reid_repro.methods.cluster_contrast import ClusterContrastConfig
    from reid_repro.models import ReidNet
    from reid_repro.training.run import make_method

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    table = pd.DataFrame({"pid": [3, 3, 7, 9], "camid": [0, 1, 0, 1]})
    _, cfg = resolve_run(params, source_spec("market"), section="source")      # pretext: identity
    sup = make_method("supervised", cfg, ReidNet("resnet18"), torch.device("cpu"), table, tmp_path)
    assert sup.classifier.out_features == 3          # num_classes: the true identities of the training table
    assert list(sup.optimizers()) == ["model", "classifier"]
    cc_cfg = load_method_config(params, "cluster_contrast", ClusterContrastConfig)
    cc = make_method("cluster_contrast", cc_cfg, ReidNet("resnet18"), torch.device("cpu"), table, tmp_path)
    assert list(cc.optimizers()) == ["model"] and cc.eval_encoder() is cc.model
    assert cc.context.train_table is table and cc.context.init_dir == tmp_path     # every method, the same context
    from reid_repro.methods import method_class
    from reid_repro.methods.base import RunContext

    with pytest.raises(ReidReproError, match=r"supervised: needs the training set's table \(RunContext.train_table\)"):
        method_class("supervised")(cfg, ReidNet("resnet18"), torch.device("cpu"), RunContext())


def test_instance_pretext_makes_every_training_image_a_class(tmp_path):
    """pretext: instance (exemplar training): the classifier has a row per training image and the loop's labels are
    the images' own indices, whatever the true identities; pretext: identity keeps the identities. A batch of the
    PK sampler then holds `instances` views of each of `batch_ids` images. Unknown pretexts, or an instance pretext
    on pseudo labels, name the key."""
    import pandas as pd

    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_params, pretrain_spec
    from reid_repro.models import ReidNet
    from reid_repro.training.data import PKSampler
    from reid_repro.training.run import make_method

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    table = pd.DataFrame({"pid": [3, 3, 7, 9, 9, 9], "camid": [0, 1, 0, 1, 0, 1]})
    pids = table["pid"].to_numpy()
    for pretext, classes, labels in (("instance", 6, [0, 1, 2, 3, 4, 5]), ("identity", 3, [0, 0, 1, 2, 2, 2])):
        _, cfg = resolve_run(params, pretrain_spec(), section="pretrain")
        cfg = replace(cfg, pretext=pretext)
        sup = make_method("supervised", cfg, ReidNet("resnet18"), torch.device("cpu"), table, tmp_path)
        assert sup.classifier.out_features == classes, pretext
        got = sup.pseudo_labels(0, np.zeros((6, 4), np.float32), pids)
        assert got.tolist() == labels, pretext
    batch = next(iter(PKSampler(np.arange(6), table["camid"].to_numpy(), 3, 4, 1, [0, 0], False)))
    assert len(batch) == 12 and len(set(batch)) == 3 and all(batch.count(i) == 4 for i in set(batch))
    with pytest.raises(ReidReproError, match=r"pretext='colour' is not one of \('identity', 'instance'\)"):
        replace(cfg, pretext="colour")
    with pytest.raises(ReidReproError, match="pretext 'instance' .* expected labels ground_truth, got 'pseudo'"):
        replace(cfg, pretext="instance", labels="pseudo")


def test_precision_auto_is_fp32_on_the_cpu_and_bf16_only_on_a_native_gpu(monkeypatch):
    """`auto` is float32 on the CPU even where the CPU has native bf16 (the reference every committed number was
    computed in; bf16 on the CPU is asked for), bf16 on a GPU with native bf16 and fp32 on one without; an
    explicit bf16 without native support is kept but warned about (autocast emulates it, ~25x slower on an AVX2
    CPU); an unknown value is an error. In fp32 the network computes exactly what a plain fp32 network computes;
    in bf16 autocast is on."""
    import warnings

    import reid_repro.models as models
    from reid_repro.errors import ReidReproError
    from reid_repro.models import ReidNet, resolve_precision

    x = torch.randn(4, 3, 32, 16)
    torch.manual_seed(0)
    ref = ReidNet("resnet18", precision="fp32").eval()
    for native in (False, True):
        monkeypatch.setattr(models, "native_bf16", lambda device, native=native: native)
        auto = ReidNet("resnet18", precision="auto").eval()
        auto.load_state_dict(ref.state_dict())
        assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("fp32", "cpu") == "fp32"
        with torch.no_grad():
            assert torch.equal(auto(x), ref(x)) and auto.compute_precision("cpu") == "fp32"
        assert resolve_precision("auto", "cuda") == ("bf16" if native else "fp32")
    monkeypatch.setattr(models, "native_bf16", lambda device: False)
    with pytest.warns(UserWarning, match="without native bf16"):
        assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(models, "native_bf16", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", "cpu") == "bf16"
    asked = ReidNet("resnet18", precision="bf16").eval()          # resolved once per device type, on first use
    asked.load_state_dict(ref.state_dict())
    seen = []
    asked.body.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    with torch.no_grad():
        out = asked(x)
    assert seen == [torch.bfloat16] and out.dtype == torch.float32 and asked.compute_precision("cpu") == "bf16"
    with pytest.raises(ReidReproError, match="model.precision='fp16'"):
        resolve_precision("fp16", "cpu")


def test_bf16_kernels_are_checked_layer_by_layer_against_float32(monkeypatch):
    """The known-answer check of a bf16 run (models.check_bf16_kernels): every Conv2d and Linear of the network at
    its own input size, each against float32 on the same bf16-rounded operands. The CPU's kernels pass (their
    error is bf16 rounding: at most 2^-8 of the largest output here, by the formula's half ulp); a kernel that is
    off for one batch size and one layer, as oneDNN's AMX convolution was for layer3's first convolution at 4x2
    inputs, is an error naming that layer, the shape, the kernel set and what to set instead."""
    from torch import nn

    from reid_repro.models import BF16_TOLERANCE, ReidNet, bf16_layer_error, check_bf16_kernels, layer_inputs

    torch.manual_seed(0)
    net = ReidNet("resnet18").train()
    shapes = layer_inputs(net, 32, 16)
    assert net.training                                                   # the mode is restored
    convs = [n for n, (m, _) in shapes.items() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and shapes["body.0"][1] == (3, 32, 16)       # resnet18: 20 convolutions
    assert shapes["body.6.0.conv1"][1] == (128, 4, 2)                     # layer3's first conv sees 4x2
    err, scale = bf16_layer_error(shapes["body.6.0.conv1"][0], (6, 128, 4, 2), "cpu")
    assert err <= 2.0 ** -8 * scale
    assert check_bf16_kernels(net, "cpu", 32, 16, batches=(1, 6)) == 2 * len(shapes)

    layer = net.body[6][0].conv1
    plain = layer._conv_forward

    def faulty(x, w, b):                  # wrong by 1 under bf16 autocast for batch 6 only
        y = plain(x, w, b)
        return y + 1.0 if torch.is_autocast_enabled("cpu") and x.shape[0] == 6 else y

    monkeypatch.setattr(layer, "_conv_forward", faulty)
    check_bf16_kernels(net, "cpu", 32, 16, batches=(1, 2))                # the fault is not at these shapes
    with pytest.raises(ReidReproError, match=r"layer body\.6\.0\.conv1 \(Conv2d\(128, 256.*input shape \(6, 128, 4, 2\) "
                                             r".*kernel set: test kernels\).*model\.precision: fp32.*"
                                             r"ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16"):
        check_bf16_kernels(net, "cpu", 32, 16, batches=(1, 6), kernels="test kernels")
    assert BF16_TOLERANCE == 2.0 ** -7


def test_a_bf16_run_checks_its_kernels_before_it_trains(smoke, pretrained, monkeypatch):
    """`precision: bf16` on the CPU: the run checks its network's layers before the first epoch and stops with the
    check's error when a kernel is wrong, writing nothing."""
    import copy

    import reid_repro.models as models
    from reid_repro.training.run import execute

    params, tmp = smoke
    params = copy.deepcopy(params)
    params["model"]["cpu"]["precision"] = "bf16"
    monkeypatch.setattr(models, "native_bf16", lambda device: True)
    monkeypatch.setattr(models, "bf16_layer_error", lambda layer, shape, device: (1.0, 1.0))
    with pytest.raises(ReidReproError, match=r"bf16 kernels are wrong on cpu: layer body\.0 .* kernel set: "
                                             r"reference|native"):
        execute(params, "bf16", _spec(), tmp / "bf16", "train@bf16", root=tmp, models_dir=pretrained, track=False)
    assert not (tmp / "bf16").exists()


def test_optimiser_state_is_cleared_for_the_named_optimisers_only():
    """MMT re-creates its networks' Adam each epoch; CANU's discriminators keep their moments."""
    from reid_repro.methods import method_class
    from reid_repro.training.loop import reset_optimizers

    params = {n: torch.nn.Parameter(torch.ones(2)) for n in ("model", "net_2", "disc_1")}
    opts = {n: torch.optim.Adam([p], lr=0.1) for n, p in params.items()}
    for p, o in zip(params.values(), opts.values()):
        p.sum().backward()
        o.step()
    canu = method_class("canu")
    # MMT's two networks (the code's optimizer over net and net_2) are reset and trained; the adversaries are not
    assert set(canu.reset_optimizers_each_epoch) == set(canu.encoder_optimizers) == {"model", "net_2"}
    assert reset_optimizers(canu.reset_optimizers_each_epoch, opts) == ["model", "net_2"]
    assert not opts["model"].state and not opts["net_2"].state and opts["disc_1"].state
    assert reset_optimizers(True, opts) == list(opts) and not opts["disc_1"].state
    assert reset_optimizers(False, opts) == []
    with pytest.raises(KeyError, match="'critic'"):
        reset_optimizers(("critic",), opts)


def test_torchrun_trains_one_run_on_two_processes_and_only_rank_0_writes(smoke, pretrained, tmp_path):
    """`torchrun --nproc_per_node 2 reid-repro train`: the run finishes on both ranks (gloo on the CPU), rank 0
    writes the outputs and one MLflow run, nobody else writes anything."""
    import shutil
    import subprocess
    import sys

    import mlflow
    import yaml

    params, _ = smoke
    params = json.loads(json.dumps(params))
    params["seeds"] = 1
    params["runs"] = {"ddp": dict(method="cluster_contrast", base="cluster_contrast", dataset="market",
                                  test="market", init="pretrain", paper="ise", table="6",
                                  row="Cluster-Contrast (Our Baseline)", overrides={"batch_ids": 2})}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "reid_repro.cli", "train",
                           "--run-name", "ddp", "--models", str(pretrained)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 done" in proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "runs" / "ddp" / "metrics.json").read_text())
    assert metrics["num_seeds"] == 1 and 0 <= metrics["mAP"] <= 1
    history = pd.read_parquet(tmp_path / "runs" / "ddp" / "seeds" / "0" / "history.parquet")
    assert len(history) == params["cluster_contrast"]["loop"]["epochs"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    found = mlflow.search_runs(search_all_experiments=True)
    assert len(found) == 1 and (found["status"] == "FINISHED").all()
    assert not list((tmp_path / ".cache" / "checkpoints").glob("*.pt"))


def test_shared_state_goes_to_the_dvc_root_as_under_a_queued_experiment(smoke, pretrained, tmp_path, monkeypatch):
    """`dvc exp run --queue`/`--temp` run a stage in a temporary copy with DVC_ROOT naming the repository: the
    MLflow store and the resume checkpoint go there, not into the copy that is deleted afterwards."""
    from reid_repro.training.run import execute

    params, _ = smoke
    (tmp_path / "repo").mkdir()
    (tmp_path / "copy").mkdir()
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path / "copy")
    m = execute(params, "queued", _spec(), tmp_path / "copy" / "out", "train@queued", models_dir=pretrained,
                stop_after=1)
    assert m == {"stopped_after_epoch": 1}
    assert (tmp_path / "repo" / ".cache" / "checkpoints" / "queued.pt").is_file()
    assert (tmp_path / "repo" / "mlflow.db").is_file()
    assert not (tmp_path / "copy" / ".cache").exists() and not (tmp_path / "copy" / "mlflow.db").exists()


# ---- non-finite numbers stop the run, by name, and nothing is published ------------------------------------------

def _every_method():
    from reid_repro.methods import method_names

    return method_names()


def _tiny_run(smoke, pretrained, method: str, tmp_path: Path, seeds: int = 1):
    """(params, spec, models folder) for a two-epoch, one-iteration run of ``method`` on the smoke world, from
    the start it needs: the pretrained start, or a source folder as the source stage writes it (MMT's second
    network in artifacts.pt); GCL+ without its warm-up (augmented positives, image mixup)."""
    import copy

    from reid_repro.methods import base_section
    from reid_repro.models import save_state

    params, _ = smoke
    params = copy.deepcopy(params)
    params["seeds"] = seeds
    loop_settings = dict(epochs=2, iters=1, batch_ids=3, instances=2, warmup_epochs=1, lr_step=2, k1=4, k2=2,
                         eps=0.6, min_samples=2, workers=0, labels="ground_truth")
    for section in {*[m for m in _every_method() if "loop" in params.get(m, {})], "pretrain"}:
        params[section]["loop"].update(loop_settings)
    params["gcl_plus"]["loop"].update(batch_ids=6, instances=1)       # GCL+ draws distinct images
    models = tmp_path / "models"
    (models / "source_market").mkdir(parents=True)
    weights = torch.load(pretrained / "pretrain" / "model.pt", weights_only=True)
    save_state(weights, models / "source_market" / "model.pt")
    save_state({"model_2": weights}, models / "source_market" / "artifacts.pt")
    (models / "pretrain").symlink_to(pretrained / "pretrain")
    base = base_section(method) or method
    overrides = {"gcl_plus": {"positive_view": "augmented", "mixup": "image"}}.get(method, {})   # no warm-up
    init = "source_market" if base in ("mmt", "ssg") else "pretrain"
    if method == "supervised":          # the pretrain and source stages' method: from scratch, its own section
        init = "scratch"
    return params, _spec(method, base=base, init=init, overrides=overrides), models


def _execute(params, name, spec, out, models, tmp_path, **kw):
    from reid_repro.training.run import execute

    section = {"section": "pretrain"} if spec.method == "supervised" else {}
    return execute(params, name, spec, out, f"train@{name}", root=tmp_path, models_dir=models, track=False,
                   **section, **kw)


@pytest.mark.parametrize("method", _every_method())
def test_every_method_moves_only_its_own_parameters_and_resumes_exactly(smoke, pretrained, method, tmp_path,
                                                                       monkeypatch):
    """For every registered method: each optimiser step changes only parameters that optimiser holds, every
    optimiser moves some, the losses are finite (the loop checks each one), and a run killed after epoch 1 and
    started again ends with the uninterrupted run's weights, metrics and history, bit for bit."""
    import types

    import reid_repro.training.run as run

    params, spec, models = _tiny_run(smoke, pretrained, method, tmp_path)
    moved: dict[str, set] = {}
    fit = run.fit

    def checked_fit(method_obj, *args, **kw):
        real = method_obj.optimizers

        def optimizers():
            opts = real()
            tracked = {id(p): p for net in method_obj.networks() for p in net.parameters()}
            tracked |= {id(p): p for o, _ in opts.values() for g in o.param_groups for p in g["params"]}
            for name, (opt, _) in opts.items():
                own = {id(p) for g in opt.param_groups for p in g["params"]}

                def step(_opt, *a, _step=opt.step, _own=own, _name=name, **k):
                    before = {i: p.detach().clone() for i, p in tracked.items()}
                    out = _step(*a, **k)
                    changed = {i for i, p in tracked.items() if not torch.equal(p.detach(), before[i])}
                    assert changed <= _own, f"{method}: optimiser {_name} changed {len(changed - _own)} others"
                    moved.setdefault(_name, set()).update(changed)
                    return out
                opt.step = types.MethodType(step, opt)      # bound, as the lr scheduler expects
            return opts
        method_obj.optimizers = optimizers
        return fit(method_obj, *args, **kw)

    monkeypatch.setattr(run, "fit", checked_fit)
    whole = _execute(params, "whole", spec, tmp_path / "whole", models, tmp_path)
    assert moved and all(moved.values()), {k: len(v) for k, v in moved.items()}
    killed = _execute(params, "killed", spec, tmp_path / "killed", models, tmp_path, stop_after=1)
    assert killed == {"stopped_after_epoch": 1}
    resumed = _execute(params, "killed", spec, tmp_path / "killed", models, tmp_path)
    for k in ("mAP", "rank1", "mINP"):
        assert resumed[k] == whole[k], k
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), method
    pd.testing.assert_frame_equal(_history(tmp_path / "whole"), _history(tmp_path / "killed"))


@pytest.mark.parametrize("method", _every_method())
def test_a_nan_in_one_batch_stops_every_method_by_name_and_publishes_nothing(smoke, pretrained, method, tmp_path,
                                                                            monkeypatch):
    """The first batch of the second epoch is poisoned with NaN (the loop's on-device batch finish), for every
    registered method: in seed 0 of a one-seed run, and for Cluster-Contrast in seed 1 of a two-seed run (seed 0
    finishes first; the supervised stage is one run). The run stops at that step with an error naming the run,
    seed, epoch, step, tensor, device, precision and CPU kernel set; the output folder keeps what it held (here an
    older metrics.json), a finished seed is not published, the staging folder is gone, the failing seed's MLflow
    run is FAILED and its checkpoint of the epoch before the fault is kept."""
    from mlflow.tracking import MlflowClient

    import reid_repro.training.loop as loop
    from reid_repro.methods import method_class
    from reid_repro.training.finite import NonFiniteError
    from reid_repro.training.run import execute, execute_seeds
    from reid_repro.training.tracking import default_tracking_uri

    bad_seed = 1 if method == "cluster_contrast" else 0
    params, spec, models = _tiny_run(smoke, pretrained, method, tmp_path, seeds=bad_seed + 1)
    poisoned = {"seed": None, "epoch": None}
    seed_everything = loop.seed_everything

    def tracking_seed(seed, epoch, *more):
        poisoned.update(seed=seed, epoch=epoch)
        return seed_everything(seed, epoch, *more)

    class PoisonedFinish(loop.BatchFinish):
        def __call__(self, x):
            out = super().__call__(x)
            return out * float("nan") if (poisoned["seed"], poisoned["epoch"]) == (bad_seed, 1) else out

    monkeypatch.setattr(loop, "seed_everything", tracking_seed)
    monkeypatch.setattr(loop, "BatchFinish", PoisonedFinish)

    name = f"nan_{method}"
    out = tmp_path / "runs" / name
    out.mkdir(parents=True)
    (out / "metrics.json").write_text('{"old": true}')
    with pytest.raises(NonFiniteError) as caught:
        if method == "supervised":      # the pretrain and source stages' method: one run, no seeds
            poisoned_spec = replace(spec, init="scratch", overrides={"seed": bad_seed})
            execute(params, name, poisoned_spec, out, f"pretrain@{name}", root=tmp_path, models_dir=models,
                    section="pretrain")
        else:
            execute_seeds(params, name, spec, out, f"train@{name}", root=tmp_path, models_dir=models)
    text = str(caught.value)
    run_name = name if method == "supervised" else f"{name}-seed{bad_seed}"
    for part in (f"run {run_name} ", f"seed {bad_seed}", "epoch 2, step 0", "on cpu in fp32", "CPU kernel set",
                 "NaN"):
        assert part in text, (part, text)
    assert caught.value.tensor.startswith(("loss", "gradient")), text
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    assert json.loads((out / "metrics.json").read_text()) == {"old": True}
    assert not (tmp_path / ".cache" / "partial" / name).exists()
    checkpoint = torch.load(tmp_path / ".cache" / "checkpoints" / f"{run_name}.pt", weights_only=False)
    assert checkpoint["epoch"] == 1
    client = MlflowClient(default_tracking_uri(tmp_path))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              f"attributes.run_name = '{run_name}'")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert method_class(method)       # every registered method is a plug-in


def test_a_non_finite_feature_memory_row_or_gradient_is_named():
    """The checks on their own: a NaN feature row, an infinite memory row of a parameter-free memory module, an
    infinite gradient (named by its parameter) each raise naming the tensor; finite values pass."""
    from torch import nn

    from reid_repro.training.finite import (NonFiniteError, check_array, check_gradients, check_state,
                                            parameter_names)

    feats = np.ones((4, 3), dtype=np.float32)
    check_array("features", feats, 1)
    feats[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"non-finite features at epoch 1, before its steps: 1 NaN and 0 "
                                             r"infinite of 12 values \(shape \(4, 3\)\)"):
        check_array("features", feats, 1)

    class Memory(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("features", torch.zeros(3, 2))

    class Toy:
        def __init__(self):
            self.model = nn.Linear(2, 2)
            self.memory = Memory()
            self.centroids = torch.zeros(2, 2)

        def networks(self):
            return [self.model]

    toy = Toy()
    check_state(toy, 1, 0)
    toy.memory.features[1, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"Toy\.memory\.features at epoch 1, step 0: 0 NaN and 1 infinite"):
        check_state(toy, 1, 0)
    toy.memory.features.zero_()
    toy.centroids[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"Toy\.centroids at epoch 3, step 5"):
        check_state(toy, 3, 5)
    opt = torch.optim.SGD(toy.model.parameters(), lr=0.1)
    toy.model.weight.grad = torch.zeros(2, 2)
    toy.model.bias.grad = torch.tensor([0.0, float("inf")])
    with pytest.raises(NonFiniteError, match=r"gradient of network 0: bias \(optimiser 'model'\) at epoch 2, "
                                             r"step 7: 0 NaN and 1 infinite of 2"):
        check_gradients({"model": opt}, ["model"], 2, 7, parameter_names(toy))
    toy.model.bias.grad = torch.zeros(2)
    check_gradients({"model": opt}, ["model"], 2, 7, parameter_names(toy))
