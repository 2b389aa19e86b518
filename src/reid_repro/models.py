"""Re-ID backbones from torchvision: ResNet with last stride 1, GeM or average pooling and a BN neck.

The paper model is ResNet-50 (2048-d features at 256x128). The CPU default is ResNet-18 (512-d) at a reduced
input size. ImageNet weights are read from torch's hub cache when asked for and never downloaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from reid_repro.errors import ReidReproError
from reid_repro.training import distributed

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively. CUDA: compute capability 8.0 or newer
    (``torch.cuda.is_bf16_supported``); CPU: oneDNN's bf16 kernels (AVX512-BF16 or AMX). Without them autocast
    emulates bf16 and is far slower than fp32: a ResNet-18 step at 64x32, batch 32, took 13.7 s in bf16 against
    0.54 s in fp32 on a 2-core AVX2 CPU (bench/bench_precision.py)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision a run computes in on ``device``. ``auto`` is float32 on the CPU, the reference every
    committed result was computed in (docs/numerics.md, "Precision"): a CPU's bf16 kernels would change what a committed
    number means, so bf16 on the CPU is something a user asks for (``precision: bf16``). On CUDA ``auto`` is bf16
    where the GPU has it natively (compute capability 8.0 or newer) and float32 elsewhere. An explicit ``bf16``
    without native support is kept (the user asked for it) but warned about."""
    if precision not in PRECISIONS:
        raise ReidReproError(f"model.precision={precision!r}; expected one of {list(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cuda" and native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        warnings.warn(f"model.precision=bf16 on {torch.device(device)} without native bf16 (AVX512-BF16/AMX, or "
                      "CUDA compute capability >= 8): autocast emulates it, about 25x slower than fp32 on an AVX2 "
                      "CPU; `precision: auto` picks fp32 here", stacklevel=2)
    return precision


ARCHS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights",
         "resnet10": None}
# resnet10: torchvision's ResNet with one BasicBlock per stage (resnet18 has two), a CPU-scale backbone with
# ~2.6x cheaper training steps at 64x32 (issue 38, target 6); it has no ImageNet weights
BLOCKS = {"resnet10": [1, 1, 1, 1]}


def _check_imagenet(arch: str) -> None:
    """An error unless torchvision has ImageNet weights for ``arch``."""
    if not ARCHS.get(arch):
        raise ReidReproError(f"model.arch={arch!r} has no ImageNet weights; expected init: scratch, or one of "
                             f"{sorted(a for a, w in ARCHS.items() if w)} for an ImageNet start")


