"""Re-ID backbones from torchvision: ResNet with last stride 1, GeM or average pooling and a BN neck.

The paper model is ResNet-50 (2048-d features at 256x128). The CPU default is ResNet-18 (512-d) at a reduced
input size. ImageNet weights are read from torch's hub cache when asked for and never downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from reid_repro.errors import ReidReproError

PRECISIONS = ("fp32", "bf16")   # bf16: autocast over the backbone (CPUs with AVX512-BF16/AMX, GPUs from Ampere)
ARCHS = {"resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights"}


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
                 imagenet: bool = False, precision: str = "fp32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ReidReproError(f"model.precision={precision!r}; expected one of {sorted(PRECISIONS)}")
        self.precision = precision
        if arch not in ARCHS:
            raise ReidReproError(f"model.arch={arch!r}; expected one of {sorted(ARCHS)}")
        if pooling not in ("avg", "gem"):
            raise ReidReproError(f"model.pooling={pooling!r}; expected 'avg' or 'gem'")
        net = getattr(torchvision.models, arch)(weights=None)
        if imagenet:
            net.load_state_dict(torch.load(imagenet_weights_path(arch), map_location="cpu", weights_only=True))
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
    def from_config(cls, cfg, pooling: str | None = None, imagenet: bool = False) -> "ReidNet":
        """The network ``params.yaml: model.<scale>`` describes (``pooling`` overrides the config's); with
        ``imagenet`` it starts from torchvision's ImageNet weights (otherwise the caller loads its own)."""
        return cls(cfg.arch, cfg.last_stride, pooling or cfg.pooling, imagenet=imagenet, precision=cfg.precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # bf16: the backbone's convolutions (forward and backward) run under autocast; the pooled feature, the
        # BN neck and every loss stay float32. On the 2-core CPU this halves a ResNet-18 step (bench_training).
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            pooled = self.pool(self.body(x))
        return self.neck(pooled.float())


def imagenet_weights_path(arch: str) -> Path:
    """Where torch keeps the torchvision ImageNet checkpoint of ``arch``; an error if it is not there."""
    weights = getattr(torchvision.models, ARCHS[arch]).IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise ReidReproError(f"{path}: ImageNet weights for {arch} not found; expected torchvision's checkpoint "
                             f"there (download {weights.url} on a machine with internet, or set TORCH_HOME), "
                             "or set model.init: pretrain in params.yaml")
    return path
