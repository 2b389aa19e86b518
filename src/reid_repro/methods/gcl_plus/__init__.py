"""GCL+: Chen, Wang, Lagadec and Brémond, *Learning Invariance from Generated Variance for Unsupervised Person
Re-identification*, TPAMI 2022, and GCL (Chen et al., *Joint Generative and Contrastive Learning for
Unsupervised Person Re-identification*, CVPR 2021), which is GCL+ without D-Mixup and its losses: a setting of
this module (``mixup: none``, ``proto_loss: false``, ``mix_loss_on: false``, the rho eps rule), not a copy.

Networks (§3, §4.2): the identity encoder E_id is the run's ReidNet: f_id = its last feature map pooled into 4
horizontal stripes (C x 4, channel-major as the code's ``view``), f = its BN-neck feature. The structure encoder
E_str encodes a grey body render (the meshes stage's ``render/`` and ``render_<angle>/``), the generator G decodes
(f_id, structure) through AdaIN residual blocks whose scales and biases come from 8 MLPs on f_id (group k of the
MLPs reads the k-th quarter of f_id's channels, as the code's slicing does), and a multi-scale PatchGAN D judges
images. CPU widths are set in params.yaml (``gen_dim``, ``dis_dim``); the code's are ``gen_dim 16``, ``dis_dim 32``.

Losses, per batch (three stages, §4.2; stage 1 is a baseline run, e.g. Cluster-Contrast):
- Rotation (§3.1.1): theta ~ U{45, ..., 315} (``angles: paper``; the code draws U{45, ..., 270}: ``code``),
  x'_ori = G(f_id, E_str(s_ori)), x'_new = G(f_id, E_str(s_theta)), x''_ori = G(E_id(x'_new), E_str(s_ori)).
- Eq. 1 L_img = |x - x'_ori|_1 + |x - x''_ori|_1 (means, as the code).
- Eq. 2 L_feat = |f_id - E_id(x'_new)|_1 + |f_id - E_id(x''_ori)|_1; the code's first term reads E_id(x'_ori)
  (``feat_loss``: code | paper); f_id is a constant.
- Eq. 3/5 adversarial: the paper writes the log loss; the code is LSGAN with an R1 penalty on real images
  (gamma ``r1_gamma``): D minimises sum over scales of mean(D(fake)^2) + mean((D(real) - 1)^2) per fake type
  (the code recomputes the real term and R1 for every fake type, so both weigh the number of fake types),
  G minimises sum over scales of 2 x mean((D(fake) - 1)^2) per fake type (``gen_adv: code``, the
  ``* 2  # LSGAN`` of ``gan.py`` ``MsImageDis.calc_gen_loss``; ``paper``: each term of Eq. 3/5 once). R1
  (``r1: code``, ``calc_dis_loss``/``compute_grad2``): per scale s, the squared gradient of sum D_s(real) with
  respect to the real images, summed over pixels, averaged over the batch, summed over the scales; ``paper`` (the
  paper names no R1; Mescheder et al.'s R1 on D as one function): the squared gradient of D's outputs summed
  over every scale.
- Eq. 4 D-Mixup: lambda ~ Beta(alpha, alpha), lambda* = max(lambda, 1 - lambda), one per batch; partner j = a
  random permutation of the batch; x'_mix = G(lambda* f_id_i + (1 - lambda*) f_id_j, E_str(s_ori_i)).
- Eq. 6 L_gan = lambda_recon (L_img + L_feat) + L_adv + L_adv_mix.
- Eq. 7 memory: M (N x d) starts as the first epoch's normalised features; after every batch
  M[i] <- normalize(beta M[i] + (1 - beta) normalize(f_i)). Clustering each epoch runs on M (Jaccard, DBSCAN).
- Eq. 8-10 rotation contrast, each a cross-entropy over [positive, K negatives] / tau, with the shared negatives
  <f'_new, k>, k = K memory rows of other labels: Eq. 8 positive <f, M[j]> (j a random same-label index), Eq. 9
  <f'_new, f> (paper) or <f'_new, M[i]> (code: ``vi_positive``), Eq. 10 <f'_new, M[j']> (an independent draw).
  ``vi_terms`` 1-3 keeps the first terms (Table 7).
- Eq. 11 prototypes p_a = mean of M over cluster a (once per epoch, not renormalised).
- Eq. 12 L_proto = CE(f P^T, y) on the un-normalised BN-neck f (no temperature).
- Eq. 13-14 L_mix (paper): p_mix = lambda* p_yi + (1 - lambda*) p_yj against every other prototype, on
  f'_mix = E_id(x'_mix); the code's CE with the soft target lambda* onehot(y_i) + (1 - lambda*) onehot(y_j) over
  all prototypes is ``mix_loss: code``.
- Eq. 15 L_contrast = lambda_vi (L_vi + L'_vi + L''_vi) + lambda_mix (L_proto + L_mix); Eq. 16 L = L_gan +
  L_contrast.

Updates per batch, two ``Step``s: D on the detached fakes (its own Adam), then E_id (SGD, nesterov, as §4.2),
E_str, G and the MLPs (one Adam, betas (0, 0.999) as the code) on Eq. 16 with D frozen. Stage 2
(``stage: warmup``): E_id frozen (eval mode, not stepped), Eq. 6 only, no memory; every image is its own label so
the sampler draws shuffled distinct images. The warm-up's generator, structure encoder and discriminator are
written to ``artifacts.pt`` beside the run's model and read by stage-3 runs that start from it.

Variants (Tables 4, 6, 7): ``structure`` rotation | mesh_switch (another batch image's original render) |
gray_switch (DG-Net's grey images instead of renders); ``positive_view`` generated | augmented (x'_new is the
loop's augmented view; no G, no D: Table 6 "Multi"); ``mixup`` disentangled | image (pixel mixup) | none.
F-Mixup (manifold mixup in E_id) is not implemented: its rows show the paper's numbers only.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.clustering import EPS_RULES, dbscan_labels, eps_by_rule, jaccard_distance, relabel
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Fidelity, Method, RunContext, Step, constant_schedule, frozen, step_schedule
from reid_repro.methods.gcl_plus.losses import (contrast, feature_reconstruction, image_reconstruction, lsgan_d,
                                               lsgan_g, mix_loss_code, mix_loss_paper, mixup_lambda, prototype_loss,
                                               r1_penalty)
from reid_repro.methods.gcl_plus.networks import (Discriminator, Generator, StructureEncoder, init_weights,
                                                 load_generator)
from reid_repro.methods.gcl_plus.renders import ANGLES as ANGLES  # re-exported: the angles callers draw
from reid_repro.methods.gcl_plus.renders import grey_image, grey_render, load_renders

SWITCHES = ("feat_loss", "vi_positive", "mix_loss", "angles", "gen_adv", "r1")
STAGES = ("joint", "warmup")
STRUCTURES = ("rotation", "mesh_switch", "gray_switch")
POSITIVE_VIEWS = ("generated", "augmented")
MIXUPS = ("disentangled", "image", "none")
GEN, DIS = "gen", "dis"                # the generator's and the discriminator's optimisers


@dataclasses.dataclass(frozen=True)
class GclPlusConfig(Fidelity, LoopConfig):
    SWITCHES = SWITCHES

    stage: str              # joint (stage 3, Eq. 16) | warmup (stage 2: E_id frozen, Eq. 6)
    structure: str          # rotation | mesh_switch | gray_switch (Table 4)
    positive_view: str      # generated (x'_new from G) | augmented (Table 6 "Multi": no GAN)
    mixup: str              # disentangled (D-Mixup, Eq. 4) | image | none (GCL)
    alpha: float            # Beta(alpha, alpha) of D-Mixup (0.6; Fig. 5)
    vi_terms: int           # how many of Eq. 8-10 (Table 7)
    proto_loss: bool        # Eq. 12
    mix_loss_on: bool       # Eq. 14
    tau: float              # rotation contrast temperature (0.04; Fig. 6)
    memory_momentum: float  # beta of Eq. 7 (0.2; Fig. 6)
    negatives: int          # K negatives of Eq. 8-10 (8192; all of them when fewer)
    lambda_recon: float     # Eq. 6 (5)
    lambda_vi: float        # Eq. 15 (1)
    lambda_mix: float       # Eq. 15 (1)
    gan_weight: float       # weight of L_adv and L_adv_mix (1)
    r1_gamma: float         # R1 penalty on real images (code: 0.01)
    g_lr: float             # Adam of E_str, G, MLPs (1e-4)
    d_lr: float             # Adam of D (1e-4)
    adam_beta1: float       # code: 0.0
    adam_beta2: float       # 0.999
    g_weight_decay: float   # 5e-4
    id_optimizer: str       # sgd (§4.2: SGD, momentum 0.9, nesterov) | adam, at the loop's lr
    eps_rule: str           # fixed (the loop's eps; GCL+) | quantile (GCL: rho, recomputed every epoch)
    rho: float
    gen_dim: int            # E_str's first width; the decoder works at 8 x gen_dim (code: 16)
    mlp_dim: int            # AdaIN MLPs' hidden width (code: 512)
    dis_dim: int            # D's first width (code: 32)
    meshes_root: str        # where the meshes stage wrote <dataset>/render{,_45,...}/
    fidelity: str           # code (the official code's computation) | paper (the equations)
    feat_loss: typing.Optional[str]     # each switch: code | paper | null (= fidelity); module docstring
    vi_positive: typing.Optional[str]
    mix_loss: typing.Optional[str]
    angles: typing.Optional[str]
    gen_adv: typing.Optional[str]
    r1: typing.Optional[str]

    def __post_init__(self):
        super().__post_init__()
        self.check_fidelity()
        choices = {"stage": STAGES, "structure": STRUCTURES, "positive_view": POSITIVE_VIEWS, "mixup": MIXUPS,
                   "eps_rule": EPS_RULES, "id_optimizer": ("sgd", "adam")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r}; expected one of {allowed}")
        checks = {"alpha": self.alpha > 0, "vi_terms": self.vi_terms in (1, 2, 3), "tau": self.tau > 0,
                  "memory_momentum": 0 <= self.memory_momentum < 1, "negatives": self.negatives >= 1,
                  "rho": 0 < self.rho < 1, "r1_gamma": self.r1_gamma >= 0,
                  "adam_beta1": 0 <= self.adam_beta1 < 1, "adam_beta2": 0 < self.adam_beta2 < 1,
                  "gen_dim": self.gen_dim >= 2, "mlp_dim": self.mlp_dim >= 2, "dis_dim": self.dis_dim >= 2,
                  "instances": self.instances == 1}
        for key, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r} is out of range"
                                     + (" (GCL+ draws distinct images: instances 1)" if key == "instances" else ""))


# ---- the method -------------------------------------------------------------------------------------------------

class GclPlus(Method):
    config = GclPlusConfig
    views = ("plain", "base")          # x (un-augmented, as the code) and the loop's augmentation (Multi)
    distributed = False
    distributed_why = "the memory, the batch's mixup partners and the discriminator step are per process"

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        train_table, init_dir = self.context.table("gcl_plus"), self.context.init_dir
        self.gan = cfg.positive_view == "generated"
        self.warmup = cfg.stage == "warmup"
        if self.warmup and not self.gan:
            raise ReidReproError("gcl_plus: stage warmup trains the generator; positive_view must be generated")
        if not self.gan and cfg.mixup == "disentangled":
            raise ReidReproError("gcl_plus: mixup disentangled (D-Mixup) needs the generator (positive_view: "
                                 "generated); without it use image or none")
        self.num_train = len(train_table)
        self.rng = np.random.default_rng(cfg.seed)
        if self.warmup:
            model.requires_grad_(False)                 # stage 2: E_id is frozen (gradients still pass through it)
        self.renders: torch.Tensor | None = None
        if self.gan:
            with torch.no_grad():
                probe = model.eval().body(torch.zeros(1, 3, 64, 32, device=device))
            id_dim = probe.shape[1] * 4
            self.gen = nn.ModuleDict({"str": StructureEncoder(cfg.gen_dim),
                                      "dec": Generator(cfg.gen_dim, id_dim, cfg.mlp_dim)}).to(device)
            init_weights(self.gen, "kaiming")
            self.dis = Discriminator(cfg.dis_dim).to(device)
            init_weights(self.dis, "normal")
            saved = Path(init_dir) / "artifacts.pt" if init_dir is not None else None
            state = torch.load(saved, map_location=device, weights_only=True) if saved and saved.is_file() else {}
            if "gen" in state:
                load_generator(self.gen, self.dis, state, saved)
            elif not self.warmup:
                raise ReidReproError(f"{saved}: no generator; a stage-3 GCL+ run starts from a stage-2 warm-up's "
                                     "artifacts.pt (its init names the warm-up)")
            if cfg.structure != "gray_switch":
                self.render_dir = Path(cfg.meshes_root) / str(train_table["dataset"].iat[0])
                self.render_names = [Path(p).name for p in train_table["path"]]
                if not (self.render_dir / "render").is_dir():
                    raise ReidReproError(f"{self.render_dir / 'render'}: missing; GCL+ reads the meshes stage's "
                                         "structure renders of its training set (dvc repro meshes@<dataset>)")
        self.memory: torch.Tensor | None = None
        self.prototypes: torch.Tensor | None = None
        self.labels_t: torch.Tensor | None = None
        self._pseudo: np.ndarray | None = None
        self.eps: float | None = None

    # -- the loop's hooks --

    def networks(self) -> list[nn.Module]:
        return [self.model] + ([self.gen, self.dis] if self.gan else [])

    def optimizers(self) -> dict:
        cfg = self.cfg
        opts = {}
        if not self.warmup:     # E_id: the loop's schedule (the code: x0.1 after joint epoch 10, no warm-up)
            params = [p for p in self.model.parameters() if p.requires_grad]
            opt = (torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
                   if cfg.id_optimizer == "sgd" else torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay))
            opts["model"] = (opt, step_schedule(opt, cfg))
        if self.gan:
            # G and D at a constant lr in both stages, as the released code runs them: its MultiStepLR (milestone
            # 10) is never stepped in stage 2 and is rebuilt in stage 3 with last_epoch = the stage-2 iteration
            # count, past its milestone (GCL trainer.py L44-61, L226-227; examples/main.py L313-314)
            betas = (cfg.adam_beta1, cfg.adam_beta2)
            gen = torch.optim.Adam(self.gen.parameters(), lr=cfg.g_lr, betas=betas, weight_decay=cfg.g_weight_decay)
            dis = torch.optim.Adam(self.dis.parameters(), lr=cfg.d_lr, betas=betas, weight_decay=cfg.g_weight_decay)
            opts[GEN], opts[DIS] = (gen, constant_schedule(gen)), (dis, constant_schedule(dis))
        return opts

    @property
    def encoder_optimizers(self) -> tuple[str, ...]:
        """The history's loss: E_id's and the generator's steps, not D's."""
        return (() if self.warmup else ("model",)) + ((GEN,) if self.gan else ())

    def pseudo_labels(self, epoch, features, pids) -> np.ndarray:
        """Stage 2: every image its own label (distinct shuffled images). Stage 3: the memory (Eq. 7), initialised
        with the first epoch's features, clustered with the loop's Jaccard + DBSCAN (eps fixed, or GCL's rho rule
        every epoch)."""
        cfg = self.cfg
        if self.warmup:
            labels = np.arange(len(features))
        else:
            if self.memory is None:
                self.memory = F.normalize(torch.as_tensor(features, dtype=torch.float32, device=self.device), dim=1)
            if cfg.labels == "ground_truth":
                labels = relabel(pids)
            else:
                dist = jaccard_distance(self.units(self.memory.cpu().numpy()), k1=cfg.k1, k2=cfg.k2)
                self.eps = eps_by_rule(dist, cfg.eps_rule, cfg.eps, cfg.rho)
                labels = relabel(self.per_image(dbscan_labels(dist, self.eps, cfg.min_samples)))
        self._pseudo = labels
        return labels

    @torch.no_grad()
    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        self.labels_t = torch.as_tensor(np.array(labels), device=self.device)
        if self.warmup:
            return
        num = int(labels.max()) + 1 if (labels >= 0).any() else 0
        keep = self.labels_t >= 0
        sums = torch.zeros(num, self.memory.shape[1], device=self.device).index_add_(
            0, self.labels_t[keep], self.memory[keep])
        counts = torch.bincount(self.labels_t[keep], minlength=num).clamp_min(1)
        self.prototypes = sums / counts[:, None]                                 # Eq. 11, not renormalised

    # -- the pieces of a step --

    def identity(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_id: the last map pooled into 4 stripes, C x 4 channel-major; f: the BN-neck feature)."""
        fmap, _, neck = self.model.map_features(x)
        return F.adaptive_avg_pool2d(fmap.float(), (4, 1)).flatten(1), neck

    def structures(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(s_ori, s_new, the angles drawn) of the batch, per ``structure``."""
        index = batch["index"]
        n = len(index)
        if self.cfg.structure == "gray_switch":
            grey = grey_image(batch["views"][0])
            return grey, grey[torch.as_tensor(self.rng.permutation(n), device=self.device)], torch.zeros(n)
        if self.renders is None:        # decoded once, at the training images' size
            self.renders = load_renders(self.render_dir, self.render_names, *batch["views"][0].shape[2:])
        renders = self.renders[index.cpu()]
        s_ori = grey_render(renders[:, 0:1]).to(self.device)
        if self.cfg.structure == "mesh_switch":
            return s_ori, s_ori[torch.as_tensor(self.rng.permutation(n), device=self.device)], torch.zeros(n)
        top = 7 if self.cfg.follows("angles") == "paper" else 6            # code: randint(1, 7) * 45 -> 45..270
        k = torch.as_tensor(self.rng.integers(1, top + 1, size=n))
        s_new = grey_render(renders[torch.arange(n), k][:, None]).to(self.device)
        return s_ori, s_new, k * 45

    def generate(self, batch: dict) -> dict:
        """The generative module's forward (§3.1): everything the losses of either stage read."""
        cfg = self.cfg
        x = batch["views"][0]
        out = {"x": x}
        with torch.set_grad_enabled(not self.warmup):
            f_id, f = self.identity(x)
        out.update(f_id=f_id, f=f)
        s_ori, s_new, out["angles"] = self.structures(batch)
        c_ori, c_new = self.gen["str"](s_ori), self.gen["str"](s_new)
        out["x_ori"] = self.gen["dec"](f_id, c_ori)
        out["x_new"] = self.gen["dec"](f_id, c_new)
        f_id_new, out["f_new"] = self.identity(out["x_new"])
        out["x_cycle"] = self.gen["dec"](f_id_new, c_ori)
        f_id_cycle, _ = self.identity(out["x_cycle"])
        f_id_ori, _ = self.identity(out["x_ori"]) if self.cfg.follows("feat_loss") == "code" else (f_id_new, None)
        out["feat_pair"] = (f_id_ori, f_id_cycle)
        if cfg.mixup == "disentangled":
            out["lam"] = mixup_lambda(cfg.alpha, self.rng)
            out["partner"] = torch.as_tensor(self.rng.permutation(len(x)), device=self.device)
            f_mix_id = out["lam"] * f_id + (1 - out["lam"]) * f_id[out["partner"]]
            out["x_mix"] = self.gen["dec"](f_mix_id, c_ori)
        return out

    def _fakes(self, out: dict) -> list[torch.Tensor]:
        return [out[k] for k in ("x_ori", "x_new", "x_cycle", "x_mix") if k in out]

    def discriminator_loss(self, out: dict) -> torch.Tensor:
        """D's LSGAN loss over every fake type (detached) with the R1 penalty, weighted as the code (the real
        term and R1 once per fake type)."""
        fakes = self._fakes(out)
        real = out["x"].detach().requires_grad_(self.cfg.r1_gamma > 0)
        d_real = self.dis(real)
        loss = sum(lsgan_d(d_real, self.dis(f.detach())) for f in fakes)
        if self.cfg.r1_gamma > 0:
            per_scale = self.cfg.follows("r1") == "code"
            loss = loss + len(fakes) * self.cfg.r1_gamma * r1_penalty(d_real, real, per_scale)
        return self.cfg.gan_weight * loss

    def gan_losses(self, out: dict) -> dict[str, torch.Tensor]:
        """Eq. 6 for G (and E_id in stage 3), D frozen."""
        cfg = self.cfg
        with frozen(self.dis):
            factor = 2.0 if cfg.follows("gen_adv") == "code" else 1.0            # calc_gen_loss's "* 2"
            adv = {k: lsgan_g(self.dis(out[k]), factor) for k in ("x_ori", "x_new", "x_cycle", "x_mix") if k in out}
        losses = {"img": cfg.lambda_recon * image_reconstruction(out["x"], out["x_ori"], out["x_cycle"]),
                  "feat": cfg.lambda_recon * feature_reconstruction(out["f_id"], *out["feat_pair"]),
                  "adv": cfg.gan_weight * sum(v for k, v in adv.items() if k != "x_mix")}
        if "x_mix" in adv:
            losses["adv_mix"] = cfg.gan_weight * adv["x_mix"]
        return losses

    def contrast_losses(self, batch: dict, out: dict) -> dict[str, torch.Tensor]:
        """Eq. 8-15 on the memory and this epoch's prototypes."""
        cfg = self.cfg
        index, labels = batch["index"], self.labels_t[batch["index"]]
        if bool((labels < 0).any()):
            raise ReidReproError("gcl_plus: a batch holds an outlier (label -1); the sampler draws clustered images only")
        f = out["f"]
        if self.gan:
            f_new = out["f_new"]
        else:
            f_new = self.identity(batch["views"][1])[1]                    # Multi: x'_new = the augmented view
        fn, fnew = F.normalize(f, dim=1), F.normalize(f_new, dim=1)
        mem = self.memory
        same = labels[:, None] == self.labels_t[None, :]                    # B x N
        negatives = self._negatives(fnew @ mem.t(), same)
        pos_j, pos_j2 = self._same_label_rows(same), self._same_label_rows(same)
        terms = [contrast(fn, (fn * mem[pos_j]).sum(1), negatives, cfg.tau)]                  # Eq. 8
        if cfg.vi_terms >= 2:
            other = mem[index] if cfg.follows("vi_positive") == "code" else fn
            terms.append(contrast(fnew, (fnew * other).sum(1), negatives, cfg.tau))          # Eq. 9
        if cfg.vi_terms >= 3:
            terms.append(contrast(fnew, (fnew * mem[pos_j2]).sum(1), negatives, cfg.tau))    # Eq. 10
        losses = {"vi": cfg.lambda_vi * sum(terms)}
        if cfg.proto_loss:
            losses["proto"] = cfg.lambda_mix * prototype_loss(f, self.prototypes, labels)    # Eq. 12
        if cfg.mix_loss_on and cfg.mixup != "none":
            if cfg.mixup == "disentangled":
                lam, partner = out["lam"], out["partner"]
                f_mix = self.identity(out["x_mix"])[1]
            else:                                                            # pixel mixup of x_i and x_j
                lam = mixup_lambda(cfg.alpha, self.rng)
                partner = torch.as_tensor(self.rng.permutation(len(f)), device=self.device)
                x = batch["views"][0]
                f_mix = self.identity(lam * x + (1 - lam) * x[partner])[1]
            loss = mix_loss_paper if cfg.follows("mix_loss") == "paper" else mix_loss_code
            losses["mix"] = cfg.lambda_mix * loss(f_mix, self.prototypes, labels, labels[partner], lam)  # Eq. 14
        return losses

    def _same_label_rows(self, same: torch.Tensor) -> torch.Tensor:
        """A random memory row of each sample's own label (it may be the sample itself, as the code's)."""
        scores = torch.as_tensor(self.rng.random(same.shape), dtype=torch.float32, device=self.device)
        return scores.masked_fill(~same, -1.0).argmax(1)

    def _negatives(self, logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """B x K negative logits: K random memory rows of other labels per sample (all of them when fewer; the
        rest -inf). Outliers' rows count as negatives, as in the code."""
        k = min(self.cfg.negatives, logits.shape[1])
        scores = torch.as_tensor(self.rng.random(logits.shape), dtype=torch.float32, device=self.device)
        pick = scores.masked_fill(same, -1.0).topk(k, dim=1).indices
        chosen = logits.gather(1, pick)
        return chosen.masked_fill(same.gather(1, pick), float("-inf"))

    def training_step(self, batch: dict):
        """Without the generator (Table 6 "Multi"): the contrastive losses, one update. With it: D's step on the
        detached fakes, then E_id's and G's step on Eq. 16 (stage 2: Eq. 6) against the updated, frozen D."""
        if self.warmup:
            self.model.eval()                                             # E_id frozen: no BN update either
        if not self.gan:
            f = self.identity(batch["views"][0])[1]
            self._last_batch = (batch["index"], f)
            return self.contrast_losses(batch, {"f": f})
        return self._gan_steps(batch)

    def _gan_steps(self, batch: dict):
        out = self.generate(batch)
        self._last_batch = None if self.warmup else (batch["index"], out["f"])
        yield Step({"disc": self.discriminator_loss(out)}, (DIS,))
        losses = self.gan_losses(out)
        if not self.warmup:
            losses.update(self.contrast_losses(batch, out))
        yield Step(losses, self.encoder_optimizers)

    @torch.no_grad()
    def after_step(self) -> None:
        """Eq. 7 on the batch's memory rows (stage 3), with the features of the images before this update."""
        last = getattr(self, "_last_batch", None)
        if last is None:
            return
        index, f = last
        beta = self.cfg.memory_momentum
        self.memory[index] = F.normalize(beta * self.memory[index] + (1 - beta) * F.normalize(f.detach(), dim=1),
                                         dim=1)
        self._last_batch = None

    def epoch_metrics(self) -> dict[str, float]:
        return {"eps": self.eps} if self.eps is not None else {}

    def artifacts(self) -> dict:
        """The generator (E_str, G, MLPs) and D, kept as the run's artifacts.pt: read by stage-3 runs and
        `reid-repro generate`."""
        return {"gen": self.gen.state_dict(), "dis": self.dis.state_dict()} if self.gan else {}

    def state_dict(self) -> dict:
        return {"gen": self.gen.state_dict() if self.gan else None, "dis": self.dis.state_dict() if self.gan else None,
                "memory": self.memory, "eps": self.eps, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if self.gan:
            self.gen.load_state_dict(state["gen"])
            self.dis.load_state_dict(state["dis"])
        self.memory, self.eps = state["memory"], state["eps"]
        self.rng.bit_generator.state = state["rng"]


METHOD = GclPlus

