"""What makes a training resumed from its checkpoint the training that never stopped.

XGBoost keeps its random state and its early-stopping state in memory only; a checkpoint is
the model alone. So where the trees sample, the rounds after a checkpoint draw from a state
set by the round alone (`RoundSeeds`), and early stopping is rebuilt from the scores of the
rounds stored before the checkpoint (`ResumableEarlyStopping`). Where XGBoost keeps state no
checkpoint holds, `inexact_resume` says so, and the job's `resumed` event carries it.
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


# The checkpoint cadence a training reseeds at, kept on its checkpoints (removed from the model).
CADENCE_ATTR = "xgenerator_checkpoint_every"


def checkpoint_cadence(start: xgb.Booster | None, rounds_done: int, wanted: int) -> int:
    """Every how many rounds this training may checkpoint (and so reseeds): a resumed one
    keeps the cadence of the checkpoint it resumes from, whatever this worker's setting, so
    that both runs reseed at the same rounds; a checkpoint without one was written by a
    version that reseeded every round."""
    recorded = None if start is None or not rounds_done else start.attr(CADENCE_ATTR)
    if recorded is not None:
        return int(recorded)
    return 1 if rounds_done else wanted


class RoundSeeds(xgb.callback.TrainingCallback):
    """Where the trees sample rows or columns, the random state at a checkpoint depends on
    the round alone, so a job resumed from it draws the same rows and columns as one that
    never stopped.

    XGBoost keeps its random state in memory only: a resumed process would otherwise start
    the generator afresh at the checkpoint. Reseeding alone is not enough: the tree updater
    seeds its column sampler once, when it is created, from the generator. So before the
    first round and before every round that follows a possible checkpoint (every `every`
    rounds of the job), round k + 1 boosts with seed `seed + k` (k counts every round in the
    model) and the booster's configuration is reloaded, which re-creates the updater, whether
    the process is new or not. In between, the state runs on as in any training: reloading
    before every round cost 55 % of a 200-round training of 54k rows. Trees that do not sample
    draw nothing and are left alone. The model keeps the user's seed.
    """

    def __init__(self, seed: int, *, resample: bool, every: int = 0, rounds_done: int = 0):
        super().__init__()
        self.seed = seed
        self.resample = resample
        self.every = every
        self.rounds_done = rounds_done

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        # The boosting loop (`ml.boosting`, as `xgb.train`) numbers its rounds from 0 and passes
        # that number to the objective (ranking's pair sampling seeds on it): number them
        # across the resume.
        done = model.num_boosted_rounds()
        update = model.update

        def update_at(dtrain: xgb.DMatrix, iteration: int, fobj: Any = None) -> None:
            update(dtrain, iteration + done, fobj)

        model.update = update_at  # type: ignore[method-assign]
        model.set_attr(**{CADENCE_ATTR: str(self.every)})  # for a resume from its checkpoints
        return model

    def before_iteration(
        self, model: xgb.Booster, epoch: int, evals_log: dict[str, dict[str, list[Any]]]
    ) -> bool:
        done = self.rounds_done + epoch
        if self.resample and (epoch == 0 or (self.every and done % self.every == 0)):
            model.set_param({"seed": self.seed + model.num_boosted_rounds()})
            model.load_config(model.save_config())
        return False

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        model.__dict__.pop("update", None)
        model.set_attr(**{CADENCE_ATTR: None})
        if self.resample:
            model.set_param({"seed": self.seed})
        return model


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
