"""How ``physnn ... --help`` shows commands and values: in the order a user needs them, and in words, never in
Python's type names.

typer 0.29's rich help writes the Python annotation of a value without a metavar (``<str>``, ``<int range>``,
``<list[str]>``, ``<path>``), a type column beside each argument that its name already describes, required
arguments in braces on the usage line (``{run}``, where click writes ``RUN``), and ``<bool>`` after every flag as
if it took a value. :func:`shape_help` adjusts those few methods of typer's parameter classes, where they exist
(older typers use click's help, which has none of these). A ``Path`` keeps typer's ``<path>`` until its option
names a metavar (``<file>``, ``<folder>``), so that tests/test_cli_help.py points at it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from typer.core import TyperGroup

#: typer's type label -> the word shown instead (values without a metavar of their own).
WORDS = {"str": "text", "int": "integer", "int range": "integer", "float": "number", "float range": "number"}


class FirstThingsFirst(TyperGroup):
    """A command group that lists its sub-groups (``simulate``) before its commands, each in the order added, each
    by its docstring's first paragraph reflowed (rich's listing keeps a docstring's line breaks)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():  # a listing shows the first paragraph, its line breaks reflowed
            if command.help and not command.short_help:
                command.short_help = " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split())

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: not hasattr(self.commands[name], "commands"))


def _in_words(label: str) -> str:
    """``"<int range>"`` -> ``"<integer>"``, ``"<list[str]>"`` -> ``"<text>..."``; choices and others unchanged."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    listed = re.fullmatch(r"list\[(.*)\]", inner)
    inner = listed.group(1) if listed else inner
    return f"<{WORDS.get(inner, inner)}>" + ("..." if listed else "")


def shape_help() -> None:
    """Make typer's rich help speak in words (see the module's docstring); calling it twice changes nothing."""
    from typer import core

    option, argument = core.TyperOption, core.TyperArgument
    shown = getattr(option, "display_type_rich", None)
    typed = getattr(option, "display_type", None)
    if shown is None or typed is None or getattr(shown, "physnn", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    def display_type(self: Any, ctx: Any) -> str:
        return _in_words(typed(self, ctx))

    def argument_type(self: Any, ctx: Any) -> str | None:
        return None  # the argument's name (or metavar) stands in the column before

    def usage_name(self: Any) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    display_type_rich.physnn = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich
    option.display_type = display_type
    if hasattr(argument, "_usage_display_name"):
        argument.display_type_rich = argument_type
        argument._usage_display_name = usage_name
        argument.display_name_raw = property(lambda self: self.metavar or self.name.upper())  # click's RUN
