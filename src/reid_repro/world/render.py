"""Headless rendering with pyrender (maintained fork) over EGL, or OSMesa when PYOPENGL_PLATFORM=osmesa.

An orthographic camera looks along +y at a person standing on z = 0, so a render keeps the image's aspect
ratio and the same placement (offset, scale) puts the structure render exactly where the person is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from reid_repro.errors import ReidReproError
from reid_repro.world.body import yaw_matrix

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

HOW_TO_INSTALL = (
    "Rendering needs an OpenGL context without a display: EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) "
    "or, with PYOPENGL_PLATFORM=osmesa, OSMesa (Debian: libosmesa6) and PyOpenGL==3.1.10"
)


@dataclass(frozen=True)
class Placement:
    """Where the person sits in the frame: horizontal/vertical offset (metres) and zoom."""

    dx: float = 0.0
    dz: float = 0.0
    scale: float = 1.0


class Renderer:
    def __init__(self, height: int, width: int, view_height: float = 2.0):
        try:
            import pyrender
            import trimesh

            self.renderer = pyrender.OffscreenRenderer(width, height)
        except Exception as exc:  # the GL stack raises many different types here
            raise ReidReproError(f"cannot create an offscreen {os.environ['PYOPENGL_PLATFORM']} renderer ({exc}). "
                                 f"{HOW_TO_INSTALL}") from exc
        self.pyrender, self.trimesh = pyrender, trimesh
        self.height, self.width, self.view_height = height, width, view_height

    def render(self, vertices, faces, colors, placement: Placement = Placement(), extras=(), background=(0, 0, 0),
               light: float = 3.0, ambient: float = 0.45, smooth: bool = False, light_azimuth: float = 0.0,
               light_color=None):
        """RGB (H x W x 3 uint8) and foreground mask (H x W bool) of a mesh with per-vertex colours.

        ``extras`` are (vertices, faces, rgb) triples drawn too (a bag, for example). The directional light comes
        from the camera's side, tilted down, turned ``light_azimuth`` degrees about the vertical; ``light_color``
        an RGB triple (None: white).
        """
        pr, tm = self.pyrender, self.trimesh
        scene = pr.Scene(bg_color=[c / 255 for c in background] + [1.0], ambient_light=[ambient] * 3)
        for v, f, c in [(vertices, faces, colors), *extras]:
            c = np.broadcast_to(np.asarray(c, dtype=np.uint8), (len(v), 3))
            rgba = np.concatenate([c, np.full((len(v), 1), 255, np.uint8)], 1)
            scene.add(pr.Mesh.from_trimesh(tm.Trimesh(v, f, vertex_colors=rgba, process=False), smooth=smooth))
        self._add_camera_and_light(scene, placement, light, light_azimuth, light_color)
        color, depth = self.renderer.render(scene)
        return color.copy(), depth > 0

    def _add_camera_and_light(self, scene, placement: Placement, light: float, azimuth: float = 0.0,
                              color=None) -> None:
        pr = self.pyrender
        half_h = self.view_height / 2 / placement.scale
        camera = pr.OrthographicCamera(xmag=half_h * self.width / self.height, ymag=half_h, znear=0.1, zfar=20.0)
        # camera at y = -6 looking along +y, image up = +z, centred on (dx, 0.85 + dz)
        pose = np.array([[1, 0, 0, -placement.dx], [0, 0, -1, -6.0], [0, 1, 0, 0.85 + placement.dz], [0, 0, 0, 1]],
                        dtype=float)
        scene.add(camera, pose=pose)
        light_pose = pose.copy()
        light_pose[:3, :3] = pose[:3, :3] @ np.array([[1, 0, 0], [0, 0.9, -0.44], [0, 0.44, 0.9]])
        if azimuth:
            light_pose[:3, :3] = yaw_matrix(azimuth) @ light_pose[:3, :3]
        if color is None:
            scene.add(pr.DirectionalLight(intensity=light), pose=light_pose)
        else:
            scene.add(pr.DirectionalLight(color=np.asarray(color, dtype=float), intensity=light), pose=light_pose)

    def turntable(self, vertices, faces, yaws, placement: Placement = Placement(), grey: int = 150,
                  light: float = 2.5, ambient: float = 0.3) -> list[np.ndarray]:
        """Grey structure renders (H x W uint8) of one mesh turned about the vertical axis by each of ``yaws``.

        The scene is built once and only the mesh node's pose changes, so the mesh is uploaded once per call.
        """
        pr, tm = self.pyrender, self.trimesh
        scene = pr.Scene(bg_color=[0.0, 0.0, 0.0, 1.0], ambient_light=[ambient] * 3)
        material = pr.MetallicRoughnessMaterial(baseColorFactor=[grey / 255] * 3 + [1.0], metallicFactor=0.0,
                                                roughnessFactor=0.8)
        node = scene.add(pr.Mesh.from_trimesh(tm.Trimesh(vertices, faces, process=False), material=material,
                                              smooth=True))
        self._add_camera_and_light(scene, placement, light)
        out = []
        for yaw in yaws:
            pose = np.eye(4)
            pose[:3, :3] = yaw_matrix(yaw)
            scene.set_pose(node, pose)
            color, _ = self.renderer.render(scene)
            out.append(color[..., 0].copy())
        return out

    def close(self) -> None:
        self.renderer.delete()
