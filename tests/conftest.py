"""Fixtures shared by the world and mesh tests: one anny body, one renderer and one tiny world per session."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reid_repro import numerics

numerics.apply()        # reference numerics (REID_CPU=native opts out) before numpy and torch load

from reid_repro.config import Profile, load_world  # noqa: E402

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


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's work stealing (`make test`), each worker starts on a contiguous half of this list and
    an idle worker steals from the end of the other's queue. The smoke pipeline (test_pipeline.py's `built`,
    about a third of the suite's time) is built by the first test that needs it, so the tests on the built
    pipeline go first: one worker builds while the other runs the rest of the suite, stealing the builder's share
    of it from the end, and only reaches the pipeline tests, which wait for the build, once the rest is done (with
    the pipeline tests last, the second worker waited 161 of the suite's 869 s for the build while the builder's
    own share of the rest waited behind it: bench/results/suite.json)."""
    def uses_pipeline(item):
        return "built" in getattr(item, "fixturenames", ())

    pipeline = [item for item in items if uses_pipeline(item)]
    if pipeline:
        rest = [item for item in items if not uses_pipeline(item)]
        items[:] = pipeline + rest


def pytest_configure(config):
    """Under pytest-xdist each worker, and every stage or CLI it starts, uses one thread for PyTorch, OpenMP (faiss)
    and numba. With the default (one thread per core) two workers on two cores run four threads that spin-wait on
    each other: the suite took 1,854 s that way, no faster than in one process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["REID_THREADS"] = "1"            # what the reid-repro commands the tests start set
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[name] = "1"
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
