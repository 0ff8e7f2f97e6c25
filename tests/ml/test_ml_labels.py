"""Class labels keep their original Python types through encode/decode and JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xgenerator.errors import InvalidInput
from xgenerator.ml.labels import LabelEncoding


@pytest.mark.parametrize(
    ("values", "classes"),
    [
        (["yes", "no", "yes", None], ["no", "yes"]),
        (np.array([9, 3, 7, 3]), [3, 7, 9]),
        ([True, False, True], [False, True]),
        ([1.0, 0.0, np.nan], [0, 1]),  # an int column made float by a missing value
        ([0.5, 1.5], [0.5, 1.5]),
    ],
)
def test_fit_decode_keep_types(values: list[object], classes: list[object]) -> None:
    series = pd.Series(values)
    encoding = LabelEncoding.fit(series)
    assert encoding.classes == classes
    assert [type(c) for c in encoding.classes] == [type(c) for c in classes]
    clean = series.dropna()
    codes = encoding.encode(clean)
    decoded = encoding.decode(codes)
    assert decoded == [encoding.classes[c] for c in codes]
    assert [type(v) for v in decoded] == [type(classes[0])] * len(decoded)
    restored = LabelEncoding.from_dict(json.loads(json.dumps(encoding.to_dict())))
    assert restored == encoding
    assert [type(c) for c in restored.classes] == [type(c) for c in classes]


def test_bools_and_ints_are_different_classes() -> None:
    encoding = LabelEncoding(classes=[False, True])
    assert encoding.unknown(pd.Series([1, True], dtype=object)) == [1]


def test_unknown_labels() -> None:
    encoding = LabelEncoding.fit(pd.Series(["a", "b"]))
    assert encoding.unknown(pd.Series(["a", "c", None])) == ["c"]
    with pytest.raises(InvalidInput) as info:
        encoding.encode(pd.Series(["a", "c"]))
    assert info.value.details == {"unknown": ["'c'"]}


def test_from_dict_refuses_malformed() -> None:
    for bad in ({"classes": ["a"]}, {"classes": "ab"}, {"classes": ["a", None]}, None):
        with pytest.raises(InvalidInput):
            LabelEncoding.from_dict(bad)
