"""The ``physnn`` command: parse options, call :mod:`physnn.api`, print results.

No physics or data logic lives here. Errors a user can cause
(:class:`~physnn.errors.PhysnnError`) are printed as one line on stderr and
exit with status 2. Heavy modules (torch, uproot) are imported inside the
commands so that ``physnn --version`` and ``--help`` answer at once.

- :mod:`~physnn.cli.app`: the application, its shared options, error handling, ``main``;
- :mod:`~physnn.cli.cmd_data`: ``simulate``, ``inspect``, ``scan``, ``load``, ``models``;
- :mod:`~physnn.cli.cmd_train`: ``train``, ``demo``;
- :mod:`~physnn.cli.cmd_run`: ``predict``, ``denoise``, ``encode``, ``export``, ``generate``;
- :mod:`~physnn.cli.cmd_judge`: ``evaluate``, ``compare``;
- :mod:`~physnn.cli.show`: the tables they print.
"""

from __future__ import annotations

from physnn.cli import cmd_data, cmd_judge, cmd_run, cmd_train
from physnn.cli.app import app, main
from physnn.cli.cmd_train import _next_step
from physnn.cli.show import _print_evaluation

#: The commands in the order of ``physnn --help``, after ``simulate showers|events`` (a group of its own, listed first
#: by :class:`~physnn.cli.helptext.FirstThingsFirst`).
COMMANDS = (("inspect", cmd_data.inspect), ("scan", cmd_data.scan), ("load", cmd_data.load_cmd),
            ("models", cmd_data.models), ("train", cmd_train.train), ("predict", cmd_run.predict),
            ("denoise", cmd_run.denoise), ("encode", cmd_run.encode), ("evaluate", cmd_judge.evaluate),
            ("export", cmd_run.export_), ("generate", cmd_run.generate), ("compare", cmd_judge.compare),
            ("demo", cmd_train.demo))
for _name, _command in COMMANDS:
    app.command(_name)(_command)

__all__ = ["COMMANDS", "_next_step", "_print_evaluation", "app", "main"]
