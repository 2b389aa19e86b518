"""Video re-ID (issue 42): the MARS and DukeMTMC-VideoReID readers on hand-built folders, the video protocol
against hand-worked answers and against the image protocol, and the tracklet stand-ins in the real layouts."""

import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from reid_repro.config import load_world
from reid_repro.config.video import load_video
from reid_repro.data.manifest import build_manifest, prepare
from reid_repro.errors import ReidReproError
from reid_repro.evaluation import features_to_metrics
from reid_repro.evaluation.video import pool_tracklets, score_tracklets

from conftest import ROOT


@pytest.fixture(scope="module")
def jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (8, 16), (40, 160, 90)).save(buf, format="JPEG")
    return buf.getvalue()


# (pid, camera 1-based, frames) per tracklet, in MARS's order (by identity folder, then camera)
MARS_TRAIN = [(1, 1, 3), (1, 2, 2), (2, 3, 4)]
MARS_TEST = [(-1, 2, 2), (0, 4, 1), (5, 1, 2), (5, 3, 3), (6, 2, 1), (6, 5, 2)]
MARS_QUERIES = [3, 5]          # 1-based rows of the test tracks: pid 5 camera 1, pid 6 camera 2


def write_mars(root, jpeg, train=MARS_TRAIN, test=MARS_TEST, queries=MARS_QUERIES):
    (root / "info").mkdir(parents=True)
    for part, folder, tracks_in in (("train", "bbox_train", train), ("test", "bbox_test", test)):
        names, rows, seen = [], [], {}
        for pid, cam, n in tracks_in:
            tag = "00-1" if pid < 0 else f"{pid:04d}"
            seen[(pid, cam)] = seen.get((pid, cam), 0) + 1
            (root / folder / tag).mkdir(parents=True, exist_ok=True)
            start = len(names) + 1
            for f in range(1, n + 1):
                name = f"{tag}C{cam}T{seen[(pid, cam)]:04d}F{f:03d}.jpg"
                (root / folder / tag / name).write_bytes(jpeg)
                names.append(name)
            rows.append([start, len(names), pid, cam])
        (root / "info" / f"{part}_name.txt").write_text("\r\n".join(names) + "\r\n")   # info_mars.m's line ends
        savemat(root / "info" / f"tracks_{part}_info.mat", {f"track_{part}_info": np.array(rows, float)})
    savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([queries], float)})
    return root


def test_mars_reader_lists_tracklets_with_the_official_gallery(tmp_path, jpeg):
    table = write_mars(tmp_path / "MARS", jpeg)
    frame, info = build_manifest("mars", table)
    train = frame[frame["split"] == "train"]
    assert train.groupby("tracklet").size().tolist() == [3, 2, 4]
    assert sorted(set(zip(train["pid"], train["camid"]))) == [(1, 0), (1, 1), (2, 2)]
    # junk (pid -1) dropped; the gallery is every other test tracklet, the two queries included
    gallery = frame[frame["split"] == "gallery"]
    assert -1 not in set(gallery["pid"])
    assert gallery.groupby("tracklet").size().tolist() == [1, 2, 3, 1, 2]
    query = frame[frame["split"] == "query"]
    assert sorted(set(zip(query["pid"], query["camid"]))) == [(5, 0), (6, 1)]
    assert set(query["tracklet"]) <= set(gallery["tracklet"])
    assert query.sort_values("path")["path"].tolist() == sorted(
        ["bbox_test/0005/0005C1T0001F001.jpg", "bbox_test/0005/0005C1T0001F002.jpg",
         "bbox_test/0006/0006C2T0001F001.jpg"])
    assert info["splits"]["query"] == {"images": 3, "identities": 2, "cameras": 2, "tracklets": 2}
    assert info["splits"]["gallery"]["tracklets"] == 5
    assert frame.loc[frame["path"].str.endswith("F002.jpg"), "frame"].eq(2).all()


