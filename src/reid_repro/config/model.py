"""params.yaml ``model``: the backbone and input at each scale."""

from __future__ import annotations

import dataclasses


from reid_repro.errors import ReidReproError

from reid_repro.config.core import _scale, from_dict


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str             # resnet10 (one block per stage, CPU scale) | resnet18 | resnet34 | resnet50 (torchvision)
    last_stride: int      # 1 (re-ID) or 2 (ImageNet)
    pooling: str          # avg | gem
    height: int           # training and test input size; may be smaller than the stored images
    width: int
    init: str             # what the pretrain stage trains from: scratch | imagenet (torchvision's weights); every
                          # other run starts from a stage's checkpoint (its run's init: pretrain or source_<name>)
    precision: str        # auto | fp32 | bf16 (autocast over the backbone; auto = bf16 where native: models.py)
    bn_groups: int        # ghost batch-norm: BN statistics over this many equal chunks of a training batch
    interpolation: str    # bilinear | bicubic: how images are resized to the input size (decoded once)

    def __post_init__(self):
        if self.last_stride not in (1, 2):
            raise ReidReproError(f"params.yaml: model.last_stride={self.last_stride}; expected 1 or 2")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ReidReproError(f"params.yaml: model.precision={self.precision!r}; expected auto, fp32 or bf16")
        if self.bn_groups < 1:
            raise ReidReproError(f"params.yaml: model.bn_groups={self.bn_groups}; expected an integer >= 1 (1 = BN "
                                 "over the whole batch; 4 = the papers' 4 GPUs)")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ReidReproError(f"params.yaml: model.interpolation={self.interpolation!r}; expected bilinear or "
                                 "bicubic")
        if self.init not in ("scratch", "imagenet"):
            raise ReidReproError(f"params.yaml: model.init={self.init!r}; expected scratch or imagenet (what the "
                                 "pretrain stage trains from)")
        if not (16 <= self.height <= 512 and 8 <= self.width <= 256):
            raise ReidReproError(f"params.yaml: model.height/width={self.height}x{self.width}; expected "
                                 "16..512 x 8..256")


def load_model(params: dict) -> ModelConfig:
    scale = _scale(params)
    if "model" not in params or scale not in params["model"]:
        raise ReidReproError(f"params.yaml: model.{scale}: missing")
    return from_dict(ModelConfig, params["model"][scale], f"model.{scale}")
