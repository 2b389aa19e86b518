"""ICE (methods/ice.py) against hand computations: proxies, cross-camera loss, hard instances, KL direction."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy

from reid_repro.clustering import camera_centroids
from reid_repro.methods.ice import (agnostic_proxy_loss, cross_camera_proxy_loss, hard_instance_loss, kl_p_q,
                                    soft_distributions)


def _unit(x):
    return F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


def test_camera_aware_proxies_exist_only_for_cameras_in_the_cluster():
    feats = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 3, 3]]
    labels = np.array([0, 0, 0, 1, 1, -1])
    cams = np.array([2, 2, 5, 2, 0, 1])
    proxies, cluster, cam = camera_centroids(feats, labels, cams)
    assert sorted(zip(cluster.tolist(), cam.tolist())) == [(0, 2), (0, 5), (1, 0), (1, 2)]
    i = list(zip(cluster, cam)).index((0, 2))
    np.testing.assert_allclose(proxies[i], [1, 0, 0, 0])                 # mean of the two cam-2 images, Eq. 6


def test_agnostic_proxy_loss_is_eq5():
    f, p = _unit([[1.0, 0.2], [0.1, 1.0]]), _unit([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    y = torch.tensor([0, 1])
    s = (f @ p.t() / 0.5).numpy()
    expected = np.mean([np.log(np.exp(s[i]).sum()) - s[i, y[i]] for i in range(2)])
    assert agnostic_proxy_loss(f, y, p, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_cross_camera_loss_is_eq7():
    g = torch.Generator().manual_seed(0)
    proxies = _unit(torch.randn(7, 4, generator=g))
    cluster = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    cam = torch.tensor([0, 1, 2, 0, 1, 0, 2])
    f = _unit(torch.randn(3, 4, generator=g))
    y, c = torch.tensor([0, 1, 2]), torch.tensor([1, 1, 0])
    tau, n_neg = 0.07, 2
    s = (f @ proxies.t() / tau).numpy()
    per_sample = []
    for i in range(3):
        pos = [j for j in range(7) if cluster[j] == y[i] and cam[j] != c[i]]
        if not pos:                         # cluster 2 lives in one camera only: no cross-camera positive
            continue
        negs = sorted([s[i, j] for j in range(7) if cluster[j] != y[i]], reverse=True)[:n_neg]
        per_sample.append(np.mean([-(s[i, p] - np.log(np.exp(s[i, p]) + np.exp(negs).sum())) for p in pos]))
    got = cross_camera_proxy_loss(f, y, c, proxies, cluster, cam, tau, n_neg).item()
    assert len(per_sample) == 2 and got == pytest.approx(np.mean(per_sample), rel=1e-5)


def test_hard_instance_loss_takes_the_least_similar_positive():
    f = _unit([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    m = _unit([[1.0, 0.1], [0.2, 1.0], [1.0, -0.5], [-1.0, 0.3]])
    y = torch.tensor([0, 1, 0, 2])
    tau = 0.1
    s = (f @ m.t() / tau).numpy()
    total, hardest = 0.0, 0.0
    for i in range(4):
        same = [j for j in range(4) if y[j] == y[i]]
        pos = min(s[i, j] for j in same)                             # hardest positive: the lowest similarity
        negs = [s[i, j] for j in range(4) if y[j] != y[i]]
        total += np.log(np.exp(pos) + np.exp(negs).sum()) - pos
        hardest += np.log(np.exp(pos) + np.exp(max(negs))) - pos
    assert hard_instance_loss(f, m, y, tau).item() == pytest.approx(total / 4, rel=1e-5)
    assert hard_instance_loss(f, m, y, tau, "hardest").item() == pytest.approx(hardest / 4, rel=1e-5)
    # anchor 0's positives are m0 and m2; m2 is less similar, so it is the one in the loss
    assert s[0, 2] < s[0, 0]
    easiest = np.log(np.exp(s[0, 0]) + np.exp(s[0, [1, 3]]).sum()) - s[0, 0]
    assert easiest < np.log(np.exp(s[0, 2]) + np.exp(s[0, [1, 3]]).sum()) - s[0, 2]


def test_kl_paper_variant_is_p_given_q_not_q_given_p():
    g = torch.Generator().manual_seed(3)
    f, m, mt = (_unit(torch.randn(5, 6, generator=g)) for _ in range(3))
    log_p, log_q = soft_distributions(f, m, mt, 0.4)
    P, Q = log_p.exp().numpy(), log_q.exp().numpy()
    np.testing.assert_allclose(P, torch.softmax(f @ m.t() / 0.4, 1).numpy(), rtol=1e-5)      # Eq. 10
    np.testing.assert_allclose(Q, torch.softmax(mt @ mt.t() / 0.4, 1).numpy(), rtol=1e-5)    # Eq. 11
    forward = np.mean([entropy(P[i], Q[i]) for i in range(5)])                                # KL(P || Q)
    backward = np.mean([entropy(Q[i], P[i]) for i in range(5)])
    assert kl_p_q(log_p, log_q).item() == pytest.approx(forward, rel=1e-5)
    assert abs(forward - backward) > 1e-3


@pytest.mark.parametrize("ema_bn", ["paper", "code"])
def test_ema_update_is_eq2(ema_bn):
    from test_ise import _method

    method, batch = _method("ice", {"ema_bn": ema_bn})
    before = {k: v.clone() for k, v in method.ema.state_dict().items()}
    losses = method.training_step(batch)
    assert set(losses) == {"agnostic", "cross", "h_ins", "s_ins"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, p in method.model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    torch.optim.SGD(method.model.parameters(), lr=0.1).step()
    method.after_step()
    a = method.cfg.alpha
    online = method.model.state_dict()
    params = {n for n, _ in method.ema.named_parameters()}
    after_forward = {k: v.clone() for k, v in method.ema.state_dict().items()}
    for name, value in method.ema.state_dict().items():
        if name in params or (ema_bn == "paper" and value.dtype.is_floating_point):
            torch.testing.assert_close(value, a * before[name] + (1 - a) * online[name])
        elif ema_bn == "code" and value.dtype.is_floating_point:
            # code: BN statistics are the teacher's own (from its train-mode forwards), not averaged
            torch.testing.assert_close(value, after_forward[name])
            if name.endswith("running_mean"):
                assert not torch.equal(value, before[name])            # its train-mode passes moved them
    assert method.epoch_metrics()["kl"] > 0


def test_agnostic_code_variant_is_raw_features_with_label_smoothing():
    raw = torch.tensor([[3.0, 0.6], [0.4, 4.0]])                # BN-neck features, not normalised
    cent = torch.tensor([[0.8, 0.1], [0.0, 0.7], [-0.6, 0.0]])  # means of unit features: norm < 1
    y, tau, eps = torch.tensor([0, 1]), 0.5, 0.1
    s = (raw @ cent.t() / tau).numpy()
    logp = s - np.log(np.exp(s).sum(1, keepdims=True))
    expected = np.mean([-(1 - eps) * logp[i, y[i]] - eps * logp[i].mean() for i in range(2)])
    assert agnostic_proxy_loss(raw, y, cent, tau, label_smoothing=eps).item() == pytest.approx(expected, rel=1e-6)
    # and the code variant's proxies are the plain means (centroids(..., normalize=False))
    from test_ise import _method

    m_code, _ = _method("ice", {"agnostic": "code"})
    m_paper, _ = _method("ice", {"agnostic": "paper"})
    assert (m_code.proxies.norm(dim=1) < 1 - 1e-3).all()
    torch.testing.assert_close(m_paper.proxies.norm(dim=1), torch.ones(len(m_paper.proxies)))


def test_cross_camera_code_variant_is_a_joint_softmax_summed_over_cameras():
    from reid_repro.methods.ice import cross_camera_proxy_loss_code

    g = torch.Generator().manual_seed(0)
    proxies = _unit(torch.randn(7, 4, generator=g))
    cluster = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    f = _unit(torch.randn(4, 4, generator=g))
    y, c = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 0])
    tau, n_neg = 0.07, 2
    s = (f @ proxies.t() / tau).numpy()
    per_cam = {}
    for i in range(4):
        pos = [j for j in range(7) if cluster[j] == y[i]]            # every proxy of the cluster, own camera too
        negs = sorted([s[i, j] for j in range(7) if cluster[j] != y[i]], reverse=True)[:n_neg]
        denom = np.log(np.exp(s[i, pos]).sum() + np.exp(negs).sum())
        per_cam.setdefault(int(c[i]), []).append(np.mean([denom - s[i, p] for p in pos]))   # 1/|P| targets
    expected = sum(np.mean(v) for v in per_cam.values())                  # summed over the batch's cameras
    got = cross_camera_proxy_loss_code(f, y, c, proxies, cluster, tau, n_neg).item()
    assert got == pytest.approx(expected, rel=1e-5)
    paper = cross_camera_proxy_loss(f, y, c, proxies, cluster, torch.tensor([0, 1, 2, 0, 1, 0, 2]), tau, n_neg)
    assert abs(paper.item() - got) > 1e-3


def test_kl_code_variant_is_q_given_p():
    from reid_repro.methods.ice import kl_q_p

    g = torch.Generator().manual_seed(3)
    f, m, mt = (_unit(torch.randn(5, 6, generator=g)) for _ in range(3))
    log_p, log_q = soft_distributions(f, m, mt, 0.4)
    P, Q = log_p.exp().numpy(), log_q.exp().numpy()
    assert kl_q_p(log_p, log_q).item() == pytest.approx(np.mean([entropy(Q[i], P[i]) for i in range(5)]), rel=1e-5)
    # torch's KLDivLoss(log P, Q), which the official code calls, is the same quantity
    ref = torch.nn.KLDivLoss(reduction="batchmean")(log_p, log_q.exp())
    assert kl_q_p(log_p, log_q).item() == pytest.approx(ref.item(), rel=1e-5)


class _FirstCoordinates(torch.nn.Module):
    """A stand-in network whose feature of a 2-number input is those two numbers (padded to the proxies' 512)."""

    def forward(self, x):
        return F.pad(x, (0, 510))


# Worked on paper (Eq. 9, tau_h = 0.5, so s = 2 cos): online f = (1, 0), (0, 1), (-1, 0), (0, -1) for labels
# 0, 0, 1, 1. paper: m = f, so anchor 0 has s = (2, 0 | -2, 0): hardest positive 0 (m1), loss
# log(e^0 + e^-2 + e^0) - 0 = log(2 + e^-2) = 0.758624, and by symmetry every anchor the same.
# code: m from the third view, (0, 1), (0, 1), (0, -1), (0, -1): anchors 0 and 2 see s = (0, 0 | 0, 0), log 3 =
# 1.098612; anchor 1 sees (2, 2 | -2, -2): log(e^2 + 2 e^-2) - 2 = log(1 + 2 e^-4) = 0.035976, anchor 3 the same;
# mean (1.098612 + 0.035976) / 2 = 0.567294. lambda_h = 2 doubles each.
ONLINE = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]
THIRD_VIEW = [[0.0, 1.0], [0.0, 1.0], [0.0, -1.0], [0.0, -1.0]]


