"""Model files: UBJSON round trip with metadata; anything else refused, pickle never run."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from xgenerator.errors import InvalidInput
from xgenerator.ml.bundle import ModelBundle, booster_bytes, dumps, load_booster, loads
from xgenerator.ml.features import to_model_frame
from xgenerator.ml.train import TrainSpec, train


@pytest.fixture
def bundle(frame: pd.DataFrame, features: list[str], fast_params: Any) -> ModelBundle:
    result = train(frame, TrainSpec("classification", "truth", features, fast_params, 5))
    return ModelBundle(result.booster, "classification", "truth", result.features, result.labels)


def test_round_trip_keeps_metadata_and_predictions(
    bundle: ModelBundle, frame: pd.DataFrame
) -> None:
    data = dumps(bundle)
    assert data[:1] == b"{"
    loaded = loads(data)
    assert (loaded.task_type, loaded.target) == ("classification", "truth")
    assert loaded.features == bundle.features
    assert loaded.labels == bundle.labels
    assert loaded.labels is not None and [type(c) for c in loaded.labels.classes] == [bool, bool]
    x = to_model_frame(frame, bundle.features)
    np.testing.assert_array_equal(
        loaded.booster.inplace_predict(x), bundle.booster.inplace_predict(x)
    )


def test_regression_bundle(frame: pd.DataFrame, features: list[str], fast_params: Any) -> None:
    result = train(frame, TrainSpec("regression", "value", features, fast_params, 3))
    loaded = loads(dumps(ModelBundle(result.booster, "regression", "value", result.features, None)))
    assert loaded.labels is None and loaded.task_type == "regression"


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch, (str(self.marker),))


def test_a_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        payload = pickle.dumps(Exploit(marker), protocol=protocol)
        with pytest.raises(InvalidInput):
            loads(payload)
        with pytest.raises(InvalidInput):
            load_booster(payload)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"", b"{not a model", b"\x00\x01", b"[1, 2]"])
def test_garbage_is_invalid_input(payload: bytes) -> None:
    with pytest.raises(InvalidInput):
        loads(payload)


def test_a_model_without_metadata_is_refused(bundle: ModelBundle) -> None:
    bare = load_booster(booster_bytes(bundle.booster))
    with pytest.raises(InvalidInput, match="metadata"):
        loads(booster_bytes(bare))


def test_metadata_that_does_not_fit_the_booster_is_refused(bundle: ModelBundle) -> None:
    bundle.features = bundle.features[:2]
    with pytest.raises(InvalidInput):
        loads(dumps(bundle))
    bundle.booster.set_attr(xgenerator=json.dumps({"format": 99}))
    with pytest.raises(InvalidInput):
        loads(booster_bytes(bundle.booster))


def test_booster_bytes_round_trip_and_json_models(bundle: ModelBundle) -> None:
    data = booster_bytes(bundle.booster)
    assert load_booster(data).num_boosted_rounds() == 5
    as_json = bytes(bundle.booster.save_raw(raw_format="json"))
    assert isinstance(load_booster(as_json), xgb.Booster)
