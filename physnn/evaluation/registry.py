"""Evaluators of run folders by task kind: a run is judged by what its task produces.

A predictions file (classification, regression) is judged by
:func:`physnn.evaluation.report.evaluate`; a run whose task produces no
predictions file (an autoencoder, a GAN) registers the function that judges
the run itself with :func:`register_evaluator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

E = TypeVar("E", bound=Callable[..., Any])

#: task kind -> ``evaluator(loaded_run, *, out, split, seed, mc_samples, plots, image_format, overwrite)``.
EVALUATORS: dict[str, Callable[..., Any]] = {}


def register_evaluator(kind: str) -> Callable[[E], E]:
    """Decorator: the function judges run folders of task ``kind``."""

    def decorate(func: E) -> E:
        EVALUATORS[kind] = func
        return func

    return decorate
