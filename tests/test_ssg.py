"""SSG (methods/ssg.py) and CANU-SSG (methods/canu_ssg.py) against hand computations: the semi-hard triplet of the
SSG code, the part features, the three groupings and their outlier rule, the discriminators' inputs and the
signs of the min-max, one batch of the loop's updates, and a run on the smoke world that is killed and resumed."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from reid_repro.assemble import validate_params
from reid_repro.config import RunSpec, load_method_config, load_params
from reid_repro.errors import ReidReproError
from reid_repro.methods import base_section, method_class
from reid_repro.methods.adversary import camera_loss
from reid_repro.methods.base import RunContext, Step
from reid_repro.methods.ssg import PartEncoder, keep_in_all, semi_hard_triplet, split_parts
from reid_repro.models import ReidNet
from reid_repro.training.loop import run_steps

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")
CAMS = torch.tensor([0, 1, 0, 1, 2, 0, 1, 2])


def _cfg(name, **overrides):
    return load_method_config(PARAMS, name, method_class(name).config, overrides, base=base_section(name))


def _method(name="ssg", **overrides):
    """A method on ReidNet-18 with 16 training images in 4 clusters of 4 (every part) and 3 cameras, and an
    8-image batch of 2 blocks of 4 (the sampler's layout, instances 4)."""
    torch.manual_seed(0)
    model = ReidNet("resnet18").train()
    context = RunContext(train_table=pd.DataFrame({"pid": np.arange(16) // 4, "camid": np.arange(16) % 3}))
    method = method_class(name)(_cfg(name, **{"eps_rule": "fixed", **overrides}), model, torch.device("cpu"),
                                context)
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(16, 3 * model.dim, generator=g), dim=1).numpy()
    labels = np.repeat(np.arange(4), 4)
    method._part_labels = np.stack([labels, labels, labels], 1)
    method.on_epoch_start(0, feats, labels, np.arange(16) % 3)
    index = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    images = torch.randn(8, 3, 64, 32, generator=g)
    batch = {"images": images, "views": [images], "labels": torch.as_tensor(labels)[index], "cams": CAMS,
             "index": index}
    return method, batch, feats


@pytest.mark.parametrize("name, override, key", [("ssg", {"margin": -1.0}, "margin"),
                                                 ("ssg", {"optimizer": "rmsprop"}, "optimizer"),
                                                 ("ssg", {"eps_rule": "knee"}, "eps_rule"),
                                                 ("ssg", {"test_feature": "both"}, "test_feature"),
                                                 ("ssg", {"fidelity": "mixed"}, "fidelity"),
                                                 ("canu_ssg", {"adversary": "gan"}, "adversary"),
                                                 ("canu_ssg", {"mu": 0.0}, "mu")])
def test_settings_are_checked_and_errors_name_the_key(name, override, key):
    validate_params(PARAMS)                          # the committed ssg and canu_ssg sections, at both scales
    with pytest.raises(ReidReproError, match=key):
        _cfg(name, **override)


# ---- the loss ---------------------------------------------------------------------------------------------------

def _code_triplet(f, labels, K, margin):
    """The SSG code's TripletLoss(use_semi=True), written as its loops."""
    f, labels = np.asarray(f, dtype=np.float64), np.asarray(labels)
    n = len(f)
    dist = np.sqrt(np.maximum(((f[:, None] - f[None]) ** 2).sum(-1), 1e-12))
    losses = []
    for i in range(n // K):
        for j in range(K):
            a = i * K + j
            d_an = dist[a][labels != labels[a]].min()
            for pair in range(j + 1, K):
                losses.append(max(0.0, dist[a, i * K + pair] - d_an + margin))
    return float(np.mean(losses))


def test_semi_hard_triplet_is_the_codes_loop():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(12, 5, generator=g)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    assert semi_hard_triplet(f, labels, 4, 0.5).item() == pytest.approx(_code_triplet(f, labels, 4, 0.5), rel=1e-5)
    # a part's labels may split a block (the U/L terms): positives stay the block's pairs, negatives follow labels
    parts = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4])
    assert semi_hard_triplet(f, parts, 4, 0.3).item() == pytest.approx(_code_triplet(f, parts, 4, 0.3), rel=1e-5)
    with pytest.raises(ReidReproError, match="not whole blocks"):
        semi_hard_triplet(f[:10], labels[:10], 4, 0.5)


# ---- the features and the groupings -----------------------------------------------------------------------------

def test_stripe_features_pool_the_whole_map_and_its_halves():
    torch.manual_seed(0)
    net = ReidNet("resnet18").eval()
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        parts = net.stripe_features(x)
        fmap = net.body(x)                                                          # 3 x 512 x 4 x 2
    assert parts.shape == (3, 3, 512)
    torch.testing.assert_close(parts[:, 0], net.features(x)[0])                     # the model's pooled feature
    torch.testing.assert_close(parts[:, 1], fmap[:, :, :2].mean((2, 3)))            # upper half
    torch.testing.assert_close(parts[:, 2], fmap[:, :, 2:].mean((2, 3)))            # lower half


def test_stripe_features_use_ghost_batch_norm_like_features():
    torch.manual_seed(0)
    net = ReidNet("resnet18", bn_groups=2).train()
    x = torch.randn(8, 3, 64, 32)
    whole = net.stripe_features(x)
    net.bn_groups = 1
    torch.testing.assert_close(whole, torch.cat([net.stripe_features(x[:4]), net.stripe_features(x[4:])]))


def test_the_part_encoder_flip_sums_and_normalises_each_part():
    torch.manual_seed(0)
    net = ReidNet("resnet18").eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        out = PartEncoder(net)(x).view(2, 3, -1)
        expected = F.normalize(net.stripe_features(x) + net.stripe_features(x.flip(3)), dim=2)
    torch.testing.assert_close(out, expected)
    parts = split_parts(out.flatten(1).numpy() * 7.0)                                # any common scale
    for k in range(3):
        np.testing.assert_allclose(parts[k], expected[:, k].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reading", ["paper", "code"])
def test_the_test_feature_switch_normalises_each_part_or_the_whole(reading):
    """test_feature paper: [n(F), n(U), n(L)] / sqrt 3 after extract_features' renormalisation (CANU §III-B); code:
    n([F, U, L]) of the raw flip-summed parts (SSG's extract_features(for_eval=True)). The clustering parts are the
    same under both."""
    from reid_repro.evaluation.features import l2_normalize

    torch.manual_seed(0)
    net = ReidNet("resnet18").eval()
    x = torch.randn(3, 3, 64, 32)
    method = method_class("ssg")(_cfg("ssg", test_feature=reading), net, torch.device("cpu"))
    with torch.no_grad():
        out = l2_normalize(method.encoder()(x).numpy())            # what extract_features hands the evaluation
        raw = (net.stripe_features(x) + net.stripe_features(x.flip(3))).numpy().astype(np.float64)   # N x 3 x d
    if reading == "paper":
        parts = raw / np.linalg.norm(raw, axis=2, keepdims=True)
        expected = parts.reshape(3, -1) / np.sqrt(3)
    else:
        flat = raw.reshape(3, -1)
        expected = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)
    for k, part in enumerate(split_parts(out)):                     # clustering: each part normalised either way
        np.testing.assert_allclose(part, raw[:, k] / np.linalg.norm(raw[:, k], axis=1, keepdims=True),
                                   rtol=1e-4, atol=1e-6)
    assert _cfg("ssg").follows("test_feature") == "paper"           # the default: the paper's, as issue 12 asks


def test_a_sample_that_is_an_outlier_in_any_grouping_is_dropped_from_all():
    g = np.array([0, 0, 1, 1, 2, 2, -1])
    u = np.array([5, 5, 5, -1, 7, 7, 7])
    l = np.array([1, 1, 3, 3, 3, 3, 3])
    kg, ku, kl = keep_in_all([g, u, l])
    np.testing.assert_array_equal(kg, [0, 0, 1, -1, 2, 2, -1])                       # 3 (U) and 6 (F) dropped
    np.testing.assert_array_equal(ku, [0, 0, 0, -1, 1, 1, -1])
    np.testing.assert_array_equal(kl, [0, 0, 1, -1, 1, 1, -1])


def test_three_groupings_each_with_its_eps_kept_for_a_resume(monkeypatch):
    """Parts built so that the global and upper groupings agree and the lower one leaves one identity out: that
    identity's samples are outliers in the global labels and carry no part label. eps: the quantile rule once per
    grouping at the first epoch (its value here stands in: 20 points are too few for rho), then kept."""
    from reid_repro.methods import ssg

    calls = []
    monkeypatch.setattr(ssg, "eps_by_rule",
                        lambda d, rule, eps, rho: calls.append((rule, rho)) or 0.5 + 0.01 * len(calls))
    method, *_ = _method("ssg", eps_rule="quantile", k1=4, k2=2, min_samples=4)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 3, 8))
    pids = np.repeat(np.arange(5), 4)
    feats = centers[pids] + 0.01 * rng.normal(size=(20, 3, 8))
    feats[pids == 4, 2] = rng.normal(size=(4, 8)) * 10                               # identity 4: lower body noise
    labels = method.pseudo_labels(0, feats.reshape(20, -1), pids)
    assert (labels[pids == 4] == -1).all() and (labels[pids != 4] >= 0).all()
    assert len(set(labels[labels >= 0])) == 4 and method.eps == [0.51, 0.52, 0.53] and len(calls) == 3
    method.on_epoch_start(0, feats.reshape(20, -1), labels, pids % 2)
    part = method.part_labels.numpy()
    assert (part[pids == 4] == -1).all() and (part[pids != 4] >= 0).all()
    np.testing.assert_array_equal(part[:, 0], labels)
    eps = list(method.eps)
    method.pseudo_labels(1, feats.reshape(20, -1), pids)
    assert method.eps == eps and len(calls) == 3                                      # fixed after the first epoch
    resumed, *_ = _method("ssg", eps_rule="quantile")
    resumed.load_state_dict(method.state_dict())
    assert resumed.eps == eps


