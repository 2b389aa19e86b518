"""The shared training loop's settings (``<method>.loop`` / ``paper_loop``) and a method's settings built on them."""

from __future__ import annotations

import dataclasses


from reid_repro.errors import ReidReproError

from reid_repro.config.core import _scale, from_dict


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """The shared loop's settings: every method's section holds one of these per scale."""

    seed: int
    epochs: int
    iters: int              # iterations per epoch
    batch_ids: int          # P identities (pseudo or true) per batch
    instances: int          # K images of each
    lr: float
    weight_decay: float
    warmup_epochs: int      # linear warm-up from lr/10
    lr_step: int            # multiply the lr by lr_gamma every lr_step epochs
    lr_gamma: float
    eps: float              # DBSCAN radius on the Jaccard distance
    k1: int                 # k-reciprocal neighbours
    k2: int                 # query expansion
    min_samples: int
    labels: str             # pseudo (clustering) | ground_truth (the supervised upper bound)
    cross_camera: bool      # the sampler prefers an identity's images from different cameras
    workers: int            # DataLoader worker processes

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "iters": self.iters >= 1, "batch_ids": self.batch_ids >= 2,
                  "instances": self.instances >= 1, "lr": self.lr > 0, "weight_decay": self.weight_decay >= 0,
                  "warmup_epochs": self.warmup_epochs >= 0, "lr_step": self.lr_step >= 1,
                  "lr_gamma": 0 < self.lr_gamma <= 1, "eps": 0 < self.eps < 1, "k1": self.k1 >= 2,
                  "k2": 1 <= self.k2 <= self.k1, "min_samples": self.min_samples >= 1, "workers": self.workers >= 0,
                  "labels": self.labels in ("pseudo", "ground_truth")}
        for key, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r} is out of range")


def load_method_config(params: dict, method: str, cls, overrides: dict | None = None, base: str | None = None):
    """Flatten ``params[method]``: its own keys plus its ``loop`` (or ``paper_loop``) keys, then ``overrides``.

    ``base`` names a section whose settings come first (ISE builds on ``cluster_contrast``).
    """
    scale = _scale(params)
    loop_key = "loop" if scale == "cpu" else "paper_loop"
    flat, where = {}, {}
    for name in ([base] if base else []) + [method]:
        section = params.get(name)
        if not isinstance(section, dict):
            raise ReidReproError(f"params.yaml: no '{name}' section")
        if loop_key not in section:
            if name == method and base:
                section = {**section, loop_key: {}}
            else:
                raise ReidReproError(f"params.yaml: {name}.{loop_key}: missing")
        for k, v in section.items():
            if k in ("loop", "paper_loop"):
                if k == loop_key:
                    flat.update(v)
                    where.update({kk: f"{name}.{k}.{kk}" for kk in v})
            else:
                flat[k] = v
                where[k] = f"{name}.{k}"
    for k, v in (overrides or {}).items():
        if k not in flat:
            raise ReidReproError(f"runs override {k!r} is not a setting of {method}; expected one of "
                                 f"{sorted(flat)}")
        flat[k] = v
    try:
        return from_dict(cls, flat, method)
    except ReidReproError as exc:   # name the key as it is written in params.yaml
        import re

        match = re.match(rf"params\.yaml: (?:{method}\.)?(\w+)([=:].*)", str(exc), re.S)
        if match and match.group(1) in where:
            raise ReidReproError(f"params.yaml: {where[match.group(1)]}{match.group(2)}") from None
        raise
