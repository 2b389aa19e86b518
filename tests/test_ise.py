"""ISE (methods/ise.py) against hand computations: the degree schedules, support samples, L_LP, L_SE."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid_repro.methods.ise import degree, label_preserving_loss, support_samples


def test_degree_schedules():
    T = 100
    assert degree("logarithm", 1.0, 0, T) == 0.0
    assert degree("logarithm", 1.0, T, T) == pytest.approx(0.5)                  # lambda0/2 * log(e) at t = T
    assert degree("logarithm", 2.0, 50, T) == pytest.approx(math.log((math.e - 1) / 2 + 1))   # Eq. 5
    assert degree("constant", 1.0, 7, T) == 0.5
    assert degree("linear", 1.0, 50, T) == pytest.approx(0.25)
    assert degree("square", 1.0, 50, T) == pytest.approx(0.125)


def test_support_samples_move_towards_the_nearest_other_centroid():
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    f = torch.tensor([[0.8, 0.6], [0.6, -0.8]])                  # both in cluster 0
    y = torch.tensor([0, 0])
    s = support_samples(f, y, c, lam=0.5, k=1, direction="nearest")
    # f0 is nearest to cluster 1 (sim 0.6 vs -0.8); f1 to cluster 2 (sim -0.6 vs cluster 1's -0.8)
    np.testing.assert_allclose(s[0, 0].numpy(), [0.8 + 0.25 * (0 - 1), 0.6 + 0.25 * (1 - 0)], atol=1e-6)
    np.testing.assert_allclose(s[1, 0].numpy(), [0.6 + 0.25 * (-1 - 1), -0.8], atol=1e-6)
    far = support_samples(f, y, c, lam=0.5, k=1, direction="farthest")
    np.testing.assert_allclose(far[0, 0].numpy(), [0.8 + 0.25 * (-1 - 1), 0.6], atol=1e-6)  # cluster 2 is the farthest
    both = support_samples(f, y, c, lam=1.0, k=2, direction="nearest")
    assert both.shape == (2, 2, 2)
    rnd = support_samples(f, torch.tensor([1, 1]), c, lam=1.0, k=2, direction="random",
                          generator=torch.Generator().manual_seed(0))
    # random picks other clusters only: with k = 2 of 2 others, the set of directions is {0, 2}
    targets = {tuple(np.round((rnd[0, j] - f[0]).numpy() * 2 + c[1].numpy(), 6)) for j in range(2)}
    assert targets == {(1.0, 0.0), (-1.0, 0.0)}


def _lp_by_hand(f, labels, support, tau):
    fn = F.normalize(f, dim=1).numpy()
    B, k, d = support.shape
    sn = F.normalize(support.reshape(B * k, d), dim=1).numpy()
    sl = np.repeat(labels.numpy(), k)
    total = 0.0
    for i in range(B):
        sims = sn @ fn[i] / tau
        pos = sims[sl == labels[i].item()].min()                     # hardest positive: least similar
        negs = [sims[sl == c].max() for c in np.unique(sl) if c != labels[i].item()]   # hardest negative
        total += -(pos - np.log(np.exp(pos) + np.sum(np.exp(negs))))
    return total / B


def test_label_preserving_loss_matches_eq7():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(6, 5, generator=g)
    labels = torch.tensor([0, 0, 3, 3, 7, 7])
    support = torch.randn(6, 2, 5, generator=g)
    assert label_preserving_loss(f, labels, support, 0.6).item() == pytest.approx(
        _lp_by_hand(f, labels, support, 0.6), rel=1e-5)


def test_hardest_positive_is_the_least_similar_support_sample():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    close, far = [1.0, 0.1], [1.0, 0.9]                          # anchor 0's own supports
    support = torch.tensor([[close, far], [[0.0, 1.0], [0.1, 1.0]]])
    sim_far = F.cosine_similarity(f[0], torch.tensor(far), dim=0).item()
    sim_neg = max(F.cosine_similarity(f[0], support[1, j], dim=0).item() for j in range(2))
    expected_0 = -(sim_far / 0.6 - math.log(math.exp(sim_far / 0.6) + math.exp(sim_neg / 0.6)))
    full = _lp_by_hand(f, labels, support, 0.6)
    sim_pos_1 = min(F.cosine_similarity(f[1], support[1, j], dim=0).item() for j in range(2))
    sim_neg_1 = max(F.cosine_similarity(f[1], support[0, j], dim=0).item() for j in range(2))
    expected_1 = -(sim_pos_1 / 0.6 - math.log(math.exp(sim_pos_1 / 0.6) + math.exp(sim_neg_1 / 0.6)))
    assert full == pytest.approx((expected_0 + expected_1) / 2, rel=1e-6)
    assert label_preserving_loss(f, labels, support, 0.6).item() == pytest.approx(full, rel=1e-5)


def _method(name, params_override=None):
    from pathlib import Path

    from reid_repro.config import load_method_config, load_params
    from reid_repro.methods import base_section, method_class
    from reid_repro.models import ReidNet

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    cls = method_class(name)
    cfg = load_method_config(params, name, cls.config, params_override or {}, base=base_section(name))
    torch.manual_seed(0)
    model = ReidNet("resnet18").train()
    method = cls(cfg, model, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(16, model.dim, generator=g), dim=1).numpy()
    labels = np.repeat(np.arange(4), 4)
    method.on_epoch_start(1, feats, labels, np.arange(16) % 3)
    images = torch.randn(8, 3, 32, 16, generator=g)
    views = [images] + [images + 0.1 * torch.randn(8, 3, 32, 16, generator=g) for _ in method.views[1:]]
    batch = {"images": images, "views": views, "labels": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]),
             "cams": torch.tensor([0, 1, 0, 1, 2, 0, 1, 2]), "index": torch.arange(8)}
    return method, batch


@pytest.mark.parametrize("name", ["cluster_contrast", "ise", "ice", "mixup"])
def test_a_training_step_has_finite_losses_and_gradients_everywhere(name):
    method, batch = _method(name)
    losses = method.training_step(batch)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for pname, p in method.model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_l_se_is_infonce_over_originals_and_support_samples():
    method, batch = _method("ise")
    cfg = method.cfg
    memory_before = method.memory.features.clone()
    method.step = method.total // 2                                      # lambda > 0
    losses = method.training_step(batch)
    f = F.normalize(method.model(batch["images"]), dim=1).detach()      # train-mode BN: the same output again
    lam = degree(cfg.schedule, cfg.lambda0, method.total // 2, method.total)
    sup = support_samples(f, batch["labels"], memory_before, lam, cfg.k, cfg.direction)
    f_hat = F.normalize(torch.cat([f, sup.reshape(-1, f.shape[1])]), dim=1)
    y_hat = torch.cat([batch["labels"], batch["labels"].repeat_interleave(cfg.k)])
    logits = (f_hat @ memory_before.t() / cfg.tau1).numpy()
    expected = np.mean([np.log(np.exp(row).sum()) - row[y] for row, y in zip(logits, y_hat.numpy())])
    assert losses["se"].item() == pytest.approx(expected, rel=1e-4)
    assert losses["lp"].item() == pytest.approx(cfg.beta * _lp_by_hand(f, batch["labels"], sup, cfg.tau2), rel=1e-4)
    # the memory moved towards the batch: each batch cluster's entry changed, with unit norm
    assert not torch.allclose(method.memory.features, memory_before)
    np.testing.assert_allclose(method.memory.features.norm(dim=1).numpy(), 1.0, rtol=1e-5)


def test_mixup_mixes_images_and_losses_with_the_same_ratio():
    from reid_repro.methods.mixup import mix

    method, batch = _method("mixup")
    memory_before = method.memory.features.clone()
    state = method.rng.bit_generator.state
    losses = method.training_step(batch)
    rng = np.random.default_rng()
    rng.bit_generator.state = state                     # replay the method's draws
    lam = rng.beta(method.cfg.alpha, method.cfg.alpha)
    perm = torch.as_tensor(rng.permutation(8))
    x = batch["images"]
    np.testing.assert_allclose(mix(x, lam, perm)[0].numpy(), (lam * x[0] + (1 - lam) * x[perm[0]]).numpy(), rtol=1e-6)
    f = F.normalize(method.model(mix(x, lam, perm)), dim=1).detach()
    logits = (f @ memory_before.t() / method.cfg.temperature)
    y = batch["labels"]
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert losses["contrast"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_mean_update_paper_is_one_step_with_the_batch_mean_and_code_is_sample_by_sample():
    """cluster_contrast.mean_update, both variants against a hand computation (mu = 0.1)."""
    from reid_repro.methods.cluster_contrast import ClusterMemory

    c0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])   # two samples of cluster 0, one of cluster 1
    y = torch.tensor([0, 0, 1])
    unit = [np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0]) / math.sqrt(2)]

    def step(m, x):
        m = 0.1 * m + 0.9 * x
        return m / np.linalg.norm(m)

    paper = ClusterMemory(c0, 0.1, 0.1, "mean")
    paper.update(f, y)
    assert paper.features[0].numpy() == pytest.approx(step(c0[0], (unit[0] + unit[1]) / 2), abs=1e-6)
    code = ClusterMemory(c0, 0.1, 0.1, "sequential")
    code.update(f, y)
    assert code.features[0].numpy() == pytest.approx(step(step(c0[0], unit[0]), unit[1]), abs=1e-6)
    assert code.features[1].numpy() == pytest.approx(step(c0[1], unit[2]), abs=1e-6)
    assert not np.allclose(paper.features[0].numpy(), code.features[0].numpy())


@pytest.mark.parametrize("fidelity,switch,expected", [
    ("code", None, "sequential"), ("paper", None, "mean"), ("code", "paper", "mean"), ("paper", "code", "sequential")])
def test_the_mean_update_switch_picks_the_memory_the_run_builds(fidelity, switch, expected):
    method, _ = _method("cluster_contrast", {"update": "mean", "fidelity": fidelity, "mean_update": switch})
    assert method.memory.mode == expected
    hard, _ = _method("cluster_contrast", {"update": "hard", "fidelity": fidelity})
    assert hard.memory.mode == "hard"      # the switch is about "mean" only


@pytest.mark.parametrize("fidelity,switch,beta_code,expected", [
    ("code", None, 0.01, 0.01), ("paper", None, 0.01, 0.1), ("code", "paper", 0.01, 0.1), ("code", None, None, 0.1)])
def test_lp_weight_switch_scales_l_lp(fidelity, switch, beta_code, expected):
    """L_LP in a training step is beta x Eq. 7, beta from the switch: beta_code where the code sets one."""
    method, batch = _method("ise", {"fidelity": fidelity, "lp_weight": switch, "beta_code": beta_code})
    assert method.cfg.lp_beta() == expected
    unit, _ = _method("ise", {"lp_weight": "paper", "beta": 1.0})    # the same weights and batch, beta = 1
    lp, reference = method.training_step(batch)["lp"].item(), unit.training_step(batch)["lp"].item()
    assert reference > 0 and lp == pytest.approx(expected * reference, rel=1e-5)
