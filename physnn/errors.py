"""Errors that physnn raises on bad input.

Every error a user can cause by pointing physnn at the wrong file, branch or
option is a :class:`PhysnnError`. Its message is one line that names the file,
tree, branch or key and says what was expected. The CLI prints that line and
exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PhysnnError(Exception):
    """Base class of every user-facing physnn error.

    Parameters
    ----------
    *args
        The message (one line).
    options
        The keyword arguments the message names, each written ``name=True`` in it (Python's spelling, e.g.
        ``overwrite=True``); the command line words them its own way (:mod:`physnn.cli`).
    """

    def __init__(self, *args: object, options: Iterable[str] = ()) -> None:
        super().__init__(*args)
        self.options = tuple(options)


class ConfigError(PhysnnError, ValueError):
    """A configuration file or option is invalid (unknown key, wrong type, ...)."""


class InputFileError(PhysnnError, OSError):
    """An input file is missing, unreadable, not ROOT, truncated or empty."""


class TreeError(PhysnnError, KeyError):
    """No tree, an ambiguous tree, or a tree name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BranchError(PhysnnError, KeyError):
    """A branch is missing or has the wrong type or shape."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataError(PhysnnError, ValueError):
    """The data themselves are unusable: NaN/inf, empty selection, bad labels."""


class OutputError(PhysnnError, OSError):
    """An output path exists (without overwrite) or cannot be written.

    A refusal to replace an output names ``overwrite=True`` and carries ``options=("overwrite",)``, so that the
    command line can word the option its own way.
    """


class MissingDependency(PhysnnError, ImportError):
    """An optional package is not installed (:mod:`physnn.extras` says which extra adds it)."""


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean 'a', 'b'?)"`` for close matches, or ``""``.

    Parameters
    ----------
    name
        The name the user typed.
    candidates
        The valid names.
    n
        The maximum number of suggestions.
    """
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
    if not close:
        return ""
    return " (did you mean " + ", ".join(repr(c) for c in close) + "?)"