@pytest.mark.parametrize("target, expected", [("paper", 2 * 0.758624), ("code", 2 * 0.567294)])
def test_target_view_switch(target, expected):
    """code: the hard-instance targets m come from a third view (a second strong augmentation); paper: from the
    online network's own view."""
    from test_ise import _method

    method, _ = _method("ice", {"target": target, "soft_instance": False, "camera_aware": False,
                                "negatives": "all", "lambda_h": 2.0, "tau_h": 0.5})
    assert method.views == (("blur", "plain", "blur") if target == "code" else ("blur", "plain"))
    method.model, method.ema = _FirstCoordinates(), _FirstCoordinates()
    online = torch.tensor(ONLINE)
    views = [online, online.clone(), torch.tensor(THIRD_VIEW)][:len(method.views)]
    batch = {"images": online, "views": views, "labels": torch.tensor([0, 0, 1, 1]),
             "cams": torch.tensor([0, 1, 0, 1]), "index": torch.arange(4)}
    assert method.training_step(batch)["h_ins"].item() == pytest.approx(expected, abs=1e-5)


def test_fidelity_sets_every_switch_and_a_switch_overrides_it():
    from test_ise import _method

    code, _ = _method("ice")
    assert code.cfg.fidelity == "code" and all(code.cfg.follows(s) == "code" for s in
                                              ("agnostic", "cross", "kl", "target", "ema_bn"))
    paper, _ = _method("ice", {"fidelity": "paper", "kl": "code"})
    assert paper.cfg.follows("agnostic") == "paper" and paper.cfg.follows("kl") == "code"
    from reid_repro.errors import ReidReproError

    with pytest.raises(ReidReproError, match="kl='both'"):
        _method("ice", {"kl": "both"})


