"""The validation split of the studies (data/validation.py): seeded, disjoint from training, and every query
findable in the gallery from another camera."""

import numpy as np
import pandas as pd
import pytest

from reid_repro.data.validation import carve_validation
from reid_repro.errors import ReidReproError


def _train(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(20):
        n = int(rng.integers(2, 9))
        cams = rng.integers(0, 1 if pid == 3 else 4, size=n)        # identity 3: one camera only
        rows += [{"path": f"{pid}_{i}.png", "pid": pid, "camid": int(c), "split": "train"} for i, c in enumerate(cams)]
    return pd.DataFrame(rows)


def test_held_out_identities_are_seeded_disjoint_and_searchable():
    train = _train()
    rest, query, gallery = carve_validation(train, 0.25, seed=7, queries_per_id=2)
    held = set(query["pid"]) | set(gallery["pid"])
    assert len(held) == 5 and 3 not in held                              # one camera: never held out
    assert not held & set(rest["pid"]) and len(rest) + len(query) + len(gallery) == len(train)
    for q in query.itertuples():
        same = gallery[(gallery["pid"] == q.pid)]
        assert (same["camid"] != q.camid).any()                           # a match from another camera
    assert query.groupby("pid").size().max() <= 2 and set(query["split"]) == {"query"}
    again = carve_validation(train, 0.25, seed=7, queries_per_id=2)
    pd.testing.assert_frame_equal(again[1], query)
    assert set(carve_validation(train, 0.25, seed=8)[1]["pid"]) != set(query["pid"])


def test_impossible_splits_are_named_errors():
    with pytest.raises(ReidReproError, match="fraction=1.5"):
        carve_validation(_train(), 1.5, 0)
    with pytest.raises(ReidReproError, match="lower the fraction"):
        carve_validation(_train(), 0.99, 0)
