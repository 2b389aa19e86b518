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


@pytest.mark.parametrize("target", ["paper", "code"])
def test_target_view_switch(target):
    """code: the hard-instance targets m come from a third view (a second strong augmentation)."""
    from test_ise import _method

    method, batch = _method("ice", {"target": target, "soft_instance": False, "camera_aware": False})
    assert method.views == (("blur", "plain", "blur") if target == "code" else ("blur", "plain"))
    losses = method.training_step(batch)
    f = F.normalize(method.model(batch["views"][0]), dim=1)
    method.ema.train(method.cfg.follows("ema_bn") == "code")
    with torch.no_grad():
        m = F.normalize(method.ema(batch["views"][2 if target == "code" else 0]), dim=1)
    expected = method.cfg.lambda_h * hard_instance_loss(f, m, batch["labels"], method.cfg.tau_h)
    assert losses["h_ins"].item() == pytest.approx(expected.item(), rel=1e-4)


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