# ---- issue 37: the released cross-camera term (chenhao2345/ICE ice/trainers.py, ImageTrainer.train) -----------
# Worked on paper: camera proxies p1 = (1, 0) and p2 = (0, 1) of cluster 0 (cameras 0 and 1), p3 = (0.6, 0.8) of
# cluster 1 (camera 0); one sample of cluster 0 under camera 0 with f = (1, 0); tau = 0.5.
# proxy_norm code: F.normalize(P.t()) scales dimension 0 by 1/sqrt(1 + 0 + 0.36) and dimension 1 by
# 1/sqrt(0 + 1 + 0.64), so f . p = (1/sqrt(1.36), 0, 0.6/sqrt(1.36)) = (0.857493, 0, 0.514496); unit proxies give
# (1, 0, 0.6). cross_negatives code with n_neg = 50 > P = 3: the sort keeps all three proxies, the two own ones
# included, so the softmax runs over [s1, s2 | s1, s2, s3] with targets 1/2 on the first two; paper: [s1, s2 | s3].
HAND_P = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
HAND_CLUSTER, HAND_CAM = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])


def _hand_loss(sims, negatives, tau=0.5):
    """-(1/2) sum over the two own proxies of log softmax, the softmax over [s1, s2] + negatives, by hand."""
    lse = math.log(sum(math.exp(v / tau) for v in [sims[0], sims[1], *negatives]))
    return -0.5 * ((sims[0] / tau - lse) + (sims[1] / tau - lse))


