"""GCL+ and GCL (methods/gcl_plus/) against hand computations: each loss of Eq. 1-14, D-Mixup's lambda*, the
angles drawn, the R1 penalty on a toy discriminator; stage 2 leaves the identity encoder unchanged, the
discriminator's step changes only the discriminator, a stage-3 step gives finite losses and a gradient on every
trainable parameter, and a killed stage-3 run on the smoke world resumes to the same metrics."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reid_repro.assemble import validate_params
from reid_repro.config import RunSpec, load_method_config, load_params
from reid_repro.errors import ReidReproError
from reid_repro.methods import gcl_plus as G
from reid_repro.methods.base import RunContext
from reid_repro.models import ReidNet
from reid_repro.training.loop import run_steps

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")


def _cfg(**overrides):
    return load_method_config(PARAMS, "gcl_plus", G.GclPlusConfig, {"batch_ids": 4, **overrides})


def _renders(root: Path, names, h=64, w=32, seed=0):
    rng = np.random.default_rng(seed)
    for folder in ["render"] + [f"render_{a}" for a in G.ANGLES]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / folder / n)


def _method(tmp_path, n=8, init_dir=None, **overrides):
    """GCL+ on ReidNet-18 with n training images (renders random) in n/2 clusters of 2, and a batch of 4."""
    names = [f"{i:04d}_c1s1_000000_00.png" for i in range(n)]
    _renders(tmp_path / "meshes" / "toy", names)
    table = pd.DataFrame({"path": names, "dataset": "toy", "pid": np.arange(n) // 2, "camid": np.arange(n) % 2})
    torch.manual_seed(0)
    model = ReidNet("resnet18").train()
    cfg = _cfg(meshes_root=str(tmp_path / "meshes"), **overrides)
    if cfg.stage == "joint" and cfg.positive_view == "generated" and init_dir is None:
        warm = G.GclPlus(_cfg(meshes_root=str(tmp_path / "meshes"), stage="warmup"), ReidNet("resnet18"),
                         torch.device("cpu"), RunContext(train_table=table))
        init_dir = tmp_path / "warm"
        init_dir.mkdir(exist_ok=True)
        torch.save(warm.artifacts(), init_dir / "artifacts.pt")
    method = G.GclPlus(cfg, model, torch.device("cpu"), RunContext(train_table=table, init_dir=init_dir))
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(n, model.dim, generator=g), dim=1).numpy()
    labels = method.pseudo_labels(0, feats, table["pid"].to_numpy()) if cfg.stage == "warmup" else table["pid"].to_numpy()
    if cfg.stage == "joint":
        method.memory = torch.as_tensor(feats)
    method.on_epoch_start(0, feats, labels, table["camid"].to_numpy())
    x = torch.randn(4, 3, 64, 32, generator=g)
    batch = {"images": x, "views": [x, x + 0.1], "index": torch.tensor([0, 2, 4, 6]),
             "labels": torch.as_tensor(labels)[[0, 2, 4, 6]], "cams": torch.tensor([0, 0, 0, 0])}
    return method, batch


def test_the_settings_are_valid_and_checked():
    validate_params(PARAMS)
    for override, key in (({"stage": "stage3"}, "stage"), ({"vi_terms": 4}, "vi_terms"),
                          ({"instances": 4}, "instances"), ({"mix_loss": "both"}, "mix_loss")):
        with pytest.raises(ReidReproError, match=key):
            _cfg(**override)


# ---- the losses on tiny tensors ---------------------------------------------------------------------------------

def test_reconstruction_losses_are_mean_absolute_errors():
    x, a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 5.0]])
    assert G.image_reconstruction(x, a, b).item() == pytest.approx(0.5 + 1.5)            # Eq. 1
    assert G.feature_reconstruction(x, a, b).item() == pytest.approx(0.5 + 1.5)          # Eq. 2


def test_lsgan_terms_and_r1_on_a_toy_discriminator():
    real, fake = [torch.tensor([1.5, 0.5])], [torch.tensor([0.2, -0.4])]
    assert G.lsgan_d(real, fake).item() == pytest.approx(np.mean([0.04, 0.16]) + np.mean([0.25, 0.25]))
    assert G.lsgan_g(fake).item() == pytest.approx(np.mean([0.64, 1.96]))
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])                                          # D(x) = <w, x>: grad = w
    x = torch.randn(3, 2, 2, requires_grad=True)
    r1 = G.r1_penalty([(x * w).sum((1, 2))], x)
    assert r1.item() == pytest.approx(float((w ** 2).sum()))


# ---- issue 37: the released adversarial terms (chenhao2345/GCL-extended gcl/models/gan.py, MsImageDis) -----------
# Worked by hand: a two-scale D whose scales are linear, D_1(x) = <w1, x> and D_2(x) = <w2, x>, so the input
# gradient of each scale's summed output is w1 or w2 for every image. Released R1 (calc_dis_loss: per scale,
# compute_grad2(out1, x).mean(), summed): |w1|^2 + |w2|^2 = 14.25 + 6 = 20.25; the paper reading (R1 of D's
# summed outputs): |w1 + w2|^2 = |(3, -2, -0.5, 4)|^2 = 29.25; one scale: both 14.25. Released G term
# (calc_gen_loss: mean((out0 - 1)^2) * 2 per scale) on outputs (0.2, -0.4) and (0.5,): 2 x 1.3 + 2 x 0.25 = 3.1;
# each term once: 1.55.
W1, W2 = torch.tensor([[1.0, -2.0], [0.5, 3.0]]), torch.tensor([[2.0, 0.0], [-1.0, 1.0]])


@pytest.mark.parametrize("scales, per_scale, expected", [
    (1, True, 14.25), (1, False, 14.25), (2, True, 20.25), (2, False, 29.25)])
def test_r1_per_scale_is_the_released_form_on_a_linear_discriminator(scales, per_scale, expected):
    x = torch.randn(3, 2, 2, requires_grad=True)
    outs = [(x * w).sum((1, 2)) for w in (W1, W2)[:scales]]
    assert G.r1_penalty(outs, x, per_scale).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("factor, expected", [(2.0, 3.1), (1.0, 1.55)])
def test_the_generator_lsgan_term_is_doubled_as_released(factor, expected):
    fake = [torch.tensor([0.2, -0.4]), torch.tensor([0.5])]
    assert G.lsgan_g(fake, factor).item() == pytest.approx(expected, rel=1e-6)


def _released_dis_and_gen(dis, x, fakes, lam, gan_w):
    """MsImageDis.calc_dis_loss / calc_gen_loss and DGNet_Trainer.dis_update's sum over the fake types, transcribed
    for the CPU (lsgan; each call recomputes D(real) and its R1)."""
    def compute_grad2(d_out, x_in):
        grad = torch.autograd.grad(outputs=d_out.sum(), inputs=x_in, create_graph=True, retain_graph=True,
                                   only_inputs=True)[0]
        return grad.pow(2).view(x_in.size(0), -1).sum(1)

    def calc_dis_loss(input_fake, input_real):
        input_real.requires_grad_()
        loss, reg = 0, 0
        for out0, out1 in zip(dis(input_fake), dis(input_real)):
            loss += torch.mean((out0 - 0) ** 2) + torch.mean((out1 - 1) ** 2)
            reg += lam * compute_grad2(out1, input_real).mean()
        return loss + reg

    def calc_gen_loss(input_fake):
        return sum(torch.mean((out0 - 1) ** 2) * 2 for out0 in dis(input_fake))

    d_total = sum(gan_w * calc_dis_loss(f.detach(), x) for f in fakes)
    return d_total, [gan_w * calc_gen_loss(f) for f in fakes]


def test_the_adversarial_terms_match_the_released_discriminator_and_generator(tmp_path):
    """Our two-scale D (code reading) on one batch of real and four fake types: D's loss and its gradient on every
    D parameter, and G's adversarial terms, against the transcription above."""
    method, _ = _method(tmp_path)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 64, 32, generator=g)
    out = {"x": x, **{k: torch.randn(4, 3, 64, 32, generator=g, requires_grad=True)
                      for k in ("x_ori", "x_new", "x_cycle", "x_mix")}}
    fakes = [out[k] for k in ("x_ori", "x_new", "x_cycle", "x_mix")]
    import dataclasses

    method.cfg = cfg = dataclasses.replace(method.cfg, r1_gamma=1e9)    # so that R1 weighs (initial D: ~1e-9)
    assert cfg.follows("r1") == "code" and cfg.follows("gen_adv") == "code" and len(method.dis(x)) >= 2
    d_ours = method.discriminator_loss(out)
    d_released, g_released = _released_dis_and_gen(method.dis, x.clone(), fakes, cfg.r1_gamma, cfg.gan_weight)
    assert d_ours.item() == pytest.approx(d_released.item(), rel=1e-6)
    params = list(method.dis.parameters())
    for a, b in zip(torch.autograd.grad(d_ours, params), torch.autograd.grad(d_released, params)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with G.frozen(method.dis):
        adv = {k: G.lsgan_g(method.dis(out[k]), 2.0) for k in ("x_ori", "x_new", "x_cycle", "x_mix")}
    assert (cfg.gan_weight * sum(v for k, v in adv.items() if k != "x_mix")).item() == pytest.approx(
        sum(g_released[:3]).item(), rel=1e-6)
    assert (cfg.gan_weight * adv["x_mix"]).item() == pytest.approx(g_released[3].item(), rel=1e-6)


def test_gen_adv_and_r1_switches_change_the_terms_as_worked_above(tmp_path):
    """One generated batch through the method under each switch: G's adversarial terms halve with gen_adv: paper,
    and D's loss with r1: paper moves by gan_weight x r1_gamma x 4 fake types x (R1 of the summed outputs - the
    per-scale R1)."""
    import dataclasses

    method, batch = _method(tmp_path)
    out = method.generate(batch)
    code = dataclasses.replace(method.cfg, r1_gamma=1e9)     # an initial D's input gradients are ~1e-5: lift R1
    losses = {}
    for switch in ("code", "paper"):
        method.cfg = dataclasses.replace(code, gen_adv=switch, r1=switch)
        losses[switch] = ({k: v.item() for k, v in method.gan_losses(out).items()},
                          method.discriminator_loss(out).item())
    for term in ("adv", "adv_mix"):
        assert losses["code"][0][term] == pytest.approx(2 * losses["paper"][0][term], rel=1e-6)
    assert losses["code"][0]["img"] == losses["paper"][0]["img"]
    real = out["x"].detach().requires_grad_(True)
    d_real = method.dis(real)
    gap = (G.r1_penalty(d_real, real, per_scale=False) - G.r1_penalty(d_real, real, per_scale=True)).item()
    expected = code.gan_weight * 4 * code.r1_gamma * gap
    assert abs(expected) > 1e-3 * losses["code"][1]
    assert losses["paper"][1] - losses["code"][1] == pytest.approx(expected, rel=1e-3)


def test_d_mixup_lambda_is_the_larger_of_a_beta_draw():
    rng = np.random.default_rng(0)
    lam = np.array([G.mixup_lambda(0.6, rng) for _ in range(4000)])
    assert (lam >= 0.5).all() and (lam <= 1).all()
    draws = np.random.default_rng(0).beta(0.6, 0.6, 4000)
    np.testing.assert_allclose(lam, np.maximum(draws, 1 - draws))


def test_the_contrast_is_log_one_plus_negatives_over_positive():
    pos, neg = torch.tensor([0.5, 0.1]), torch.tensor([[0.2, -0.3], [0.4, float("-inf")]])
    tau = 0.1
    hand = [np.log(1 + (np.exp(0.2 / tau) + np.exp(-0.3 / tau)) / np.exp(0.5 / tau)),
            np.log(1 + np.exp(0.4 / tau) / np.exp(0.1 / tau))]
    assert G.contrast(None, pos, neg, tau).item() == pytest.approx(np.mean(hand), rel=1e-5)   # Eq. 8-10


def test_prototype_and_mix_losses_follow_eq_12_and_14():
    P = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 0.0]])
    f = torch.tensor([[2.0, 1.0]])
    y_i, y_j, lam = torch.tensor([0]), torch.tensor([1]), 0.7
    logits = (f @ P.t())[0].numpy()
    assert G.prototype_loss(f, P, y_i).item() == pytest.approx(-np.log(np.exp(logits[0]) / np.exp(logits).sum()))
    p_mix = 0.7 * P[0] + 0.3 * P[1]
    pos = float(f[0] @ p_mix)
    neg = np.exp(logits[2]) + np.exp(logits[3])                                          # all but y_i, y_j
    assert G.mix_loss_paper(f, P, y_i, y_j, lam).item() == pytest.approx(np.log(1 + neg / np.exp(pos)), rel=1e-5)
    logp = logits - np.log(np.exp(logits).sum())
    assert G.mix_loss_code(f, P, y_i, y_j, lam).item() == pytest.approx(-(0.7 * logp[0] + 0.3 * logp[1]), rel=1e-5)


