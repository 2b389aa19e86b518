"""params.yaml ``data`` and ``meshes``: where each dataset and its GCL structure renders come from."""

from __future__ import annotations

from pathlib import Path


from reid_repro.errors import ReidReproError



DATA_KEYS = ("root", "manifest", "format")
# What data.<name>.format may say: an image dataset's layout (data/formats.py), a video dataset's (data/video.py),
# or ``imagenet``: a folder holding torchvision's ImageNet checkpoints, which only the pretrain stage reads (the
# papers' start). data/manifest.py reads each; a test checks its readers against this list.
DATA_FORMATS = ("market1501", "dukemtmc", "msmt17", "mars", "dukemtmc-videoreid", "imagenet")
MESH_SOURCES = ("synthetic", "params", "renders")


def validate_meshes(params: dict) -> None:
    """params.yaml ``meshes``: per dataset, where its GCL structure renders come from (shape and values). Whether
    they can be made from the dataset is checked by the stages that read them (:func:`check_mesh_source`), so a
    real root with the default ``synthetic`` entry stops only the meshes, warm-up and GCL+ stages, never the
    methods that need no renders."""
    meshes, data = params["meshes"], params["data"]
    if not isinstance(meshes, dict):
        raise ReidReproError("params.yaml: meshes: expected a mapping of dataset name -> {source, from}")
    for name, entry in meshes.items():
        if name not in data:
            raise ReidReproError(f"params.yaml: meshes.{name}: not a dataset; expected keys of data: {sorted(data)}")
        if not isinstance(entry, dict) or sorted(entry) != ["from", "source"]:
            raise ReidReproError(f"params.yaml: meshes.{name}: expected a mapping with keys source and from, got "
                                 f"{entry!r}")
        if entry["source"] not in MESH_SOURCES:
            raise ReidReproError(f"params.yaml: meshes.{name}.source={entry['source']!r}; expected one of "
                                 f"{list(MESH_SOURCES)}")
        if not isinstance(entry["from"], str) or not entry["from"]:
            raise ReidReproError(f"params.yaml: meshes.{name}.from={entry['from']!r}; expected a path")


def check_mesh_source(params: dict, name: str) -> None:
    """The structure renders of dataset ``name`` can be made: ``synthetic`` renders the world's ground truth, so
    it needs the dataset to be that world folder. A real root with synthetic meshes is an error naming what to
    set instead; the meshes stage raises it (and so do the GCL+ stages after it)."""
    validate_meshes(params)
    entry = params["meshes"].get(name)
    if entry is None:
        raise ReidReproError(f"params.yaml: meshes.{name}: missing; GCL/GCL+ need structure renders of data.{name} "
                             "(source renders: a folder of GCL renders, or params: an SMPL parameter parquet)")
    root = params["data"][name]["root"]
    if entry["source"] == "synthetic" and Path(entry["from"]) != Path(root):
        raise ReidReproError(
            f"params.yaml: meshes.{name}: source synthetic renders the synthetic world's truth in "
            f"{entry['from']}, but data.{name}.root is {root}; for a real dataset set meshes.{name}.source to "
            "params (from: an SMPL parameter parquet) or renders (from: a folder of GCL renders). Only the "
            "meshes, GCL+ warm-up and GCL+ stages need them: the other methods train without")