@pytest.mark.parametrize("proxy_norm, negatives, expected", [
    ("code", "code", 1.9095452), ("code", "paper", 1.3784009), ("paper", "code", 2.0006317),
    ("paper", "paper", 1.4603726)])
def test_the_code_cross_camera_term_on_a_three_proxy_example_worked_by_hand(proxy_norm, negatives, expected):
    from reid_repro.methods.ice import code_proxies, cross_camera_proxy_loss_code

    a = 1 / math.sqrt(1.36)
    sims = (a, 0.0, 0.6 * a) if proxy_norm == "code" else (1.0, 0.0, 0.6)
    assert _hand_loss(sims, sims if negatives == "code" else sims[2:]) == pytest.approx(expected, abs=1e-7)
    proxies = torch.tensor(HAND_P)
    if proxy_norm == "code":
        proxies = code_proxies(proxies)
        torch.testing.assert_close(proxies, torch.tensor([[a, 0.0], [0.0, 1 / math.sqrt(1.64)],
                                                          [0.6 * a, 0.8 / math.sqrt(1.64)]]))
    got = cross_camera_proxy_loss_code(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), torch.tensor([0]), proxies,
                                       HAND_CLUSTER, 0.5, 50, negatives)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_with_fewer_others_than_n_neg_the_code_brings_back_the_last_own_proxies():
    """n_neg = 2, one other proxy: the ascending sort is [p1, p2 (pushed down, in index order), p3]; its last two
    are p2 and p3, so p2 is both a positive and a negative: softmax over [s1, s2 | s2, s3]."""
    from reid_repro.methods.ice import cross_camera_proxy_loss_code, nearest_negatives

    f, proxies = torch.tensor([[1.0, 0.0]]), torch.tensor(HAND_P)
    got = cross_camera_proxy_loss_code(f, torch.tensor([0]), torch.tensor([0]), proxies, HAND_CLUSTER, 0.5, 2, "code")
    assert got.item() == pytest.approx(_hand_loss((1.0, 0.0, 0.6), (0.0, 0.6)), rel=1e-6)
    # paper: each sample its own min(n_neg, others): a cluster-1 sample has two others, a cluster-0 sample one
    sims = torch.tensor([[0.9, 0.1, 0.5], [0.3, 0.7, 0.2]])
    own = torch.tensor([[True, True, False], [False, False, True]])
    negs = nearest_negatives(sims, own, 2, "paper")
    assert negs[0].tolist() == pytest.approx([0.5]) and sorted(negs[1].tolist()) == pytest.approx([0.3, 0.7])


