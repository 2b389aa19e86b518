"""GCL+'s losses as pure functions of tensors (equation numbers of the TPAMI paper in each docstring)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def image_reconstruction(x, x_ori, x_cycle) -> torch.Tensor:
    """Eq. 1: mean |x - x'_ori| + mean |x - x''_ori| (the target is a constant)."""
    x = x.detach()
    return (x - x_ori).abs().mean() + (x - x_cycle).abs().mean()


def feature_reconstruction(f_id, f_a, f_b) -> torch.Tensor:
    """Eq. 2: mean |f_id - f_a| + mean |f_id - f_b|, f_id a constant."""
    f_id = f_id.detach()
    return (f_id - f_a).abs().mean() + (f_id - f_b).abs().mean()


def lsgan_d(d_real: list, d_fake: list) -> torch.Tensor:
    """D's LSGAN loss for one fake type: sum over scales of mean(D(fake)^2) + mean((D(real) - 1)^2)."""
    return sum((f ** 2).mean() + ((r - 1) ** 2).mean() for r, f in zip(d_real, d_fake))


def lsgan_g(d_fake: list, factor: float = 1.0) -> torch.Tensor:
    """G's LSGAN loss for one fake type: sum over scales of factor x mean((D(fake) - 1)^2) (the released
    ``calc_gen_loss``: factor 2)."""
    return sum(factor * ((f - 1) ** 2).mean() for f in d_fake)


def r1_penalty(d_real: list, x_real: torch.Tensor, per_scale: bool = True) -> torch.Tensor:
    """R1 on the real images (``x_real`` must require grad): the squared gradient with respect to them, summed
    over pixels, averaged over the batch. per_scale (the released ``calc_dis_loss``): of each scale's summed
    outputs, summed over the scales; otherwise of D's outputs summed over every scale."""
    outputs = [r.sum() for r in d_real] if per_scale else [sum(r.sum() for r in d_real)]
    return sum(torch.autograd.grad(out, x_real, create_graph=True)[0].pow(2).flatten(1).sum(1).mean()
               for out in outputs)


def mixup_lambda(alpha: float, rng: np.random.Generator) -> float:
    """Eq. 4: lambda ~ Beta(alpha, alpha), lambda* = max(lambda, 1 - lambda) (>= 0.5: the first image leads)."""
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def contrast(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 8-10: mean over the batch of log(1 + sum_k exp(<q', k>/tau) / exp(<q, pos>/tau)) = CE over [positive,
    negatives] with target 0. ``positive`` is the per-sample positive logit <., .> (B), ``negatives`` the B x K
    negative logits (-inf where a sample has fewer negatives)."""
    logits = torch.cat([positive[:, None], negatives], 1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


def prototype_loss(f: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 12: CE(f P^T, y), f the un-normalised BN-neck feature, no temperature."""
    return F.cross_entropy(f @ prototypes.t(), labels)


def mix_loss_paper(f_mix, prototypes, y_i, y_j, lam: float) -> torch.Tensor:
    """Eq. 13-14: positive f'_mix . p_mix with p_mix = lam p_yi + (1 - lam) p_yj; negatives every prototype
    other than y_i and y_j."""
    p_mix = lam * prototypes[y_i] + (1 - lam) * prototypes[y_j]
    logits = f_mix @ prototypes.t()
    rows = torch.arange(len(f_mix), device=f_mix.device)
    logits = logits.index_put((rows, y_i), torch.tensor(float("-inf"))).index_put((rows, y_j),
                                                                                 torch.tensor(float("-inf")))
    pos = (f_mix * p_mix).sum(1)
    return F.cross_entropy(torch.cat([pos[:, None], logits], 1),
                           torch.zeros(len(f_mix), dtype=torch.long, device=f_mix.device))


def mix_loss_code(f_mix, prototypes, y_i, y_j, lam: float) -> torch.Tensor:
    """The code's ``CrossEntropyOneHot``: lam CE(y_i) + (1 - lam) CE(y_j) over all prototypes."""
    logp = F.log_softmax(f_mix @ prototypes.t(), 1)
    rows = torch.arange(len(f_mix), device=f_mix.device)
    return -(lam * logp[rows, y_i] + (1 - lam) * logp[rows, y_j]).mean()
