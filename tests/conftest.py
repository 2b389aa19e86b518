"""Fixtures shared by the world and mesh tests: one anny body, one renderer and one tiny world per session."""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from reid_repro.config import Profile, load_world

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("ANNY_CACHE_DIR", ROOT / ".cache" / "anny"))


@pytest.fixture(scope="session")
def body():
    from reid_repro.world.body import make_body

    return make_body("anny", CACHE)


@pytest.fixture(scope="session")
def renderer():
    from reid_repro.world.render import Renderer

    return Renderer(128, 64)


def tiny_config():
    cfg = load_world(ROOT / "params.yaml")
    smoke = Profile(train_ids=4, test_ids=3, distractor_ids=1, images_per_id=4, test_images_per_id=4,
                    queries_per_id=2, junk_images=2)
    return replace(cfg, profile="smoke", profiles={"smoke": smoke},
                   domains={"market": cfg.domains["market"], "duke": cfg.domains["duke"]})


@pytest.fixture(scope="session")
def world(tmp_path_factory, body, renderer):
    from reid_repro.world.generate import generate_world

    out = tmp_path_factory.mktemp("world")
    return out, generate_world(tiny_config(), out, body, renderer)