def _released_cross_term(f, targets, cids, tempV, concate_intra_class, beta=0.07, bg_knn=50):
    """The released loop itself (ImageTrainer.train, loss_cam), transcribed line by line for the CPU."""
    loss_cam = torch.tensor([0.0])
    for cc in torch.unique(cids):
        inds = torch.nonzero(cids == cc).squeeze(-1)
        percam_targets, percam_feat = targets[inds], f[inds]
        associate_loss = 0
        target_inputs = torch.matmul(F.normalize(percam_feat), F.normalize(tempV.t().clone()))
        temp_sims = target_inputs.detach().clone()
        target_inputs /= beta
        for k in range(len(percam_feat)):
            ori_asso_ind = torch.nonzero(concate_intra_class == percam_targets[k]).squeeze(-1)
            temp_sims[k, ori_asso_ind] = -10000.0
            sel_ind = torch.sort(temp_sims[k], stable=True)[1][-bg_knn:]
            concated_input = torch.cat((target_inputs[k, ori_asso_ind], target_inputs[k, sel_ind]), dim=0)
            concated_target = torch.zeros(len(concated_input), dtype=concated_input.dtype)
            concated_target[0:len(ori_asso_ind)] = 1.0 / len(ori_asso_ind)
            associate_loss += -1 * (F.log_softmax(concated_input.unsqueeze(0), dim=1)
                                    * concated_target.unsqueeze(0)).sum()
        loss_cam += 0.5 * associate_loss / len(percam_feat)
    return loss_cam


@pytest.mark.parametrize("n_clusters, bg_knn", [(30, 50), (6, 50), (6, 11), (6, 4)])
def test_the_code_cross_term_matches_the_released_loop_and_its_gradient(n_clusters, bg_knn):
    """Random features and camera proxies (60 proxies: more than 50 others; 12 with 50 or 11 negatives: fewer
    others, so all or one of the own proxies come back; 12 with 4: enough others):
    ours (proxy_norm, cross_negatives, cross: code; x 0.5 as the method applies it) against the transcription."""
    from reid_repro.methods.ice import code_proxies, cross_camera_proxy_loss_code

    g = torch.Generator().manual_seed(n_clusters + bg_knn)
    cluster = torch.arange(n_clusters).repeat_interleave(2)                  # every cluster in cameras 0 and 1
    cam = torch.tensor([0, 1]).repeat(n_clusters)
    tempV = _unit(torch.randn(len(cluster), 8, generator=g))
    f = torch.randn(10, 8, generator=g, requires_grad=True)
    y, c = torch.randint(0, n_clusters, (10,), generator=g), torch.randint(0, 3, (10,), generator=g)
    order = torch.argsort(cam * n_clusters + cluster)                        # the released camera-major order
    expected = _released_cross_term(f, y, c, tempV[order], cluster[order], bg_knn=bg_knn)
    ours = 0.5 * cross_camera_proxy_loss_code(F.normalize(f, dim=1), y, c, code_proxies(tempV), cluster, 0.07,
                                              bg_knn, "code")
    assert ours.item() == pytest.approx(expected.item(), rel=2e-6)
    g_ours, = torch.autograd.grad(ours, f)
    g_expected, = torch.autograd.grad(expected.sum(), f)
    torch.testing.assert_close(g_ours, g_expected, rtol=1e-5, atol=1e-6)


def test_proxy_norm_and_cross_negatives_follow_fidelity():
    from test_ise import _method

    code, _ = _method("ice")
    torch.testing.assert_close(code.cam_proxies.norm(dim=0), torch.ones(code.cam_proxies.shape[1]))
    paper, _ = _method("ice", {"proxy_norm": "paper"})
    torch.testing.assert_close(paper.cam_proxies.norm(dim=1), torch.ones(len(paper.cam_proxies)))
    assert code.cfg.follows("cross_negatives") == "code"
    assert _method("ice", {"fidelity": "paper"})[0].cfg.follows("cross_negatives") == "paper"


def test_the_shared_mean_teacher_step_is_the_formula():
    """models.ema_update, ICE's Eq. 2 and MMT's temporal average: t <- m t + (1 - m) s, in place, worked by hand."""
    from reid_repro.models import ema_update

    t = [torch.tensor([1.0, -2.0]), torch.tensor([[4.0]])]
    s = [torch.tensor([3.0, 2.0], requires_grad=True), torch.tensor([[0.0]])]
    ema_update(t, s, 0.9)
    assert torch.allclose(t[0], torch.tensor([1.2, -1.6])) and torch.allclose(t[1], torch.tensor([[3.6]]))
    assert not t[0].requires_grad
