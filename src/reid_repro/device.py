"""Where a run computes: ``params.yaml: device`` (auto | cpu | cuda | cuda:N), never a silent CPU at paper scale.

``auto`` takes CUDA when torch sees it and the CPU otherwise, except at ``scale: paper``: a ResNet-50 at 256x128
on the CPU "trains" for days, so there a missing GPU is an error unless ``device: cpu`` is set on purpose. The
usual reason torch sees no GPU on a GPU machine is a driver older than the pinned wheels need (docs/gpu.md, "GPU").
Under ``torchrun`` each process takes the GPU of its ``LOCAL_RANK``.

Imports are local so that CPU-only numeric code (clustering, evaluation) does not pay for importing torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from reid_repro.errors import ReidReproError

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_setting(value) -> str:
    """``params.yaml: device`` validated: auto, cpu, cuda or cuda:N."""
    if not isinstance(value, str) or not DEVICE_RE.match(value):
        raise ReidReproError(f"params.yaml: device={value!r}; expected auto, cpu, cuda or cuda:N")
    return value


def torch_device(prefer: str = "auto", scale: str = "cpu"):
    """The torch device for ``prefer`` (module docstring); at ``scale: paper`` ``auto`` without CUDA is an error."""
    import torch

    prefer = check_device_setting(prefer)
    local_rank = os.environ.get("LOCAL_RANK")
    if prefer == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        if prefer in ("auto", "cuda"):
            return torch.device("cuda", int(local_rank) if local_rank is not None else torch.cuda.current_device())
        return torch.device(prefer)
    if prefer == "auto" and scale != "paper":
        return torch.device("cpu")
    why = (f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) sees no GPU "
           "(torch.cuda.is_available() is False): no NVIDIA GPU, or a driver older than this CUDA build needs "
           "(docs/gpu.md, \"GPU\": the driver the pinned wheels need and the conda environment for older ones)")
    if prefer == "auto":
        raise ReidReproError(f"params.yaml: scale=paper needs a GPU, but {why}; set device: cpu in params.yaml "
                             "to run paper scale on the CPU anyway (days per run)")
    raise ReidReproError(f"params.yaml: device={prefer!r}, but {why}")


def params_device(params: dict):
    """The device of a stage: ``params.yaml: device`` (default auto) at ``params.yaml: scale``."""
    return torch_device(params.get("device", "auto"), params.get("scale", "cpu"))


def prepare_device(device) -> None:
    """Per-process settings of the device: cuDNN picks its fastest convolution algorithms for the fixed input
    size (``cudnn.benchmark``, as both reference codes set), unless ``REID_REPRO_DETERMINISTIC=1`` asks for
    cuDNN's deterministic algorithms instead (slower; the only way to repeat a GPU run bit for bit)."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        deterministic = os.environ.get("REID_REPRO_DETERMINISTIC") == "1"
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


def nvidia_driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), or None where there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=False).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip() if out else None


def device_info(device) -> dict:
    """What a run computed on, for run.json and MLflow: the device, its name, and the CUDA, cuDNN, driver and
    torch versions (None where they do not apply)."""
    import torch

    info = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None,
            "capability": None, "cudnn": None, "driver": None}
    if getattr(device, "type", str(device)) == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info.update(gpu=torch.cuda.get_device_name(index),
                    capability=".".join(map(str, torch.cuda.get_device_capability(index))),
                    cudnn=torch.backends.cudnn.version(), driver=nvidia_driver())
    else:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def faiss_has_gpu() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
