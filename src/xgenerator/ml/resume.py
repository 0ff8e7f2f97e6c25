"""What makes a training resumed from its checkpoint the training that never stopped.

XGBoost keeps its random state and its early-stopping state in memory only; a checkpoint is
the model alone. So where the trees sample, round k boosts with seed `seed + k`
(`RoundSeeds`), and early stopping is rebuilt from the scores of the rounds stored before the
checkpoint (`ResumableEarlyStopping`). Where XGBoost keeps state no checkpoint holds,
`inexact_resume` says so, and the job's `resumed` event carries it.
"""

from __future__ import annotations

from typing import Any

import xgboost as xgb

_SAMPLING = ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode")


def samples(params: dict[str, object]) -> bool:
    """Whether the trees sample rows or columns (a ratio below 1)."""
    return any(float(params.get(name, 1.0)) < 1.0 for name in _SAMPLING)  # type: ignore[arg-type]


# What a resume cannot reproduce, and says so.
APPROX_SAMPLING_RESUME = (
    "tree_method approx with row or column sampling: the rounds after the checkpoint sample "
    "other rows than an uninterrupted run would (XGBoost's approx updater keeps state across "
    "rounds that no checkpoint holds), so the model differs from it as another seed would"
)


def inexact_resume(params: dict[str, object]) -> str | None:
    """Why a job with these parameters, resumed from a checkpoint, would not be the job that
    never stopped; None when it is (every other configuration, tested)."""
    if params.get("tree_method") == "approx" and samples(params):
        return APPROX_SAMPLING_RESUME
    return None


class RoundSeeds(xgb.callback.TrainingCallback):
    """Where the trees sample rows or columns, round k boosts with seed `seed + k` (k counts
    every round in the model), so a job resumed from its checkpoint draws the same rows and
    columns as one that never stopped.

    XGBoost keeps its random state in memory only: a resumed process would otherwise start
    the generator afresh at the checkpoint. Reseeding alone is not enough: the tree updater
    seeds its column sampler once, the first time it runs, from the generator. Reloading the
    booster's configuration re-creates the updater, so every round starts from the same state
    whether the process is new or not. Trees that do not sample draw nothing, and the booster
    is left alone: a changed parameter makes XGBoost configure itself again before the next
    round, 12 % of a 200-round training of 54k rows. The model keeps the user's seed.
    """

    def __init__(self, seed: int, *, resample: bool) -> None:
        super().__init__()
        self.seed = seed
        self.resample = resample

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        # XGBoost numbers the rounds of each `xgb.train` call from 0 and passes that number to
        # the objective (ranking's pair sampling seeds on it): number them across the resume.
        done = model.num_boosted_rounds()
        update = model.update

        def update_at(dtrain: xgb.DMatrix, iteration: int, fobj: Any = None) -> None:
            update(dtrain, iteration + done, fobj)

        model.update = update_at  # type: ignore[method-assign]
        return model

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        model.__dict__.pop("update", None)
        if self.resample:
            model.set_param({"seed": self.seed})
        return model

    def before_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        if self.resample:
            model.load_config(model.save_config())
            model.set_param({"seed": self.seed + model.num_boosted_rounds()})
        return False


class ResumableEarlyStopping(xgb.callback.EarlyStopping):
    """XGBoost's early stopping on the validation metric, carried over a resume: the scores
    of this job's rounds before the checkpoint (`earlier`) are replayed through the same
    callback before boosting resumes, so the best round and the rounds since it are those of
    the run that never stopped. With no earlier rounds it is XGBoost's own callback."""

    def __init__(self, rounds: int, earlier: list[dict[str, Any]]) -> None:
        super().__init__(rounds=rounds, data_name="validation", save_best=True)
        self.earlier = earlier
        self.stop_now = False

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        model = super().before_training(model)
        metric = _stopping_metric(self.earlier)
        if metric is None:
            return model
        scores = [float(entry[f"validation-{metric}"]) for entry in self.earlier]
        for i in range(len(scores)):
            # `epoch` is relative to the rounds already in the model (XGBoost adds them)
            log = {"validation": {metric: scores[: i + 1]}}
            self.stop_now = self.after_iteration(model, i - len(scores), log)  # type: ignore[arg-type]
        return model

    def before_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        return self.stop_now  # the run before the checkpoint had already stopped


def _stopping_metric(earlier: list[dict[str, Any]]) -> str | None:
    """The metric XGBoost's early stopping reads: the last validation metric of a round."""
    if not earlier:
        return None
    names = [k.removeprefix("validation-") for k in earlier[0] if k.startswith("validation-")]
    if not names or not all(f"validation-{names[-1]}" in entry for entry in earlier):
        return None
    return names[-1]