# ---- the method -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("angles, top", [("paper", 315), ("code", 270)])
def test_rotation_angles_are_drawn_from_45_to_the_last_angle_inclusive(tmp_path, angles, top):
    method, batch = _method(tmp_path, stage="warmup", angles=angles)
    seen = set()
    for _ in range(60):
        seen |= set(method.structures(batch)[2].tolist())
    assert seen == set(range(45, top + 1, 45))


def test_the_rotated_structure_is_the_render_at_that_angle(tmp_path):
    method, batch = _method(tmp_path, stage="warmup")
    s_ori, s_new, angles = method.structures(batch)
    for row, i in enumerate(batch["index"].tolist()):
        k = G.ANGLES.index(int(angles[row])) + 1
        torch.testing.assert_close(s_new[row, 0], G.grey_render(method.renders[i, k]))
        torch.testing.assert_close(s_ori[row, 0], G.grey_render(method.renders[i, 0]))


def test_stage_2_leaves_the_identity_encoder_unchanged_and_d_step_touches_only_d(tmp_path):
    method, batch = _method(tmp_path, stage="warmup")
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    assert set(opts) == {"gen", "dis"} and method.encoder_optimizers == ("gen",)
    before = {k: v.clone() for k, v in method.model.state_dict().items()}                # weights and BN stats
    gen_before = [p.clone() for p in method.gen.parameters()]
    steps = method.training_step(batch)
    run_steps(iter([next(steps)]), opts, defaultdict(float))                             # D's step
    assert all(torch.equal(p, q) for p, q in zip(method.gen.parameters(), gen_before))
    run_steps(steps, opts, defaultdict(float))                                           # G's step
    assert any(not torch.equal(p, q) for p, q in zip(method.gen.parameters(), gen_before))
    for k, v in method.model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)


