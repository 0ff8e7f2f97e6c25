"""The SHAP summary a training job keeps: its failure costs the summary, never the model."""

from __future__ import annotations

from typing import cast

from tests.ml.conftest import FAST, FEATURES, make_frame
from xgenerator.jobs.kinds.train import _shap_summary
from xgenerator.jobs.runtime import Runtime
from xgenerator.ml.train import TrainSpec, train


class Events:
    """Stands in for the job runtime's event log (the only part the summary touches)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, event: str, message: str) -> None:
        self.events.append((event, message))


def test_the_summary_skips_rows_without_a_target_and_a_failure_is_an_event() -> None:
    frame = make_frame(200)
    spec = TrainSpec("classification", "yes_no", FEATURES, dict(FAST), 5)
    result = train(frame, spec)
    events = Events()
    runtime = cast(Runtime, events)
    with_missing = frame.assign(yes_no=frame["yes_no"].where(frame.index >= 50, None))
    summary = _shap_summary(runtime, with_missing, spec, result)
    assert summary is not None and summary["rows"] == 150
    assert set(summary["values"]) == set(FEATURES) and events.events == []

    broken = frame.drop(columns=["cat"])  # the data no longer fits the model
    assert _shap_summary(runtime, broken, spec, result) is None
    assert [e for e, _ in events.events] == ["shap_summary_failed"]
    assert "cat" in events.events[0][1]
