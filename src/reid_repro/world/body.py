"""Body model adapter: anny (default, Apache-2.0, ships its assets) or SMPL through smplx.

Both backends take the same inputs — shape, a walk-cycle pose and global orientation (yaw) — and return
vertices (z up, metres, the person facing -y at yaw 0), triangle faces and a per-vertex body-part label.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_repro.config.world import BODY_FACTORS
from reid_repro.errors import ReidReproError

PARTS = ("head", "torso", "upper_arm", "lower_arm", "hand", "thigh", "shin", "foot")

# anny bone name prefix -> body part (the dominant bone of a vertex decides its part)
ANNY_BONE_PARTS = {
    "neck": "head", "head": "head", "eye": "head",
    "root": "torso", "pelvis": "torso", "spine": "torso", "clavicle": "torso", "shoulder": "torso",
    "upperarm": "upper_arm", "lowerarm": "lower_arm",
    "wrist": "hand", "finger": "hand", "metacarpal": "hand",
    "upperleg": "thigh", "lowerleg": "shin", "foot": "foot", "toe": "foot",
}
# anny phenotype parameters, each in [0, 1]; these make the body shape of an identity
SHAPE_KEYS = BODY_FACTORS       # config.BODY_FACTORS: what a look's ``body`` ranges may name

# SMPL joint index -> body part, for the smplx backend (SMPL's 24-joint skeleton)
SMPL_JOINT_PARTS = {0: "torso", 1: "thigh", 2: "thigh", 3: "torso", 4: "shin", 5: "shin", 6: "torso", 7: "foot",
                    8: "foot", 9: "torso", 10: "foot", 11: "foot", 12: "head", 13: "torso", 14: "torso", 15: "head",
                    16: "upper_arm", 17: "upper_arm", 18: "lower_arm", 19: "lower_arm", 20: "hand", 21: "hand",
                    22: "hand", 23: "hand"}
SMPL_FILES = ("SMPL_NEUTRAL.pkl",)


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray   # V x 3 float32
    faces: np.ndarray      # F x 3 int64
    parts: np.ndarray      # V int, index into PARTS


def walk_angles(phase: float) -> dict[str, float]:
    """Joint angles (degrees) of a walk cycle at ``phase`` (radians); a pure function of the phase."""
    s = math.sin(phase)
    return {
        "hip_l": 28.0 * s, "hip_r": -28.0 * s,
        "knee_l": 35.0 * max(0.0, -math.sin(phase - 0.6)), "knee_r": 35.0 * max(0.0, math.sin(phase - 0.6)),
        "shoulder_l": -22.0 * s, "shoulder_r": 22.0 * s,
    }


def _rot(axis: str, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def yaw_matrix(yaw_degrees: float) -> np.ndarray:
    return _rot("z", yaw_degrees)[:3, :3]


class AnnyBody:
    """anny full-body model. Its cache lives in ``cache_dir`` (ANNY_CACHE_DIR); only the compact file is kept."""

    def __init__(self, cache_dir: str | os.PathLike):
        cache_dir = Path(cache_dir).resolve()
        cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["ANNY_CACHE_DIR"] = str(cache_dir)
        os.environ.setdefault("WARP_CACHE_PATH", str(cache_dir / "warp"))
        import anny
        import anny.paths
        import torch

        anny.paths.set_anny_cache_path(cache_dir)
        self.torch = torch
        self.model = anny.Anny().eval()
        # The first build also leaves two large intermediate caches (~760 MB); the compact file suffices.
        for big in list(cache_dir.glob("*/build_model_data_*")) + list(cache_dir.glob("*/load_data_*")):
            big.unlink()
        labels = list(self.model.bone_labels)
        self.bone = {name: labels.index(name) for name in labels}
        dominant = self.model.vertex_bone_indices.numpy()[
            np.arange(self.model.vertex_bone_indices.shape[0]), self.model.vertex_bone_weights.numpy().argmax(1)]
        bone_part = np.array([PARTS.index(self._part_of(name)) for name in labels])
        self.parts = bone_part[dominant]
        self.faces = self.model.faces.numpy().astype(np.int64)

    @staticmethod
    def _part_of(bone_name: str) -> str:
        for prefix, part in ANNY_BONE_PARTS.items():
            if bone_name.startswith(prefix):
                return part
        raise ReidReproError(f"anny bone {bone_name!r} has no body part; expected a prefix in {sorted(ANNY_BONE_PARTS)}")

    def _pose(self, phase: float) -> np.ndarray:
        a = walk_angles(phase)
        pose = np.tile(np.eye(4), (len(self.bone), 1, 1))
        # arms down from the rest A-pose, then the swing; legs swing about the lateral (x) axis
        pose[self.bone["upperarm01.L"]] = _rot("y", 50) @ _rot("x", a["shoulder_l"])
        pose[self.bone["upperarm01.R"]] = _rot("y", -50) @ _rot("x", a["shoulder_r"])
        pose[self.bone["upperleg01.L"]] = _rot("x", a["hip_l"])
        pose[self.bone["upperleg01.R"]] = _rot("x", a["hip_r"])
        pose[self.bone["lowerleg01.L"]] = _rot("x", a["knee_l"])
        pose[self.bone["lowerleg01.R"]] = _rot("x", a["knee_r"])
        return pose

    def meshes(self, shape: dict[str, float], phases: list[float], yaws: list[float]) -> list[Mesh]:
        """One posed mesh per (phase, yaw), all with the same body shape; vertices on the ground (min z = 0)."""
        torch = self.torch
        missing = [k for k in SHAPE_KEYS if k not in shape]
        if missing:
            raise ReidReproError(f"body shape lacks {missing}; expected keys {SHAPE_KEYS}")
        n = len(phases)
        poses = torch.tensor(np.stack([self._pose(p) for p in phases]), dtype=self.model.dtype)
        pheno = {k: torch.full((n,), float(shape[k]), dtype=self.model.dtype) for k in SHAPE_KEYS}
        with torch.no_grad():
            verts = self.model(pose_parameters=poses, phenotype_kwargs=pheno)["vertices"].numpy()
        out = []
        for v, yaw in zip(verts, yaws):
            v = v @ yaw_matrix(yaw).T
            v[:, 2] -= v[:, 2].min()
            # micrometres: the model's float reductions differ below 1e-16 m between CPU instruction sets
            out.append(Mesh(np.round(v, 6).astype(np.float32), self.faces, self.parts))
        return out


class SmplxBody:
    """SMPL through the smplx package, for users who have the (licensed) model files."""

    def __init__(self, model_dir: str | os.PathLike):
        model_dir = Path(model_dir)
        smpl_dir = model_dir / "smpl" if (model_dir / "smpl").is_dir() else model_dir
        for name in SMPL_FILES:
            if not (smpl_dir / name).is_file():
                raise ReidReproError(
                    f"{smpl_dir / name}: missing; the smplx body model needs {', '.join(SMPL_FILES)} in "
                    f"{smpl_dir} (register and download 'SMPL for Python' from https://smpl.is.tue.mpg.de, "
                    "rename basicModel_neutral_lbs_10_207_0_v1.1.0.pkl to SMPL_NEUTRAL.pkl), or set "
                    "world.body_model: anny in params.yaml"
                )
        import smplx
        import torch

        self.torch = torch
        self.model = smplx.create(str(smpl_dir.parent if smpl_dir.name == "smpl" else smpl_dir), model_type="smpl",
                                  gender="neutral")
        weights = self.model.lbs_weights.numpy()
        self.parts = np.array([PARTS.index(SMPL_JOINT_PARTS[j]) for j in weights.argmax(1)])
        self.faces = self.model.faces.astype(np.int64)

    def meshes(self, shape: dict[str, float], phases: list[float], yaws: list[float]) -> list[Mesh]:
        torch = self.torch
        betas = torch.tensor([[4.0 * (shape.get(k, 0.5) - 0.5) for k in SHAPE_KEYS] + [0.0] * 4], dtype=torch.float32)
        out = []
        for phase, yaw in zip(phases, yaws):
            a = walk_angles(phase)
            body_pose = torch.zeros(1, 69)
            for joint, key in ((1, "hip_l"), (2, "hip_r"), (4, "knee_l"), (5, "knee_r")):
                body_pose[0, 3 * (joint - 1)] = math.radians(-a[key] if "hip" in key else a[key])
            for joint, key, side in ((16, "shoulder_l", 1), (17, "shoulder_r", -1)):
                body_pose[0, 3 * (joint - 1) + 2] = side * math.radians(-70)
            orient = torch.tensor([[math.pi / 2, 0.0, 0.0]])  # SMPL is y-up; make it z-up, facing -y
            v = self.model(betas=betas, body_pose=body_pose, global_orient=orient).vertices[0].detach().numpy()
            v = v @ yaw_matrix(yaw).T
            v[:, 2] -= v[:, 2].min()
            # micrometres: the model's float reductions differ below 1e-16 m between CPU instruction sets
            out.append(Mesh(np.round(v, 6).astype(np.float32), self.faces, self.parts))
        return out


    def posed(self, betas, body_pose, global_orient) -> Mesh:
        """A mesh from raw SMPL parameters in a camera frame (x right, y down, z forward, as HMR/SPIN write
        them), turned into ours (z up, the camera looking along +y) and put on the ground."""
        torch = self.torch
        v = self.model(betas=torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1),
                       body_pose=torch.as_tensor(body_pose, dtype=torch.float32).reshape(1, 69),
                       global_orient=torch.as_tensor(global_orient, dtype=torch.float32).reshape(1, 3)
                       ).vertices[0].detach().numpy()
        v = v @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])   # (x, y, z) -> (x, z, -y)
        v[:, 2] -= v[:, 2].min()
        return Mesh(v.astype(np.float32), self.faces, self.parts)


def make_body(body_model: str, cache_dir: str | os.PathLike, smpl_model_dir: str | None = None):
    """The adapter named in params.yaml (``world.body_model``)."""
    if body_model == "anny":
        return AnnyBody(cache_dir)
    if body_model == "smplx":
        if not smpl_model_dir:
            raise ReidReproError("world.body_model is 'smplx' but world.smpl_model_dir is not set; expected the "
                                 "folder that holds SMPL_NEUTRAL.pkl")
        return SmplxBody(smpl_model_dir)
    raise ReidReproError(f"world.body_model={body_model!r}; expected 'anny' or 'smplx'")