class GeM(nn.Module):
    """Generalised-mean pooling (Radenovic et al.), p = 3 and learnable, as in Cluster-Contrast."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(p))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p).flatten(1)


class ReidNet(nn.Module):
    """Backbone -> pooling -> BatchNorm neck. ``forward`` returns the BN-neck feature (not normalised)."""

    def __init__(self, arch: str = "resnet18", last_stride: int = 1, pooling: str = "avg",
                 imagenet: bool | str | Path = False, precision: str = "fp32", bn_groups: int = 1):
        super().__init__()
        if not isinstance(bn_groups, int) or bn_groups < 1:
            raise ReidReproError(f"model.bn_groups={bn_groups!r}; expected an integer >= 1")
        self.bn_groups = bn_groups           # ghost batch-norm in training (see features)
        if precision not in PRECISIONS:
            raise ReidReproError(f"model.precision={precision!r}; expected one of {list(PRECISIONS)}")
        self.precision = precision           # as configured; :meth:`compute_precision` says what runs
        self._resolved: dict[str, str] = {}
        if arch not in ARCHS:
            raise ReidReproError(f"model.arch={arch!r}; expected one of {sorted(ARCHS)}")
        if pooling not in ("avg", "gem"):
            raise ReidReproError(f"model.pooling={pooling!r}; expected 'avg' or 'gem'")
        if imagenet:
            _check_imagenet(arch)
        if arch in BLOCKS:
            net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, BLOCKS[arch])
        else:
            net = getattr(torchvision.models, arch)(weights=None)
        if imagenet:   # True: torch's hub cache; a path: that torchvision checkpoint
            path = imagenet_weights_path(arch) if imagenet is True else Path(imagenet)
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        if last_stride == 1:   # keep twice the spatial resolution in layer4 (a standard re-ID change)
            block = net.layer4[0]
            (block.conv2 if hasattr(block, "conv3") else block.conv1).stride = (1, 1)
            block.downsample[0].stride = (1, 1)
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                  net.layer4)
        self.pool = GeM() if pooling == "gem" else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.dim = net.fc.in_features
        self.neck = nn.BatchNorm1d(self.dim)
        self.neck.bias.requires_grad_(False)
        nn.init.constant_(self.neck.weight, 1.0)
        nn.init.constant_(self.neck.bias, 0.0)

    @classmethod
    def from_config(cls, cfg, pooling: str | None = None, imagenet: bool | str | Path = False) -> "ReidNet":
        """The network ``params.yaml: model.<scale>`` describes (``pooling`` overrides the config's); with
        ``imagenet`` (True, or a checkpoint's path) it starts from torchvision's ImageNet weights (otherwise the
        caller loads its own)."""
        return cls(cfg.arch, cfg.last_stride, pooling or cfg.pooling, imagenet=imagenet, precision=cfg.precision,
                   bn_groups=cfg.bn_groups)

    def compute_precision(self, device: torch.device | str) -> str:
        """fp32 or bf16: what this network computes in on ``device`` (``auto`` resolved once per device type)."""
        kind = torch.device(device).type
        if kind not in self._resolved:
            self._resolved[kind] = resolve_precision(self.precision, device)
        return self._resolved[kind]

    def autocast(self, device: torch.device | str):
        """The autocast context of the backbone: bf16 when :meth:`compute_precision` says so."""
        kind = torch.device(device).type
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.compute_precision(device) == "bf16")

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled feature before the neck, BN-neck feature), both float32: MMT's triplet loss reads the first.

        Ghost batch-norm: in training with ``bn_groups`` = N > 1 the batch is cut into N equal chunks and each
        goes through the network on its own, so every BatchNorm layer (backbone and neck) normalises over one
        chunk and updates its running statistics once per chunk, in order. That is what the papers' 4-GPU
        ``nn.DataParallel`` did to batch-norm (each GPU normalised its quarter of the batch); with N = 4 one GPU
        reproduces their per-GPU statistics. The losses still see the whole batch. In eval mode BN uses its
        running statistics and chunking would change nothing. Under torchrun, inside a training step, the
        features of every rank's images are returned (training/distributed.py).
        """
        pooled, neck = self._per_bn_group(self._features, x)
        if distributed.gathering():     # a training step under torchrun: the whole batch, every rank's images
            return distributed.gather_grad(pooled), distributed.gather_grad(neck)
        return pooled, neck

    def map_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(last feature map, pooled feature, BN-neck feature): GCL+'s identity encoder reads the map's stripes
        and the neck. Ghost batch-norm as :meth:`features`; not gathered under torchrun (GCL+ runs on one)."""
        def run(chunk):
            fmap = self._map(chunk)
            with self.autocast(chunk.device):
                pooled = self.pool(fmap)
            pooled = pooled.float()
            return fmap, pooled, self.neck(pooled)
        return self._per_bn_group(run, x)

    def stripe_features(self, x: torch.Tensor, stripes: int = 2) -> torch.Tensor:
        """N x (1 + stripes) x d, float32, before the neck: the pooled feature of the backbone's whole last map
        and of its ``stripes`` equal horizontal stripes, top to bottom (SSG's full, upper and lower body, with
        stripes = 2). Ghost batch-norm and torchrun's whole batch as :meth:`features`."""
        def run(chunk):
            fmap = self._map(chunk)
            parts = [fmap, *fmap.tensor_split(stripes, dim=2)]
            with self.autocast(chunk.device):
                return torch.stack([self.pool(p) for p in parts], 1).float()
        out = self._per_bn_group(run, x)
        return distributed.gather_grad(out) if distributed.gathering() else out

    def _per_bn_group(self, fn, x: torch.Tensor):
        """``fn(x)``; in training with ``bn_groups`` = N > 1, ``fn`` of each of N equal chunks, concatenated."""
        if not (self.training and self.bn_groups > 1):
            return fn(x)
        if len(x) < 2 * self.bn_groups:
            raise ReidReproError(f"model.bn_groups={self.bn_groups}: a training batch of {len(x)} images "
                                 "cannot be cut into chunks of at least 2 (BatchNorm needs 2 per chunk)")
        outs = [fn(chunk) for chunk in x.tensor_split(self.bn_groups)]
        return tuple(torch.cat(t) for t in zip(*outs)) if isinstance(outs[0], tuple) else torch.cat(outs)

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map (under autocast: bf16 where the precision says so)."""
        if x.is_cuda:   # cuDNN's fastest layout (the model is moved to channels_last on CUDA: training/run.py)
            x = x.contiguous(memory_format=torch.channels_last)
        # bf16: the backbone's convolutions (forward and backward) run under autocast; the pooled feature, the
        # BN neck and every loss stay float32. With native bf16 this halves a ResNet-18 step on 2 CPU cores
        # (bench_training); without it, `auto` stays in fp32.
        with self.autocast(x.device):
            return self.body(x)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self._map(x)
        with self.autocast(x.device):
            pooled = self.pool(fmap)
        pooled = pooled.float()
        return pooled, self.neck(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def imagenet_weights_path(arch: str, folder: str | Path | None = None) -> Path:
    """The torchvision ImageNet checkpoint of ``arch`` in ``folder`` (default: torch's hub cache, where
    torchvision downloads it); an error naming the file and its download address if it is not there."""
    _check_imagenet(arch)
    weights = getattr(torchvision.models, ARCHS[arch]).IMAGENET1K_V1
    folder = Path(torch.hub.get_dir()) / "checkpoints" if folder is None else Path(folder)
    path = folder / Path(weights.url).name
    if not path.is_file():
        raise ReidReproError(f"{path}: ImageNet weights for {arch} not found; expected torchvision's checkpoint "
                             f"there (download {weights.url} on a machine with internet)")
    return path


@torch.no_grad()
def ema_update(targets, sources, momentum: float) -> None:
    """t <- momentum t + (1 - momentum) s for each pair of tensors (a mean teacher's step: ICE's momentum encoder,
    Eq. 2; MMT's temporally averaged networks): in place, on ``sources`` detached."""
    for t, s in zip(targets, sources):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)


def save_state(obj, path: str | Path) -> Path:
    """``torch.save(obj, path)`` with the same bytes for the same tensors, written atomically.

    torch.save names the archive's records after the file it writes (here a temporary file with a random
    suffix) and derives ``.data/serialization_id`` from those names, so two saves of identical weights differed
    in their bytes and DVC saw a changed model wherever a stage was rebuilt. Saving into memory names the
    records ``archive/`` whatever the destination; the file is then published with io.atomic_path."""
    import io as _io

    from reid_repro.io import atomic_path

    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    return Path(path)


def load_weights(model: nn.Module, path: str | Path, what: str = "") -> None:
    """Load a ReidNet checkpoint (a run's or a stage's model.pt) into ``model``; a missing, unreadable or
    ill-fitting file is an error naming it (``what`` describes the model, e.g. "resnet50/avg")."""
    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # truncated or not a torch file
        raise ReidReproError(f"{path}: cannot read the checkpoint ({exc}); expected a model.pt written by "
                             "reid-repro") from exc
    load_state(model, state, str(path), what)


def load_state(model: nn.Module, state: dict, where: str, what: str = "") -> None:
    """Load ``state`` (read from ``where``) into ``model``; an ill-fitting state is an error naming both."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("pool.")]:
        raise ReidReproError(f"{where}: does not fit model {what or type(model).__name__} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


# ---- checking reduced-precision kernels before they are trusted ------------------------------------------------
#
# A CPU's bf16 kernels can be wrong without a sound: on a Xeon with AMX-BF16 (torch 2.14.1, its bundled oneDNN),
# Conv2d(128, 256, 3, stride=2, padding=1) under CPU bf16 autocast on an input of shape (6, 128, 4, 2) is off by up
# to 1.9 where bf16 rounding accounts for 0.004 (also (32, 128, 4, 2) and (6, 128, 3, 2); (6, 128, 8, 4) and
# (1, 128, 4, 2) are right), and with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 (bf16 without AMX) it is right. The
# features then turned NaN epochs later. So a run that computes in bf16 first checks every convolution and linear
# layer of its own network, at its own input size and batch sizes, against float32 on the same bf16-rounded
# operands: the products of bf16 numbers are exact in float32 and the kernel accumulates in float32, so the only
# error left is the final rounding to bf16, half an ulp (2^-9 relative); the check allows 2^-7 of the largest
# output, 4x that, and reports any layer beyond it.

BF16_TOLERANCE = 2.0 ** -7


def layer_inputs(model: nn.Module, height: int, width: int) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """{name: (layer, input shape without the batch)} of every Conv2d and Linear that ``model`` runs on one image
    of ``height`` x ``width`` (a float32 forward pass on zeros, in eval mode; the model's mode is restored)."""
    found: dict[str, tuple[nn.Module, tuple[int, ...]]] = {}
    names = {m: n for n, m in model.named_modules()}

    def seen(layer, inputs, output) -> None:          # a forward hook that returns None leaves the output alone
        found.setdefault(names[layer], (layer, tuple(inputs[0].shape[1:])))

    hooks = [m.register_forward_hook(seen) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return found


def bf16_layer_error(layer: nn.Module, shape: tuple[int, ...], device, seed: int = 0) -> tuple[float, float]:
    """(max |bf16 autocast - float32|, max |float32|) of ``layer`` on a random input of ``shape`` (batch first):
    the float32 reference computes on the bf16-rounded input, weight and bias."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).to(device)
    rounded = lambda t: None if t is None else t.detach().to(torch.bfloat16).float()   # noqa: E731
    with torch.no_grad():
        if isinstance(layer, nn.Conv2d):
            ref = F.conv2d(rounded(x), rounded(layer.weight), rounded(layer.bias), layer.stride, layer.padding,
                           layer.dilation, layer.groups)
        else:
            ref = F.linear(rounded(x), rounded(layer.weight), rounded(layer.bias))
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            out = layer(x)
    return float((out.float() - ref).abs().max()), float(ref.abs().max())


def check_bf16_kernels(model: nn.Module, device, height: int, width: int, batches=(1, 6, 32),
                       kernels: str = "") -> int:
    """Check the bf16 kernels of every Conv2d and Linear of ``model`` at its input ``height`` x ``width`` and each
    batch size in ``batches`` (section comment above); returns the number of (layer, shape) cases checked. A
    layer off by more than bf16 rounding is an error naming the layer, the shape, the ``kernels`` (the CPU
    kernel set) and what to set instead."""
    cases = 0
    for name, (layer, shape) in layer_inputs(model, height, width).items():
        for n in sorted(set(int(b) for b in batches if b >= 1)):
            err, scale = bf16_layer_error(layer, (n, *shape), device)
            cases += 1
            if not err <= BF16_TOLERANCE * max(scale, 1e-6):
                raise ReidReproError(
                    f"bf16 kernels are wrong on {torch.device(device)}: layer {name} ({layer}) on input shape "
                    f"{(n, *shape)} is off by {err:.3g} from float32 on the same bf16-rounded operands, where bf16 "
                    f"rounding allows {BF16_TOLERANCE * scale:.3g} (kernel set: {kernels or 'this CPU'}). Set "
                    "model.precision: fp32 (the reference), or on a CPU with AMX keep bf16 without AMX with "
                    "REID_CPU=native ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 (docs/numerics.md, \"Precision\")")
    return cases
