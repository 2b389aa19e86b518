"""MMT (methods/mmt.py) and CANU (methods/canu.py) against hand computations: the hard and soft losses, the mean
teachers, the classifier reset, the camera discriminators' inputs and the signs of the min-max, and one batch of
the loop's updates."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from reid_repro.assemble import validate_params
from reid_repro.config import load_method_config, load_params
from reid_repro.errors import ReidReproError
from reid_repro.methods import base_section, method_class
from reid_repro.methods.adversary import CameraDiscriminator, camera_loss
from reid_repro.methods.base import RunContext, Step
from reid_repro.methods.canu import DISCS
from reid_repro.methods.mmt import Output, ema_momentum, hard_triplet, soft_ce, soft_triplet
from reid_repro.models import ReidNet
from reid_repro.training.loop import run_steps

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
CAMS = torch.tensor([0, 1, 0, 1, 2, 0, 1, 2])


def _cfg(name, **overrides):
    return load_method_config(PARAMS, name, method_class(name).config, overrides, base=base_section(name))


def _method(name="mmt", init_dir=None, **overrides):
    """A method on ReidNet-18 with 16 training images in 4 clusters of 4 and 3 cameras, and an 8-image batch."""
    torch.manual_seed(0)
    model = ReidNet("resnet18").train()
    context = RunContext(train_table=pd.DataFrame({"pid": np.arange(16) // 4, "camid": np.arange(16) % 3}),
                         init_dir=init_dir)
    method = method_class(name)(_cfg(name, **overrides), model, torch.device("cpu"), context)
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(16, model.dim, generator=g), dim=1).numpy()
    labels = np.repeat(np.arange(4), 4)
    method.on_epoch_start(0, feats, labels, np.arange(16) % 3)
    images = torch.randn(8, 3, 32, 16, generator=g)
    views = [images, images + 0.1 * torch.randn(8, 3, 32, 16, generator=g)]
    batch = {"images": views[0], "views": views, "labels": LABELS, "cams": CAMS, "index": torch.arange(8)}
    return method, batch, feats, labels


def _log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))


def _softmax(x):
    return np.exp(_log_softmax(x))


@pytest.mark.parametrize("override, key", [({"adversary": "gan"}, "canu.adversary"), ({"mu": 0.0}, "canu.mu"),
                                           ({"rho": 2.0}, "mmt.loop.rho"), ({"init_2": "x"}, "mmt.init_2"),
                                           ({"soft_tri_weight": 1.5}, "mmt.soft_tri_weight"),
                                           ({"eps_rule": "knee"}, "mmt.loop.eps_rule")])
def test_settings_are_checked_and_errors_name_the_key(override, key):
    validate_params(PARAMS)                         # the committed mmt and canu sections, at both scales
    with pytest.raises(ReidReproError, match=key.replace(".", r"\.")):
        _cfg("canu", **override)


# ---- the losses ----------------------------------------------------------------------------------------------

# 1-d features: identities {0, 1} at 0 and 1, identities {2, 3} at 3 and 3.5
F_STUDENT = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
Y4 = torch.tensor([0, 0, 1, 1])
# by hand, each anchor's farthest positive and nearest negative and their distances
HARDEST = [(1, 2), (0, 2), (3, 1), (2, 1)]                  # (ap, an)
D_STUDENT = [(1.0, 3.0), (1.0, 2.0), (0.5, 2.0), (0.5, 2.5)]  # (d_ap, d_an)


def test_hard_triplet_is_softplus_of_the_hardest_pair():
    expected = np.mean([np.log1p(np.exp(ap - an)) for ap, an in D_STUDENT])
    assert hard_triplet(F_STUDENT, Y4).item() == pytest.approx(expected, rel=1e-5)


def test_soft_triplet_takes_the_teachers_distances_at_the_students_hardest_pairs():
    # the teacher puts anchor 0's nearest negative at sample 3 (distance 1), but the student's is sample 2:
    # the target uses the teacher's distance to sample 2 (5)
    f_teacher = torch.tensor([[0.0], [2.0], [5.0], [1.0]], requires_grad=True)
    f = F_STUDENT.clone().requires_grad_()
    t = f_teacher.detach().numpy()[:, 0]
    total = 0.0
    for i, ((ap, an), d) in enumerate(zip(HARDEST, D_STUDENT)):
        target = _softmax([abs(t[i] - t[ap]), abs(t[i] - t[an])])
        total += -(target * _log_softmax(d)).sum()
    loss = soft_triplet(f, f_teacher, Y4)
    assert loss.item() == pytest.approx(total / 4, rel=1e-5)
    loss.backward()
    assert f.grad is not None and f_teacher.grad is None           # the teacher's side is a constant


def test_soft_ce_is_the_cross_entropy_to_the_peer_teachers_distribution():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(5, 3, generator=g, requires_grad=True)
    expected = np.mean([-(_softmax(q[i].detach()) * _log_softmax(p[i].detach())).sum() for i in range(5)])
    loss = soft_ce(p, q)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert p.grad is not None and q.grad is None


def test_mmt_losses_weight_the_hard_and_soft_terms_as_the_code():
    # settings other than the committed ones, so each is seen to reach the loss: l_id 0.3, l_tri 0.6, smoothing 0.3
    method, *_ = _method(soft_ce_weight=0.3, soft_tri_weight=0.6, label_smoothing=0.3)
    g = torch.Generator().manual_seed(2)
    y = torch.tensor([0, 0, 1, 1, 2, 2])

    def out():
        return Output(torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, 3, generator=g))

    (s1, s2), (t1, t2) = (out(), out()), (out(), out())
    losses = method.mmt_losses([s1, s2], [t1, t2], y)

    def ce(logits):            # label smoothing 0.3 over the C = 3 clusters: 0.7 one-hot + 0.3 / 3
        target = 0.7 * np.eye(3)[y.numpy()] + 0.1
        return np.mean(-(target * _log_softmax(logits)).sum(1))

    def tri(f):
        d = np.linalg.norm(f.numpy()[:, None] - f.numpy()[None], axis=2)
        same = y.numpy()[:, None] == y.numpy()[None]
        return np.mean(np.log1p(np.exp(np.where(same, d, -np.inf).max(1) - np.where(same, np.inf, d).min(1))))

    def sce(p, q):
        return np.mean(-(_softmax(q) * _log_softmax(p)).sum(1))

    def stri(f, f_teacher):    # anchor by anchor: the student's hardest pair, the teacher's distances there
        f, f_teacher, labels = f.numpy().astype(np.float64), f_teacher.numpy().astype(np.float64), y.tolist()
        total = 0.0
        for i in range(len(f)):
            same = [j for j in range(len(f)) if labels[j] == labels[i] and j != i]
            other = [j for j in range(len(f)) if labels[j] != labels[i]]
            ap = max(same, key=lambda j: np.linalg.norm(f[i] - f[j]))
            an = min(other, key=lambda j: np.linalg.norm(f[i] - f[j]))
            target = _softmax([np.linalg.norm(f_teacher[i] - f_teacher[j]) for j in (ap, an)])
            total += -(target * _log_softmax([np.linalg.norm(f[i] - f[j]) for j in (ap, an)])).sum()
        return total / len(f)

    assert losses["ce"].item() == pytest.approx(0.7 * (ce(s1.logits) + ce(s2.logits)), rel=1e-5)
    assert losses["triplet"].item() == pytest.approx(0.4 * (tri(s1.pooled) + tri(s2.pooled)), rel=1e-5)
    assert losses["soft_ce"].item() == pytest.approx(0.3 * (sce(s1.logits, t2.logits) + sce(s2.logits, t1.logits)),
                                                     rel=1e-5)
    assert losses["soft_triplet"].item() == pytest.approx(
        0.6 * (stri(s1.pooled, t2.pooled) + stri(s2.pooled, t1.pooled)), rel=1e-5)
    with pytest.raises(ReidReproError, match="outlier"):
        method.mmt_losses([s1, s2], [t1, t2], torch.tensor([0, 0, 1, 1, 2, -1]))


# ---- teachers, classifiers, encoders ---------------------------------------------------------------------------

def test_ema_teachers_follow_the_codes_ramp_on_parameters_only():
    assert [ema_momentum(t, 0.999) for t in (0, 1, 3)] == [0.0, 0.5, 0.75] and ema_momentum(10**6, 0.999) == 0.999
    method, *_ = _method(alpha=0.3)                                 # below the ramp's 0.5 at t = 1: the ceiling acts
    teacher, student = method.teachers[1], method.students[1]
    buffers = {k: v.clone() for k, v in teacher.named_buffers()}

    def nudge(by):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(by)

    nudge(1.0)
    method.after_step()                                              # t = 0: a = 0, the teacher takes the student
    for p_t, p in zip(teacher.parameters(), student.parameters()):
        torch.testing.assert_close(p_t, p)
    before = [p.clone() for p in teacher.parameters()]
    nudge(-2.0)
    method.after_step()                                              # t = 1: a = min(1 - 1/2, 0.3) = 0.3
    for p_t, p0, p in zip(teacher.parameters(), before, student.parameters()):
        torch.testing.assert_close(p_t, 0.3 * p0 + 0.7 * p)
    for k, v in teacher.named_buffers():                             # BN statistics are the teacher's own
        torch.testing.assert_close(v, buffers[k])
    assert all(not p.requires_grad for p in teacher.parameters())
    assert method.step == 2


def test_classifiers_are_reset_to_the_normalised_centroids_and_logits_have_one_column_per_cluster():
    method, batch, feats, labels = _method()
    by_hand = np.stack([feats[labels == c].mean(0) for c in range(4)])
    by_hand /= np.linalg.norm(by_hand, axis=1, keepdims=True)
    spare = [p.classifier.weight[4:].clone() for p in method.students + method.teachers]
    for peer, rest in zip(method.students + method.teachers, spare):
        assert peer.classifier.weight.shape == (16, 512)             # sized by the training images, as the code
        np.testing.assert_allclose(peer.classifier.weight[:4].detach().numpy(), by_hand, rtol=1e-5, atol=1e-6)
    # three clusters next epoch: rows 0..2 move, the rest is untouched, the logits have 3 columns
    method.on_epoch_start(1, feats, np.repeat([0, 1, 2, -1], 4), np.arange(16) % 3)
    for peer, rest in zip(method.students + method.teachers, spare):
        np.testing.assert_allclose(peer.classifier.weight[:3].detach().numpy(), by_hand[:3], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(peer.classifier.weight[4:], rest)
    students, teachers = method.forward_peers({**batch, "labels": torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])})
    assert all(o.logits.shape == (8, 3) for o in students + teachers)


def test_encoder_is_the_mean_of_the_teachers_and_teacher_1_is_evaluated():
    method, batch, *_ = _method()
    with torch.no_grad():
        method.teachers[1].net.neck.weight.mul_(2.0).add_(0.3)     # make the teachers differ
        x = batch["images"]
        method.encoder().eval()
        t1, t2 = method.teachers[0].net(x), method.teachers[1].net(x)
        mean = F.normalize(F.normalize(t1, dim=1) + F.normalize(t2, dim=1), dim=1)
        torch.testing.assert_close(F.normalize(method.encoder()(x), dim=1), mean)
        method.encoder().train()
    assert method.eval_encoder() is method.teachers[0].net


def test_ghost_bn_forwards_each_slice_on_its_own():
    method, batch, *_ = _method()
    peer, x = method.students[0], batch["views"][0]
    peer.net.bn_groups = 2                                           # model.bn_groups (paper scale: 4)
    out = peer(x, 4)
    peer.net.bn_groups = 1
    halves = [peer(x[:4], 4), peer(x[4:], 4)]
    torch.testing.assert_close(out.neck, torch.cat([h.neck for h in halves]))
    assert not torch.allclose(out.neck, peer(x, 4).neck)             # whole-batch BN differs


def test_net_2_starts_from_model_2_or_a_declared_copy(tmp_path):
    torch.manual_seed(5)
    other = ReidNet("resnet18")
    torch.save({"model_2": other.state_dict()}, tmp_path / "artifacts.pt")     # as source@<dataset> writes it
    method, *_ = _method(init_dir=tmp_path, init_2="model_2")
    torch.testing.assert_close(method.students[1].net.body[0].weight, other.body[0].weight)
    torch.testing.assert_close(method.teachers[1].net.body[0].weight, other.body[0].weight)
    assert not torch.equal(method.students[0].net.body[0].weight, other.body[0].weight)
    assert method.epoch_metrics()["net2_copied"] == 0.0
    empty = tmp_path / "empty"
    empty.mkdir()
    copied, *_ = _method(init_dir=empty, init_2="auto")
    torch.testing.assert_close(copied.students[1].net.body[0].weight, copied.students[0].net.body[0].weight)
    assert copied.students[1].net is not copied.students[0].net
    assert copied.epoch_metrics()["net2_copied"] == 1.0
    with pytest.raises(ReidReproError, match="artifacts.pt: holds no model_2"):
        _method(init_dir=empty, init_2="model_2")
    torch.save({}, empty / "artifacts.pt")                       # a pretrain start's artifacts: none
    with pytest.raises(ReidReproError, match="artifacts.pt: holds no model_2"):
        _method(init_dir=empty, init_2="model_2")


def test_quantile_eps_is_computed_once_and_kept(monkeypatch):
    from reid_repro.methods import mmt

    # the distances are those of 1-d points (a stand-in for the Jaccard distance): the rule is seen on numbers
    monkeypatch.setattr(mmt, "jaccard_distance", lambda f, k1, k2: np.abs(f[:, :1] - f[:, :1].T))
    method, *_ = _method(eps_rule="quantile", rho=0.22, min_samples=3)
    x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0], [13.0], [30.0]])
    # 9 points, 36 pairs; round(0.22 x 36) = round(7.92) = 8 smallest: the six pairs at distance 1 ((0,1), (1,2),
    # (2,3), (10,11), (11,12), (12,13)) and two of the four at 2, so eps = (6 x 1 + 2 x 2) / 8 = 1.25
    labels = method.pseudo_labels(0, x, None)
    assert method.eps == pytest.approx(1.25)
    # DBSCAN at 1.25 with 3 samples (itself included): 1, 2, 11, 12 are core, 0, 3, 10, 13 reached, 30 alone
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 1, -1])
    # the next epoch's points are 10 times farther apart: the rule would give 12.5 and the same two clusters, but eps
    # stays 1.25 and no point has a neighbour
    labels = method.pseudo_labels(1, 10 * x, None)
    assert method.eps == pytest.approx(1.25) and method.state_dict()["eps"] == method.eps
    np.testing.assert_array_equal(labels, [-1] * 9)


# ---- the adversaries -------------------------------------------------------------------------------------------

def test_the_conditional_discriminator_sees_the_feature_and_its_centroid_with_no_gradient_into_the_centroid():
    method, batch, *_ = _method("canu", adversary="conditional")
    table = method.centroids.clone().requires_grad_()               # a centroid table that *could* take a gradient
    method.centroids = table
    seen = []
    method.discs[0].register_forward_hook(lambda m, args, out: seen.append(args))
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    steps = method.training_step(batch)
    run_steps(iter([next(steps)]), opts, defaultdict(float))         # the discriminators' step
    f, cond = seen[0]
    torch.testing.assert_close(cond, table.detach()[LABELS])         # phi_p: each sample's cluster centroid
    assert not f.requires_grad and not cond.requires_grad             # D learns on detached features
    np.testing.assert_allclose(f.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    encoder_step = next(steps)
    f, cond = seen[1]
    assert f.requires_grad and not cond.requires_grad
    torch.testing.assert_close(cond, table.detach()[LABELS])
    sum(encoder_step.losses.values()).backward()
    assert table.grad is None                                         # Eq. 8: nothing flows into the centroid
    assert method.students[0].net.neck.weight.grad is not None
    plain, *_ = _method("canu", adversary="plain")
    assert plain.condition(LABELS) is None and plain.discs[0].condition is None


def test_the_discriminator_learns_the_cameras_of_fixed_features():
    method, batch, *_ = _method("canu")
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    with torch.no_grad():
        students, _ = method.forward_peers(batch)
    feats = [F.normalize(s.neck, dim=1) for s in students]
    cond, cams = method.condition(LABELS), method.camera_index[CAMS]
    net_before = [p.clone() for p in method.students[0].parameters()]
    losses = []
    for _ in range(30):
        step = Step(method.disc_losses(feats, cams, cond), DISCS)
        losses.append(sum(v.item() for v in step.losses.values()))
        run_steps(iter([step]), opts, defaultdict(float))
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, q) for p, q in zip(method.students[0].parameters(), net_before))
    assert method.epoch_metrics()["disc_acc_1"] > 0


@pytest.mark.parametrize("adversary", ["plain", "conditional"])
def test_the_encoders_adversarial_gradient_is_minus_mu_times_the_discriminators(adversary):
    method, batch, *_ = _method("canu", adversary=adversary, mu=0.3)
    g = torch.Generator().manual_seed(3)
    feats = [F.normalize(torch.randn(8, 512, generator=g), dim=1).requires_grad_() for _ in range(2)]
    cams, cond = method.camera_index[CAMS], method.condition(LABELS)
    d_params = [p for d in method.discs for p in d.parameters()]
    grads = torch.autograd.grad(sum(method.disc_losses(feats, cams, cond).values()), d_params + feats,
                                allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads[:len(d_params)])   # the D step trains the D ...
    assert all(g is None for g in grads[len(d_params):])                            # ... and not the features
    enc = method.encoder_adv_losses(feats, cams, cond)
    assert set(enc) == {"adv_1", "adv_2"} and all(v.item() < 0 for v in enc.values())
    grads = torch.autograd.grad(sum(enc.values()), feats + d_params, allow_unused=True)
    g_enc = grads[:2]
    assert all(g is None for g in grads[2:])                          # D is fixed in the encoder's step
    for disc, f, ge in zip(method.discs, feats, g_enc):
        g_disc = torch.autograd.grad(camera_loss(disc, f, cams, cond), f)[0]   # D's own loss at the same point
        torch.testing.assert_close(ge, -0.3 * g_disc)
        assert F.cosine_similarity(ge.flatten(), g_disc.flatten(), dim=0).item() == pytest.approx(-1.0, abs=1e-5)
        # a small descent step of the encoder's term raises the discriminator's loss
        with torch.no_grad():
            before = camera_loss(disc, f, cams, cond).item()
            after = camera_loss(disc, f - 0.05 * ge / ge.norm(), cams, cond).item()
        assert after > before


def test_the_discriminator_has_the_papers_branches():
    d = CameraDiscriminator(2048, 8, conditional=True)
    linears = [m for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2048, 1024), (2048, 1024), (1024, 1024), (1024, 8)]


# ---- one batch on the loop ---------------------------------------------------------------------------------------

def test_canu_without_an_adversary_is_mmt():
    mmt, batch, *_ = _method("mmt")
    canu, *_ = _method("canu", adversary="none")
    assert set(canu.optimizers()) == {"model", "net_2"} and not canu.discs
    a, b = mmt.training_step(batch), canu.training_step(batch)
    assert isinstance(b, dict) and a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("name, overrides", [("mmt", {}), ("canu", {"adversary": "plain"}), ("canu", {})])
def test_one_batch_of_run_steps_moves_each_optimisers_own_parameters(name, overrides):
    method, batch, *_ = _method(name, **overrides)
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    expected = {"model", "net_2"} | (set(DISCS) if getattr(method.cfg, "adversary", "none") != "none" else set())
    assert set(opts) == expected

    def params(n):
        return [p for group in opts[n].param_groups for p in group["params"]]

    def snapshot():
        return {n: [p.detach().clone() for p in params(n)] for n in opts}

    def moved(a, b, n):
        return [not torch.equal(p, q) for p, q in zip(a[n], b[n])]

    snapshots = [snapshot()]

    def observed(result):              # a snapshot after each update the loop carries out
        for step in ([Step(result)] if isinstance(result, dict) else result):
            yield step
            snapshots.append(snapshot())

    teacher_before = [p.clone() for p in method.teachers[0].parameters()]
    sums = defaultdict(float)
    run_steps(observed(method.training_step(batch)), opts, sums)
    method.after_step()
    assert sums and all(np.isfinite(v) for v in sums.values())
    assert {"ce", "triplet", "soft_ce", "soft_triplet"} <= set(sums)
    if len(snapshots) == 3:            # the discriminators' step, then the students'
        assert set(sums) >= {"disc_1", "disc_2", "adv_1", "adv_2"}
        s0, s1, s2 = snapshots
        for n in DISCS:                                                  # step 1 moved the D only ...
            assert all(moved(s0, s1, n)) and not any(moved(s1, s2, n)), n
        for n in ("model", "net_2"):                                     # ... step 2 the students only
            assert not any(moved(s0, s1, n)) and all(moved(s1, s2, n)), n
    else:
        assert len(snapshots) == 2
        for n in opts:
            assert all(moved(snapshots[0], snapshots[1], n)), n
    assert any(not torch.equal(p, q) for p, q in zip(method.teachers[0].parameters(), teacher_before))


def test_the_methods_state_round_trips_for_a_resumed_run():
    import io

    method, batch, *_ = _method("canu", eps_rule="quantile")
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    run_steps(method.training_step(batch), opts, defaultdict(float))
    method.after_step()
    method.eps = 0.42
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    resumed, *_ = _method("canu", eps_rule="quantile")
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    assert resumed.step == 1 and resumed.eps == 0.42
    for a, b in [(method.students[1], resumed.students[1]), *zip(method.teachers, resumed.teachers),
                 *zip(method.discs, resumed.discs)]:
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(x, y, msg=name)
