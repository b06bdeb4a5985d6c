"""Which epoch is best: the monitored metric and the direction its task declares.

Every task says how each metric it reports is judged
(:meth:`physnn.models.tasks.Task.metric_goals`): ``"min"`` (a loss, an
RMSE, a separation power), ``"max"`` (an AUC, a denoising gain) or a nominal
value (a coverage is best at 68.27%, an energy bias at 0). Nothing is guessed
from a metric's name. ``train.early_stopping.mode: min|max`` overrides the
task's direction; a monitor that the task does not report is an error that
lists the metrics that exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from physnn.errors import ConfigError

Goal = str | float

#: metrics of the training pass: losses, the lower the better
TRAIN_GOALS: dict[str, Goal] = {"loss": "min", "distance": "min", "generator_loss": "min", "energy_nll": "min"}


@dataclass(frozen=True)
class Monitor:
    """The monitored metric of a run and how to rank its values.

    Attributes
    ----------
    name
        The metric's column in ``metrics.csv`` (``val_auc``, ``train_loss``, ...).
    goal
        ``"min"``, ``"max"`` or the nominal value.
    """

    name: str
    goal: Goal

    @classmethod
    def resolve(cls, name: str, mode: str, val_goals: Mapping[str, Goal], train_goals: Mapping[str, Goal]) -> Monitor:
        """The monitor ``name`` with the task's goal, or ``mode`` when it is ``min``/``max``.

        Raises
        ------
        ConfigError
            If the task reports no metric of that name.
        """
        goals = {**{f"train_{k}": v for k, v in train_goals.items()}, **{f"val_{k}": v for k, v in val_goals.items()}}
        if name not in goals:
            msg = (f"train.early_stopping.monitor {name!r} is not a metric of this task; "
                   f"available: {', '.join(goals)}")
            raise ConfigError(msg)
        return cls(name, mode if mode in ("min", "max") else goals[name])

    def score(self, value: float) -> float:
        """A number to minimise: the value, its negative, or its distance from the nominal value."""
        if self.goal == "min":
            return float(value)
        if self.goal == "max":
            return -float(value)
        return abs(float(value) - float(self.goal))

    def describe(self) -> str:
        """``val_auc (max)``, ``val_coverage_1sigma (nearest 0.6827)``."""
        goal = self.goal if isinstance(self.goal, str) else f"nearest {self.goal:.4g}"
        return f"{self.name} ({goal})"
