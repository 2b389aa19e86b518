"""Non-finite numbers stop a run where they appear, by name.

A NaN or an infinity in a loss, a gradient, the epoch's features, a memory row or a centroid is never a result:
left alone it spreads through the memory and the weights and surfaces epochs later as a library's error about
its input (sklearn's "Input contains NaN" from the camera probe, DBSCAN finding one cluster). The loop checks
each of them at the step where it is made (training/loop.py) and raises :class:`NonFiniteError` naming the epoch,
the step and the tensor; the run adds its name, seed, device, precision and CPU kernel set
(training/run.py), and publishes nothing.

The checks only read tensors: a run without a fault computes exactly what it computed without them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from reid_repro.errors import ReidReproError


class NonFiniteError(ReidReproError):
    """A non-finite number in ``tensor`` at ``epoch`` (1-based; None: in an evaluation) and ``step`` (0-based;
    None: outside a step)."""

    def __init__(self, tensor: str, epoch: int | None, step: int | None, detail: str):
        self.tensor, self.epoch, self.step, self.detail = tensor, epoch, step, detail
        self.context = ""
        super().__init__(self._message())

    def _message(self) -> str:
        if self.epoch is None:
            where = "the evaluation"
        else:
            where = f"epoch {self.epoch}" + (f", step {self.step}" if self.step is not None else ", before its steps")
        return f"{self.context}non-finite {self.tensor} at {where}: {self.detail}"

    def add_context(self, context: str) -> "NonFiniteError":
        """Prefix the run's own facts (name, seed, device, precision, kernel set)."""
        self.context = context
        self.args = (self._message(),)
        return self


def _detail(values) -> str:
    """How many values of a tensor or array are NaN and how many infinite."""
    t = torch.as_tensor(values)
    return (f"{int(torch.isnan(t).sum())} NaN and {int(torch.isinf(t).sum())} infinite of {t.numel()} values "
            f"(shape {tuple(t.shape)})")


def check_array(name: str, values, epoch: int | None, step: int | None = None) -> None:
    """Raise :class:`NonFiniteError` when the tensor or array ``values`` holds a NaN or an infinity."""
    if isinstance(values, np.ndarray):
        ok = bool(np.isfinite(values).all()) if values.dtype.kind == "f" else True
    else:
        ok = bool(torch.isfinite(values).all()) if values.is_floating_point() else True
    if not ok:
        raise NonFiniteError(name, epoch, step, _detail(values))


def check_losses(losses: dict, epoch: int, step: int) -> None:
    """Every named loss of a step (before its backward)."""
    for name, value in losses.items():
        check_array(f"loss {name!r}", value.detach(), epoch, step)


def check_gradients(optimizers: dict, names, epoch: int, step: int, param_names: dict[int, str]) -> None:
    """The gradients the optimisers ``names`` are about to step with (after the backward). One norm over all of
    them (``torch.nn.utils.get_total_norm``, a read); only when it is not finite is the first bad one looked for."""
    grads = [(n, p) for n in names for group in optimizers[n].param_groups for p in group["params"]
             if p.grad is not None]
    if not grads:
        return
    total = torch.nn.utils.get_total_norm([p.grad for _, p in grads], error_if_nonfinite=False)
    if bool(torch.isfinite(total)):
        return
    for opt, p in grads:
        if not bool(torch.isfinite(p.grad).all()):
            which = param_names.get(id(p), f"a parameter of shape {tuple(p.shape)}")
            raise NonFiniteError(f"gradient of {which} (optimiser {opt!r})", epoch, step, _detail(p.grad))
    raise NonFiniteError("gradient norm", epoch, step, f"total norm {float(total)}")


def parameter_names(method) -> dict[int, str]:
    """id(parameter) -> a readable name (``network 0: body.6.0.conv1.weight``) over the method's networks and
    anything else it holds with parameters."""
    found: dict[int, str] = {}
    modules = [(f"network {i}", m) for i, m in enumerate(method.networks())]
    modules += [(name, m) for name, m in vars(method).items() if isinstance(m, nn.Module)]
    for prefix, module in modules:
        for name, p in module.named_parameters():
            found.setdefault(id(p), f"{prefix}: {name}")
    return found


def state_tensors(method) -> list[tuple[str, torch.Tensor]]:
    """The method's memories and centroids: floating tensors it holds directly or in lists, and the tensors of
    the parameter-free modules it holds (a cluster memory's rows). Networks are left out: their gradients are
    checked before every step."""
    found: list[tuple[str, torch.Tensor]] = []

    def add(name, value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            found.append((name, value))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if isinstance(v, torch.Tensor):
                    add(f"{name}[{i}]", v)
        elif isinstance(value, nn.Module) and next(value.parameters(), None) is None:
            for k, v in value.named_buffers():
                add(f"{name}.{k}", v)
            for k, v in vars(value).items():
                if isinstance(v, torch.Tensor):
                    add(f"{name}.{k}", v)

    for name, value in vars(method).items():
        if name != "model":
            add(name, value)
    return found


def check_state(method, epoch: int, step: int | None = None) -> None:
    """The method's memory rows and centroids (:func:`state_tensors`)."""
    for name, value in state_tensors(method):
        check_array(f"memory/centroid tensor {type(method).__name__}.{name}", value.detach(), epoch, step)