# ---- CANU-SSG --------------------------------------------------------------------------------------------------

def test_three_discriminators_see_each_part_and_the_global_centroid_with_no_gradient_into_it():
    method, batch, feats = _method("canu_ssg")
    assert method.cfg.adversary == "conditional" and method.cfg.mu == 0.05 and len(method.adversaries.discs) == 3
    table = method.centroids.clone().requires_grad_()
    method.centroids = table
    seen = []
    for d in method.adversaries.discs:
        d.register_forward_hook(lambda m, args, out: seen.append(args))
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    assert set(opts) == {"model", "disc_1", "disc_2", "disc_3"}
    steps = method.training_step(batch)
    run_steps(iter([next(steps)]), opts, defaultdict(float))                         # the discriminators' step
    glob = method.part_labels[batch["index"], 0]
    for f, cond in seen:
        torch.testing.assert_close(cond, table.detach()[glob])                       # Eq. 10: the global centroid
        assert not f.requires_grad and not cond.requires_grad
        np.testing.assert_allclose(f.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    encoder_step = next(steps)
    assert set(encoder_step.losses) >= {"adv_1", "adv_2", "adv_3", "triplet_upper"}
    assert all(f.requires_grad and not c.requires_grad for f, c in seen[3:])
    sum(encoder_step.losses.values()).backward()
    assert table.grad is None
    np.testing.assert_allclose(method.centroids.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("adversary", ["plain", "conditional"])
def test_the_encoders_adversarial_gradient_is_minus_mu_times_the_discriminators(adversary):
    method, batch, _ = _method("canu_ssg", adversary=adversary, mu=0.3)
    adv = method.adversaries
    g = torch.Generator().manual_seed(3)
    feats = [F.normalize(torch.randn(8, 512, generator=g), dim=1).requires_grad_() for _ in range(3)]
    cams = adv.camera_index[CAMS]
    cond = adv.condition(method.centroids, method.part_labels[batch["index"], 0])
    enc = adv.encoder_losses(feats, cams, cond)
    g_enc = torch.autograd.grad(sum(enc.values()), feats)
    for disc, f, ge in zip(adv.discs, feats, g_enc):
        g_disc = torch.autograd.grad(camera_loss(disc, f, cams, cond), f)[0]
        torch.testing.assert_close(ge, -0.3 * g_disc)


def test_canu_ssg_without_an_adversary_is_ssg():
    ssg, batch, _ = _method("ssg")
    canu, *_ = _method("canu_ssg", adversary="none")
    assert set(canu.optimizers()) == {"model"} and not canu.adversaries.discs
    a, b = ssg.training_step(batch), canu.training_step(batch)
    assert isinstance(b, dict) and a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("name, overrides", [("ssg", {}), ("ssg", {"optimizer": "sgd"}),
                                             ("canu_ssg", {"adversary": "plain"}), ("canu_ssg", {})])
def test_one_batch_of_run_steps_moves_each_optimisers_own_parameters(name, overrides):
    method, batch, _ = _method(name, **overrides)
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    snap = []

    def snapshot():
        return {n: [p.detach().clone() for g in opts[n].param_groups for p in g["params"]] for n in opts}

    def observed(result):
        snap.append(snapshot())
        for step in ([Step(result)] if isinstance(result, dict) else result):
            yield step
            snap.append(snapshot())

    sums = defaultdict(float)
    run_steps(observed(method.training_step(batch)), opts, sums)
    assert {"triplet_x2", "triplet_global", "triplet_upper", "triplet_lower"} <= set(sums)
    assert all(np.isfinite(v) for v in sums.values())
    trained = {id(q) for g in opts["model"].param_groups for q in g["params"]}
    assert all(id(p) in trained for p in method.head.parameters())                  # the head trains with the net
    if len(snap) == 3:                                                               # D's step, then the encoder's
        for n in ("disc_1", "disc_2", "disc_3"):
            assert all(not torch.equal(a, b) for a, b in zip(snap[0][n], snap[1][n]))
            assert all(torch.equal(a, b) for a, b in zip(snap[1][n], snap[2][n]))
        assert all(torch.equal(a, b) for a, b in zip(snap[0]["model"], snap[1]["model"]))
        assert any(not torch.equal(a, b) for a, b in zip(snap[1]["model"], snap[2]["model"]))
    else:
        assert any(not torch.equal(a, b) for a, b in zip(snap[0]["model"], snap[1]["model"]))


# ---- on the loop ------------------------------------------------------------------------------------------------

def _smoke_params(world, tmp_path):
    from reid_repro.data.manifest import prepare

    out, _ = world
    prepare("market1501", out / "market", tmp_path / "manifests" / "market")
    params = load_params(ROOT / "params.yaml")
    params["data"] = {"market": {"root": str(out / "market"), "manifest": str(tmp_path / "manifests" / "market"),
                                 "format": "market1501"}}
    params["sources"] = ["market"]              # the one stand-in these runs have
    params["meshes"] = {}
    params["model"]["cpu"].update(height=64, width=32)
    params["ssg"]["loop"].update(epochs=3, iters=2, batch_ids=2, instances=4, k1=4, k2=2, eps=0.6, min_samples=2,
                                 labels="ground_truth")
    return params


def test_canu_ssg_runs_on_the_smoke_world_and_a_killed_run_resumes_exactly(world, tmp_path):
    from reid_repro.training.run import execute

    params = _smoke_params(world, tmp_path)
    spec = RunSpec(method="canu_ssg", base="ssg", dataset="market", test="market", init="scratch", paper="canu",
                   table="I", row="CANU-SGG (ours)", overrides={}, paper_overrides={}, also=[], column="market2duke")
    whole = execute(params, "whole", spec, tmp_path / "whole", "train@whole", root=tmp_path, track=False)
    killed = execute(params, "killed", spec, tmp_path / "killed", "train@killed", root=tmp_path, track=False,
                     stop_after=1)
    assert killed == {"stopped_after_epoch": 1}
    resumed = execute(params, "killed", spec, tmp_path / "killed", "train@killed", root=tmp_path, track=False)
    for k in ("mAP", "rank1", "camera_probe"):
        assert resumed[k] == whole[k], k
    drop = ["seconds", "cluster_seconds"]
    a = pd.read_parquet(tmp_path / "whole" / "history.parquet").drop(columns=drop)
    b = pd.read_parquet(tmp_path / "killed" / "history.parquet").drop(columns=drop)
    pd.testing.assert_frame_equal(a, b)
    assert {"loss_adv_1", "loss_adv_3", "loss_disc_2", "disc_acc_3", "clusters_upper"} <= set(a.columns)
    assert (a["clusters_global"] == a["num_clusters"]).all()