MARS_DAMAGE = [
    (lambda r: (r / "info" / "query_IDX.mat").unlink(), "query_IDX.mat: missing"),
    (lambda r: (r / "info" / "tracks_test_info.mat").unlink(), "tracks_test_info.mat: missing"),
    (lambda r: (r / "bbox_test" / "0005" / "0005C3T0001F002.jpg").unlink(), "0005C3T0001F002.jpg: missing"),
    (lambda r: savemat(r / "info" / "query_IDX.mat", {"query_IDX": np.array([[1]], float)}), "junk or distractor"),
    (lambda r: savemat(r / "info" / "query_IDX.mat", {"query_IDX": np.array([[9]], float)}), "expected a 1-based row"),
    (lambda r: savemat(r / "info" / "tracks_train_info.mat", {"track_train_info": np.array([[1, 99, 1, 1]], float)}),
     "lines 1-99"),
    (lambda r: savemat(r / "info" / "tracks_train_info.mat", {"tracks": np.array([[1, 2, 1, 1]], float)}),
     "no variable 'track_train_info'"),
    (lambda r: (r / "info" / "tracks_train_info.mat").write_bytes(b"not a mat file"), "cannot be read as a MATLAB"),
]


def test_mars_layout_root_may_be_one_folder_down_and_wrong_layout_is_named(tmp_path, jpeg):
    write_mars(tmp_path / "outer" / "MARS-v160809", jpeg)
    frame, _ = build_manifest("mars", tmp_path / "outer")
    assert frame["path"].str.startswith("MARS-v160809/bbox_").all()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReidReproError, match="wrong layout; expected a MARS dataset with bbox_train"):
        build_manifest("mars", tmp_path / "empty")


# split -> [(pid, tracklet folder, camera, frame numbers)]
DUKE_VIDEO = {"train": [(1, 1, 2, [1, 2, 3]), (1, 2, 5, [2, 3])],
              "query": [(7, 1, 1, [1, 2])],
              "gallery": [(7, 2, 3, [1]), (7, 3, 1, [1, 2]), (0, 1, 4, [1, 2, 3])]}


def write_duke_video(root, jpeg, layout=DUKE_VIDEO):
    for split, tracks in layout.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for pid, tracklet, cam, frames in tracks:
            where = root / split / f"{pid:04d}" / f"{tracklet:04d}"
            where.mkdir(parents=True)
            for f in frames:
                (where / f"{pid:04d}_C{cam}_F{f:04d}_X{1000 + f:05d}.jpg").write_bytes(jpeg)
    return root


def test_duke_video_reader_reads_the_folders(tmp_path, jpeg):
    root = write_duke_video(tmp_path / "DukeMTMC-VideoReID", jpeg)
    (root / "train" / "0001" / "0002" / "0001C5F0004X01004.jpg").write_bytes(jpeg)   # the older name format
    frame, info = build_manifest("dukemtmc-videoreid", root)
    per = frame.groupby(["split", "tracklet"]).agg(pid=("pid", "first"), cam=("camid", "first"), n=("pid", "size"))
    assert per.loc["train"].values.tolist() == [[1, 1, 3], [1, 4, 3]]
    assert per.loc["query"].values.tolist() == [[7, 0, 2]]
    assert per.loc["gallery"].values.tolist() == [[0, 3, 3], [7, 2, 1], [7, 0, 2]]
    assert frame["tracklet"].nunique() == 6                  # unique across splits
    assert sorted(frame.loc[frame["split"] == "train", "frame"]) == [1, 2, 2, 3, 3, 4]
    assert info["splits"]["gallery"] == {"images": 6, "identities": 2, "cameras": 3, "tracklets": 3}


DUKE_VIDEO_DAMAGE = [
    (lambda r: [p.unlink() for p in (r / "gallery" / "0007" / "0002").iterdir()], "a tracklet without frames"),
    (lambda r: __import__("shutil").rmtree(r / "gallery" / "0007"), "identity 7 has a query tracklet but none"),
    (lambda r: (r / "train" / "0001" / "0001" / "0001_C3_F0009_X00009.jpg").write_bytes(b"x"), "cameras \\[2, 3\\]"),
    (lambda r: (r / "train" / "0001" / "0001" / "0002_C2_F0009_X00009.jpg").write_bytes(b"x"), "pid 2 in a folder"),
    (lambda r: (r / "train" / "0001" / "0001" / "frame9.jpg").write_bytes(b"x"), "does not parse"),
    (lambda r: (r / "train" / "0001" / "0001" / "0001_C2_F0001_X01001.jpg").write_bytes(b"\xff\xd8 truncated"),
     "does not decode"),
]


@pytest.mark.parametrize("layout,damage,message", [("mars", d, m) for d, m in MARS_DAMAGE]
                         + [("dukemtmc-videoreid", d, m) for d, m in DUKE_VIDEO_DAMAGE])
