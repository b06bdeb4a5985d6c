"""Training progress on stderr: a rich bar on a terminal, plain lines in a log file.

On a terminal (or in Jupyter) a rich progress bar shows the epoch, the
batches and the running loss. When stderr is not a terminal (a batch job, a
pipe, ``> log.txt 2>&1``) a live bar would print nothing until the epoch ends,
so a plain line is printed every :data:`DEFAULT_INTERVAL` seconds instead
(``PHYSNN_PROGRESS_INTERVAL`` sets the interval)::

    epoch 3/20  batch 120/400  loss 0.412  12.3 s

Both print one summary line per epoch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from physnn.errors import ConfigError
from physnn.fmt import num

#: seconds between two progress lines when stderr is not a terminal
DEFAULT_INTERVAL = 10.0
INTERVAL_ENV = "PHYSNN_PROGRESS_INTERVAL"


def progress_interval() -> float:
    """The seconds between progress lines: ``PHYSNN_PROGRESS_INTERVAL``, else :data:`DEFAULT_INTERVAL`.

    Raises
    ------
    ConfigError
        If the variable is set but is not a number of seconds >= 0.
    """
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        msg = f"{INTERVAL_ENV}={text!r}: expected the seconds between progress lines, e.g. 10 (0: every batch)"
        raise ConfigError(msg)
    return value


class Silent:
    """No progress output (the base of the two displays)."""

    def start(self, epochs: int, first: int, steps: int) -> None:
        """Training of epochs ``first + 1`` to ``epochs``, ``steps`` batches each, begins."""

    def epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) begins."""

    def step(self, loss: Callable[[], float]) -> None:
        """One batch done; ``loss()`` is the epoch's running loss (called only when shown: it syncs a GPU)."""

    def epoch_end(self, row: Mapping[str, Any], improved: bool) -> None:
        """The epoch's metrics are known."""

    def stop(self) -> None:
        """Training ended (or failed)."""


class Bar(Silent):
    """A rich progress bar on a terminal (transient) and one summary line per epoch."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
                            console=console, transient=True)
        self.task: Any = None
        self.epochs = self.n = 0

    def start(self, epochs: int, first: int, steps: int) -> None:
        self.epochs = epochs
        self.bar.start()
        self.task = self.bar.add_task("training", total=(epochs - first) * steps, loss=float("nan"))

    def epoch(self, epoch: int) -> None:
        self.n = 0
        self.bar.update(self.task, description=f"epoch {epoch}/{self.epochs}")

    def step(self, loss: Callable[[], float]) -> None:
        if self.n % 10 == 0:
            self.bar.update(self.task, loss=loss())
        self.n += 1
        self.bar.advance(self.task)

    def epoch_end(self, row: Mapping[str, Any], improved: bool) -> None:
        self.bar.console.print(summary(row, improved))

    def stop(self) -> None:
        self.bar.stop()


class Lines(Silent):
    """Plain progress lines every ``interval`` seconds, for logs."""

    def __init__(self, console: Any, interval: float) -> None:
        self.console = console
        self.interval = interval
        self.epochs = self.steps = self.current = self.n = 0
        self.t0 = self.last = 0.0

    def start(self, epochs: int, first: int, steps: int) -> None:
        self.epochs, self.steps = epochs, steps

    def epoch(self, epoch: int) -> None:
        self.current, self.n = epoch, 0
        self.t0 = self.last = time.monotonic()

    def step(self, loss: Callable[[], float]) -> None:
        self.n += 1
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.console.print(f"epoch {self.current}/{self.epochs}  batch {self.n}/{self.steps}  "
                               f"loss {num(loss())}  {num(now - self.t0)} s", highlight=False, soft_wrap=True)

    def epoch_end(self, row: Mapping[str, Any], improved: bool) -> None:
        self.console.print(summary(row, improved), highlight=False, soft_wrap=True)


def interactive(console: Any = None) -> bool:
    """Whether stderr (or ``console``, a rich console) is a terminal or a Jupyter notebook, where a live bar
    shows."""
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    return console.is_terminal or console.is_jupyter


def note_printer() -> Callable[[str], None]:
    """Print a note on stderr as the progress does (the notes of ``physnn.train`` called from Python)."""
    from rich.console import Console

    console = Console(stderr=True)
    return lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True)


def make_progress(enabled: bool) -> Silent:
    """The progress display on stderr: a bar on a terminal, lines otherwise, nothing when not ``enabled``."""
    if not enabled:
        return Silent()
    from rich.console import Console

    console = Console(stderr=True)
    if interactive(console):
        return Bar(console)
    return Lines(console, progress_interval())


def summary(row: Mapping[str, Any], improved: bool) -> str:
    """One epoch's line: its losses and metrics, the speed, and ``*`` when it is the best so far."""
    keys = [k for k in row if k.startswith(("train_", "val_"))]
    text = "  ".join(f"{k} {num(row[k])}" for k in keys)
    mark = " [green]*[/]" if improved else ""
    return f"epoch {row['epoch']:>3}  {text}  ({num(row['samples_per_s'])} events/s){mark}"
