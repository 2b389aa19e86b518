"""Pick CUDA and faiss-gpu when present, CPU otherwise, with no edits.

Imports are local so that CPU-only numeric code (clustering, evaluation) does not pay for importing torch.
"""

from __future__ import annotations


def torch_device(prefer: str = "auto"):
    import torch

    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if prefer.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={prefer!r} was asked for, but torch.cuda.is_available() is False")
    return torch.device(prefer)


def faiss_has_gpu() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