def test_bad_input_names_what_is_wrong(tmp_path, jpeg, layout, damage, message):
    write = {"mars": write_mars, "dukemtmc-videoreid": write_duke_video}[layout]
    root = write(tmp_path / "dataset", jpeg)
    damage(root)
    with pytest.raises(ReidReproError, match=message):
        build_manifest(layout, root)


def test_a_corrupt_mars_frame_stops_prepare_and_writes_nothing(tmp_path, jpeg):
    root = write_mars(tmp_path / "MARS", jpeg)
    (root / "bbox_train" / "0002" / "0002C3T0001F004.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(ReidReproError, match="0002C3T0001F004.jpg: image does not decode"):
        prepare("mars", root, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.parquet").exists()


def _frames(rows):
    """rows: (split, tracklet, pid, camid, [frame feature, ...]) -> frame table and features."""
    table, feats = [], []
    for split, tracklet, pid, cam, frames in rows:
        for f in frames:
            table.append({"split": split, "tracklet": tracklet, "pid": pid, "camid": cam})
            feats.append(f)
    return pd.DataFrame(table), np.array(feats, np.float32)


def test_video_protocol_against_a_hand_worked_ranking():
    # query (pid 1, camera 0): frames (3, 0) and (0, 1) -> normalised, averaged: (1, 1)/sqrt 2. Averaging the raw
    # frames instead, (1.5, 0.5), would put g1 first and give AP 0.75.
    table, feats = _frames([
        ("query", 10, 1, 0, [(3, 0), (0, 1)]),
        ("gallery", 10, 1, 0, [(3, 0), (0, 1)]),            # the query itself (MARS): same camera, ignored
        ("gallery", 11, 1, 1, [(2, 0), (1, 0)]),            # positive, cosine 0.707
        ("gallery", 12, 2, 1, [(0.6, 0.8)]),                # negative, cosine 0.990
        ("gallery", 13, 0, 2, [(0.28, 0.96), (0.28, 0.96)]),  # distractor (pid 0): negative, cosine 0.877
        ("gallery", 14, 1, 2, [(-1, 0), (0, -1)]),          # positive, cosine -1
    ])
    result = score_tracklets(table, feats)
    # ranking g12 (neg), g13 (neg), g11 (pos), g14 (pos): AP = (1/3 + 2/4) / 2; first hit at rank 3; INP 2/4
    assert result["mAP"] == pytest.approx((1 / 3 + 2 / 4) / 2, abs=1e-6)
    assert result["cmc"][:4].tolist() == [0, 0, 1, 1]
    assert result["mINP"] == pytest.approx(0.5, abs=1e-6)
    assert (result["num_query_tracklets"], result["num_gallery_tracklets"]) == (1, 5)


def test_one_frame_tracklets_score_as_images():
    rng = np.random.default_rng(3)
    n_q, n_g = 12, 40
    feats = rng.normal(size=(n_q + n_g, 16)).astype(np.float32)
    pids = np.concatenate([rng.integers(1, 6, n_q), rng.integers(0, 6, n_g)])
    cams = rng.integers(0, 4, n_q + n_g)
    table = pd.DataFrame({"split": ["query"] * n_q + ["gallery"] * n_g, "tracklet": np.arange(n_q + n_g),
                          "pid": pids, "camid": cams})
    video = score_tracklets(table, feats)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    image = features_to_metrics(unit[:n_q], unit[n_q:], pids[:n_q], pids[n_q:], cams[:n_q], cams[n_q:])
    assert video["mAP"] == pytest.approx(image["mAP"], abs=1e-6)
    np.testing.assert_allclose(video["cmc"], image["cmc"], atol=1e-6)
    assert video["num_valid_queries"] == image["num_valid_queries"]


def test_pooling_refuses_a_tracklet_of_two_people():
    table, feats = _frames([("gallery", 1, 1, 0, [(1, 0)]), ("gallery", 1, 2, 0, [(0, 1)])])
    with pytest.raises(ReidReproError, match="tracklet 1 \\(gallery\\) holds frames of 2 identities"):
        pool_tracklets(table, feats)


def test_the_mars_info_files_hold_no_time_of_writing(tmp_path, monkeypatch):
    """scipy writes the time of writing into a MAT file's header; the stand-in's .mat files must not differ
    between two writes of the same arrays, or every rebuild of the video world would change its bytes."""
    import time

    from scipy.io import loadmat

    from reid_repro.world import video

    tracks = np.array([[1, 3, 0, 1], [4, 9, 1, 2]], dtype=np.float64)
    written = []
    for clock in ("Mon Dec  7 11:06:10 2026", "Tue Dec  8 17:54:45 2026"):
        monkeypatch.setattr(time, "asctime", lambda *a, clock=clock: clock)
        path = tmp_path / f"{len(written)}.mat"
        video.savemat(path, {"track_test_info": tracks})
        written.append(path.read_bytes())
    assert written[0] == written[1]
    assert written[0].startswith(b"MATLAB 5.0 MAT-file") and b"2026" not in written[0][:116]
    np.testing.assert_array_equal(loadmat(tmp_path / "0.mat")["track_test_info"], tracks)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory, body, renderer):
    from reid_repro.world.video import generate_video

    world, video = load_world(ROOT / "params.yaml"), load_video(ROOT / "params.yaml")
    video = replace(video, profile="smoke")
    out = tmp_path_factory.mktemp("video")
    return out, video, generate_video(world, video, out, body, renderer)


def test_the_stand_ins_are_written_in_the_real_layouts_and_read_back(stand_ins):
    out, video, summary = stand_ins
    assert json.loads((out / "video.json").read_text()) == json.loads(json.dumps(summary))
    for name, dom in video.domains.items():
        frame, info = build_manifest(dom.layout, out / name)
        truth = pd.read_parquet(out / name / "ground_truth.parquet")
        people = truth[truth["pid"] >= 0]
        # every frame the truth lists is read with its identity and camera, in one tracklet per truth tracklet
        merged = frame.merge(truth[["path", "pid", "camid", "tracklet", "frame"]], on="path", suffixes=("", "_truth"))
        assert len(merged) == len(frame) and set(merged["path"]) | set(truth.loc[truth["pid"] < 0, "path"]) \
            == set(truth["path"])
        assert (merged["pid"] == merged["pid_truth"]).all() and (merged["camid"] == merged["camid_truth"]).all()
        assert (merged["frame"] == merged["frame_truth"]).all()
        assert merged.groupby("tracklet")["tracklet_truth"].nunique().eq(1).all()
        lo, hi = video.frame_range(name)
        sizes = people.groupby("tracklet").size()
        assert sizes.between(lo, hi).all()
        # a tracklet is one walk: one yaw, one camera, the walk phase advancing by phase_step
        walk = people.sort_values(["tracklet", "frame"]).groupby("tracklet")
        assert walk["yaw"].nunique().eq(1).all() and walk["camid"].nunique().eq(1).all()
        steps = walk["phase"].diff().dropna()
        np.testing.assert_allclose(steps, dom.phase_step, atol=1e-9)
        # queries: at most queries_per_id per identity, one per camera, each with a cross-camera match
        q = frame[frame["split"] == "query"].drop_duplicates("tracklet")
        g = frame[frame["split"] == "gallery"].drop_duplicates("tracklet")
        assert q.groupby("pid").size().max() <= dom.queries_per_id
        assert not q.duplicated(["pid", "camid"]).any()
        for pid, cam in zip(q["pid"], q["camid"]):
            assert ((g["pid"] == pid) & (g["camid"] != cam)).any()
        assert info["splits"]["train"]["identities"] == video.sizes.train_ids
    mars = pd.read_parquet(out / "mars" / "ground_truth.parquet")
    assert (mars["pid"] == -1).any() and (mars["pid"] == 0).any()       # junk and distractor tracklets



def test_every_data_format_has_a_reader():
    from reid_repro.config import DATA_FORMATS
    from reid_repro.data.manifest import READERS

    assert set(DATA_FORMATS) == set(READERS) | {"imagenet"}


def _clustering_method(tracklets, **loop):
    """The base plug-in (methods/base.py) with DBSCAN settings for a handful of points, on a video run's context."""
    import dataclasses

    from reid_repro.config import LoopConfig
    from reid_repro.methods.base import Method, RunContext

    fields = {f.name: 1 for f in dataclasses.fields(LoopConfig)}
    cfg = LoopConfig(**{**fields, "batch_ids": 2, "lr": 1e-4, "weight_decay": 0.0, "lr_gamma": 0.1, "eps": 0.5,
                        "k1": 2, "k2": 1,
                        "labels": "pseudo", "cross_camera": False, "workers": 0, **loop})
    return Method(cfg, torch.nn.Identity(), torch.device("cpu"), RunContext(tracklets=tracklets))


def test_a_video_run_clusters_tracklets_and_labels_their_frames():
    # 3 tracklets of 5, 1 and 3 frames, interleaved in table order
    tracklets = np.array([0, 1, 0, 2, 0, 2, 0, 2, 0])
    feats = np.zeros((9, 2), np.float32)
    feats[tracklets == 0] = [4, 0]
    feats[tracklets == 1] = [0, 2]
    feats[tracklets == 2] = [[1, 0], [0, 3], [1, 0]]        # normalised: (1,0), (0,1), (1,0) -> mean (2/3, 1/3)
    method = _clustering_method(tracklets)
    np.testing.assert_allclose(method.units(feats), [[1, 0], [0, 1], [2 / 5 ** 0.5, 1 / 5 ** 0.5]], atol=1e-6)
    assert method.per_image(np.array([5, 6, 7])).tolist() == [5, 6, 5, 7, 5, 7, 5, 7, 5]
    # DBSCAN (min_samples 1) on the three tracklets: whatever it finds, a tracklet's frames share one label
    labels = method.pseudo_labels(0, feats, np.ones(9, int))
    assert all(len(set(labels[tracklets == t])) == 1 for t in range(3))
    image_run = _clustering_method(None)
    assert image_run.units(feats) is feats and image_run.per_image(labels) is labels


def test_the_loop_trains_k_frames_of_each_tracklet():
    from reid_repro.training.loop import TrainData, tracklet_frames

    tracklets = np.array([0, 1, 0, 2, 0, 2, 0, 2, 0])
    pids = np.array([7, 7, 7, 9, 7, 9, 7, 9, 7])
    cams = np.array([0, 1, 0, 2, 0, 2, 0, 2, 0])
    labels = np.array([0, 0, 0, 1, 0, 1, 0, 1, 0])
    data = TrainData(cache=None, pids=pids, cams=cams, tracklets=tracklets, frames=2)
    kept_labels, scores = tracklet_frames(labels, data, seed=0, epoch=3)
    kept = kept_labels >= 0
    # each tracklet keeps min(2, its length) frames with their labels; the rest sit out this epoch (-1)
    assert np.bincount(tracklets[kept]).tolist() == [2, 1, 2]
    assert (kept_labels[kept] == labels[kept]).all()
    # the clustering is scored on tracklets: 3 of them, 2 identities, labelled perfectly
    assert scores["tracklets"] == 3 and scores["frames_trained"] == 5 and scores["nmi"] == pytest.approx(1.0)
    assert (tracklet_frames(labels, data, seed=0, epoch=3)[0] == kept_labels).all()        # seeded
    draws = {tuple(tracklet_frames(labels, data, seed=0, epoch=e)[0] >= 0) for e in range(8)}
    assert len(draws) > 1                                                                 # a new draw each epoch


def test_stored_video_features_are_scored_by_tracklet(tmp_path):
    from reid_repro.evaluation.stored import read_features, score_features, write_features

    rng = np.random.default_rng(5)
    table = pd.DataFrame({"path": [f"f{i}.jpg" for i in range(30)], "split": ["query"] * 6 + ["gallery"] * 24,
                          "pid": rng.integers(1, 4, 30), "camid": rng.integers(0, 3, 30),
                          "tracklet": np.repeat(np.arange(10), 3)})
    table.loc[table["tracklet"] < 2, "split"] = "query"
    table["pid"] = table.groupby("tracklet")["pid"].transform("first")
    table["camid"] = table.groupby("tracklet")["camid"].transform("first")
    feats = rng.normal(size=(30, 8)).astype(np.float32)
    path = write_features(tmp_path / "0.parquet", table, feats)
    back, _ = read_features(path)
    assert back["tracklet"].tolist() == table["tracklet"].tolist()
    stored = score_features(path)
    direct = score_tracklets(table, feats.astype(np.float16).astype(np.float32))
    assert stored["mAP"] == pytest.approx(direct["mAP"], abs=1e-6)
    assert stored["rank1"] == pytest.approx(float(direct["cmc"][0]), abs=1e-6)