def test_a_stage_3_step_has_finite_losses_and_a_gradient_on_every_trainable_parameter(tmp_path):
    method, batch = _method(tmp_path)
    steps = method.training_step(batch)
    d_step = next(steps)
    assert set(d_step.losses) == {"disc"} and d_step.optimizers == ("dis",)
    d_step_loss = sum(d_step.losses.values())
    d_step_loss.backward()
    assert all(p.grad is not None for p in method.dis.parameters())
    assert all(p.grad is None for p in method.gen.parameters())                         # fakes are detached
    for p in method.dis.parameters():
        p.grad = None
    g_step = next(steps)
    assert set(g_step.losses) == {"img", "feat", "adv", "adv_mix", "vi", "proto", "mix"}
    assert all(torch.isfinite(v) for v in g_step.losses.values())
    sum(g_step.losses.values()).backward()
    missing = [n for n, p in [*method.model.named_parameters(), *method.gen.named_parameters()]
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, missing[:5]
    assert all(p.grad is None for p in method.dis.parameters())                          # D frozen in G's step
    rows = method.memory[batch["index"]].clone()
    method.after_step()
    assert not torch.equal(rows, method.memory[batch["index"]])                         # Eq. 7
    np.testing.assert_allclose(method.memory.norm(dim=1).numpy(), 1.0, rtol=1e-5)


def test_gcl_is_a_setting_without_mixup_and_its_losses(tmp_path):
    method, batch = _method(tmp_path, mixup="none", proto_loss=False, mix_loss_on=False)
    steps = method.training_step(batch)
    next(steps)
    assert set(next(steps).losses) == {"img", "feat", "adv", "vi"}


def test_multi_without_a_generator_is_one_update_of_the_identity_encoder(tmp_path):
    method, batch = _method(tmp_path, positive_view="augmented", mixup="image")
    assert set(method.optimizers()) == {"model"}
    losses = method.training_step(batch)
    assert isinstance(losses, dict) and set(losses) == {"vi", "proto", "mix"}
    with pytest.raises(ReidReproError, match="D-Mixup"):
        _method(tmp_path, positive_view="augmented")


def test_a_stage_3_run_needs_its_warm_up(tmp_path):
    with pytest.raises(ReidReproError, match="artifacts.pt: no generator"):
        _method(tmp_path, init_dir=tmp_path / "nowhere")


# ---- on the loop ------------------------------------------------------------------------------------------------

def test_warm_up_then_a_killed_stage_3_run_resumes_to_the_same_metrics(world, tmp_path):
    from reid_repro.data.manifest import prepare
    from reid_repro.training.run import execute

    out, _ = world
    prepare("market1501", out / "market", tmp_path / "manifests" / "market", name="market")   # as prepare@market
    table = pd.read_parquet(tmp_path / "manifests" / "market" / "manifest.parquet")
    _renders(tmp_path / "meshes" / "market", [Path(p).name for p in table.loc[table["split"] == "train", "path"]])
    params = load_params(ROOT / "params.yaml")
    params["data"] = {"market": {"root": str(out / "market"), "manifest": str(tmp_path / "manifests" / "market"),
                                 "format": "market1501"}}
    params["sources"] = ["market"]              # the one stand-in these runs have
    params["meshes"] = {}
    params["gcl_plus"]["meshes_root"] = str(tmp_path / "meshes")
    params["gcl_plus"]["loop"].update(epochs=2, iters=2, batch_ids=4, lr_step=1, k1=4, k2=2, labels="ground_truth")
    spec = dict(method="gcl_plus", base="gcl_plus", dataset="market", test="market", paper="gcl_plus", table="6",
                row="Rot+D-Mixup", paper_overrides={}, also=[])
    warm = RunSpec(init="scratch", overrides={"stage": "warmup"}, **spec)
    execute(params, "warm", warm, tmp_path / "models" / "warm", "warm", root=tmp_path, track=False)
    assert "gen" in torch.load(tmp_path / "models" / "warm" / "artifacts.pt", weights_only=True)
    joint = RunSpec(init="warm", overrides={}, **spec)
    whole = execute(params, "whole", joint, tmp_path / "whole", "train@whole", root=tmp_path, track=False,
                    models_dir=tmp_path / "models")
    killed = execute(params, "killed", joint, tmp_path / "killed", "train@killed", root=tmp_path, track=False,
                     models_dir=tmp_path / "models", stop_after=1)
    assert killed == {"stopped_after_epoch": 1}
    resumed = execute(params, "killed", joint, tmp_path / "killed", "train@killed", root=tmp_path, track=False,
                      models_dir=tmp_path / "models")
    for k in ("mAP", "rank1", "nmi"):
        assert resumed[k] == whole[k], k
    h = pd.read_parquet(tmp_path / "whole" / "history.parquet")
    assert {"loss_img", "loss_feat", "loss_adv", "loss_vi", "loss_proto", "loss_mix", "loss_disc"} <= set(h.columns)
    assert np.isfinite(h["loss"]).all()
    # the run's novel views as a dataset in GCL's layout, with the FID per angle in the start's feature space
    from reid_repro.report.generation import generate_dataset

    params["runs"]["whole"] = {k: v for k, v in vars(joint).items()}
    info = generate_dataset(params, "whole", tmp_path / "generated", runs_dir=tmp_path,
                            start=tmp_path / "models" / "warm" / "model.pt")
    names = sorted(Path(p).name for p in table.loc[table["split"] == "train", "path"])
    for angle in G.ANGLES:
        assert sorted(p.name for p in (tmp_path / "generated" / str(angle)).iterdir()) == names
    with Image.open(tmp_path / "generated" / "90" / names[0]) as img:
        assert img.size == (32, 64)
    assert set(info["fid"]) == {str(a) for a in G.ANGLES} and all(v >= 0 for v in info["fid"].values())
    assert "not Inception" in info["feature_space"]
    # the image figures drawn from the generator: Table 2 (Mixup vs D-Mixup), Table 3, Fig. 9 (the warm-up's
    # generator against the run's), Fig. 12 (failure cases) and GCL supp. Figs. 3-5
    from reid_repro.report import generation as gen

    figs = tmp_path / "figs"
    made = [gen.mixup_grid(params, "whole", tmp_path, figs / "t2.png"),
            gen.interpolation_grid(params, "whole", tmp_path, figs / "f3i.png"),
            gen.gcl_generation_grid(params, "whole", tmp_path / "generated", figs / "t3.png"),
            gen.contrast_grid(params, "whole", "warm", tmp_path, tmp_path / "models", figs / "f9.png"),
            gen.failure_grid(params, "whole", tmp_path, figs / "f12.png"),
            gen.views_grid(params, "whole", tmp_path / "generated", figs / "f3.png"),
            gen.structure_grid(params, "whole", tmp_path, figs / "f2.png"),
            gen.contrast_grid(params, "whole", "warm", tmp_path, tmp_path / "models", figs / "s1.png",
                              item="GCL supp. Fig. 1", tags=("w/o L_vi", "GCL"), skip=3)]
    for png in made:
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width > 64 and img.height > 64, png
    # Fig. 2's structure inputs: DG-Net's luminance of the image (worked here from its pixels), the other image's
    # unturned render (mesh switch) and the image's own render at 180 degrees (rotation), as the meshes stage wrote them
    views = gen._Views(params, "whole", tmp_path / "whole" / "model.pt", tmp_path / "whole", names[:2])
    rgb = views.images[[0]].double() / 255
    lum = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert torch.allclose(views.structure([0], "gray_switch")[:, 0].double(), 2 * lum - 1, atol=1e-5)
    for kind, folder, angle in (("mesh_switch", "render", 0), ("rotation", "render_180", 180)):
        with Image.open(tmp_path / "meshes" / "market" / folder / names[1]) as im:
            want = torch.from_numpy(np.array(im)).double() / 255 * 2 - 1
        assert torch.allclose(views.structure([1], kind, angle)[0, 0].double(), want, atol=1e-6), kind
    shown = gen.shown(views.structure([0, 1], "mesh_switch"))
    assert shown.shape == (2, 3, 64, 32) and shown.dtype == torch.uint8


def test_the_generator_and_discriminator_keep_their_lr_while_the_encoder_decays(tmp_path):
    """The released code never decays G's and D's Adam (its MultiStepLR is not stepped in stage 2 and is resumed
    past its milestone in stage 3); E_id follows the loop's step (x0.1 after lr_step epochs). Each optimiser
    declares its schedule: stepping them for lr_step + 1 epochs shows it."""
    method, _ = _method(tmp_path, lr_step=2, warmup_epochs=0, lr=3.5e-4, g_lr=1e-4, d_lr=2e-4)
    opts = method.optimizers()
    assert set(opts) == {"model", G.GEN, G.DIS} and all(s is not None for _, s in opts.values())
    seen = {name: [] for name in opts}
    for _epoch in range(3):
        for name, (opt, sched) in opts.items():
            seen[name].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    assert seen[G.GEN] == pytest.approx([1e-4] * 3) and seen[G.DIS] == pytest.approx([2e-4] * 3)
    assert seen["model"] == pytest.approx([3.5e-4, 3.5e-4, 3.5e-5])


def test_the_loop_refuses_an_optimiser_without_a_schedule(tmp_path):
    from reid_repro.training.loop import TrainData, fit

    method, _ = _method(tmp_path, positive_view="augmented", mixup="none", proto_loss=False, mix_loss_on=False)
    opt = torch.optim.SGD(method.model.parameters(), lr=0.1)
    method.optimizers = lambda: {"model": (opt, None)}
    data = TrainData(torch.zeros(8, 3, 64, 32, dtype=torch.uint8), np.arange(8) // 2, np.arange(8) % 2)
    with pytest.raises(ReidReproError, match=r"GclPlus.optimizers\(\): \['model'\] declare no schedule"):
        fit(method, method.cfg, data, tmp_path / "ckpt.pt")
