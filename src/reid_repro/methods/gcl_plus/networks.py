"""GCL+'s generative module: MUNIT-style blocks as the released code's gcl/models/gan.py (the identity encoder's
stripes feed the AdaIN MLPs of the generator; a multi-scale LSGAN discriminator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.errors import ReidReproError


class LayerNorm2d(nn.Module):
    """Per-sample normalisation over (C, H, W) with a per-channel affine, gamma ~ U(0, 1) (the code's ``ln``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        flat = x.flatten(1)
        x = (x - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1).view(-1, 1, 1, 1) + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class AdaIN(nn.Module):
    """Instance norm whose per-sample scale and bias are set before each forward (from the MLPs)."""

    def __init__(self):
        super().__init__()
        self.scale = self.bias = None

    def forward(self, x):
        return F.instance_norm(x) * self.scale[:, :, None, None] + self.bias[:, :, None, None]


def conv(n_in, n_out, k, stride=1, norm="none", act="lrelu", dilation=1, pad="reflect"):
    """Pad, convolve, normalise, activate (the code's Conv2dBlock)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(dilation * (k // 2)) if pad == "reflect" else
                               nn.ZeroPad2d(dilation * (k // 2)),
                               nn.Conv2d(n_in, n_out, k, stride, dilation=dilation)]
    layers += {"in": [nn.InstanceNorm2d(n_out)], "ln": [LayerNorm2d(n_out)], "adain": [AdaIN()],
               "none": []}[norm]
    layers += {"lrelu": [nn.LeakyReLU(0.2)], "relu": [nn.ReLU()], "none": []}[act]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, dim: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(conv(dim, dim, 3, norm=norm, act="lrelu"), conv(dim, dim, 3, norm=norm, act="none"))

    def forward(self, x):
        return x + self.body(x)


class StructureEncoder(nn.Module):
    """E_str: grey render (1 channel) -> structure code at 1/4 resolution, 8 x ``dim`` channels. The code's ASPP
    uses dilations 3/6/9 with reflect padding, which fails on the 16 x 8 map of a 64 x 32 input; ours pads with
    zeros (works at any size)."""

    def __init__(self, dim: int, dilations=(3, 6, 9)):
        super().__init__()
        self.body = nn.Sequential(conv(1, dim, 7, norm="in"), conv(dim, 2 * dim, 4, 2, norm="in"),
                                  conv(2 * dim, 4 * dim, 4, 2, norm="in"), *[ResBlock(4 * dim, "in") for _ in range(4)])
        self.aspp = nn.ModuleList([conv(4 * dim, 4 * dim, 1, norm="in")] +
                                  [conv(4 * dim, 4 * dim, 3, norm="in", dilation=d, pad="zero") for d in dilations])
        self.merge = conv(4 * dim * (1 + len(dilations)), 8 * dim, 1, norm="in")

    def forward(self, s):
        h = self.body(s)
        h = h[..., :s.shape[2] // 4, :s.shape[3] // 4]          # stride-2 kernels of 4 with padding 2 round up
        return self.merge(torch.cat([b(h) for b in self.aspp], 1))


class Generator(nn.Module):
    """G with its AdaIN MLPs: (f_id, structure code) -> image in the loop's normalised pixel space (no tanh, as
    the code). 4 residual blocks of 2 AdaIN layers; MLP k (scale and bias) reads the k-th quarter of f_id."""

    def __init__(self, dim: int, id_dim: int, mlp_dim: int):
        super().__init__()
        width = 8 * dim
        self.blocks = nn.ModuleList([ResBlock(width, "adain") for _ in range(4)])
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), conv(width, width // 2, 5, norm="ln"),
                                nn.Upsample(scale_factor=2), conv(width // 2, width // 4, 5, norm="ln"),
                                conv(width // 4, width // 4, 3), conv(width // 4, width // 4, 3),
                                nn.Conv2d(width // 4, 3, 1))
        if id_dim % 4:
            raise ReidReproError(f"gcl_plus: f_id of {id_dim} values is not 4 groups")
        self.group = id_dim // 4

        def mlp():
            return nn.Sequential(nn.Linear(self.group, mlp_dim), nn.LeakyReLU(0.2), nn.Linear(mlp_dim, mlp_dim),
                                 nn.LeakyReLU(0.2), nn.Linear(mlp_dim, 2 * width))
        self.mlp_scale = nn.ModuleList([mlp() for _ in range(4)])
        self.mlp_bias = nn.ModuleList([mlp() for _ in range(4)])

    def forward(self, f_id: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = code
        for k, block in enumerate(self.blocks):
            part = f_id[:, k * self.group:(k + 1) * self.group]
            scale, bias = self.mlp_scale[k](part).chunk(2, 1), self.mlp_bias[k](part).chunk(2, 1)
            for layer, s, b in zip([m for m in block.modules() if isinstance(m, AdaIN)], scale, bias):
                layer.scale, layer.bias = s, b
            h = block(h)
        return self.up(h)


class Discriminator(nn.Module):
    """Multi-scale LSGAN PatchGAN (the code's MsImageDis): 3 scales, average-pooled between them. A scale whose
    input is too small for its two stride-2 convolutions and reflect padding (under 8 x 8 pixels: only in
    test-sized images below 64 x 32) is skipped."""

    def __init__(self, dim: int, scales: int = 3):
        super().__init__()

        def one():
            return nn.Sequential(conv(3, dim, 1), conv(dim, dim, 3), conv(dim, dim, 3, 2), conv(dim, dim, 3),
                                 conv(dim, 2 * dim, 3, 2), *[ResBlock(2 * dim, "none") for _ in range(4)],
                                 nn.Conv2d(2 * dim, 1, 1))
        self.nets = nn.ModuleList([one() for _ in range(scales)])
        self.down = nn.AvgPool2d(3, 2, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for net in self.nets:
            if min(x.shape[2], x.shape[3]) < 8:
                break
            outs.append(net(x))
            x = self.down(x)
        return outs


def load_generator(gen: nn.Module, dis: nn.Module, state: dict, path) -> None:
    """A warm-up's or run's generator and discriminator (artifacts.pt); an error naming the file if they do not
    fit the configured widths."""
    try:
        gen.load_state_dict(state["gen"])
        dis.load_state_dict(state["dis"])
    except RuntimeError as exc:
        raise ReidReproError(f"{path}: its generator does not fit gcl_plus's gen_dim/mlp_dim/dis_dim ({exc})") \
            from None


def init_weights(module: nn.Module, kind: str) -> None:
    """The code's initialisations: kaiming for G and E_str, N(0, 0.02) for D; biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
