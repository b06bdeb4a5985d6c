"""The ``physnn`` application: its options, error handling and entry point (the commands are in the
sibling modules, which register themselves on ``app``).

No physics or data logic lives here. Errors a user can cause
(:class:`~physnn.errors.PhysnnError`) are printed as one line on stderr and
exit with status 2. Heavy modules (torch, uproot) are imported inside the
commands so that ``physnn --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from physnn._version import __version__
from physnn.cli.helptext import FirstThingsFirst, shape_help

app = typer.Typer(
    name="physnn",
    help="Deep learning for physicists: ROOT files in, trained models and predictions out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=FirstThingsFirst,  # simulate first: the order a user needs the commands in
)
simulate_app = typer.Typer(help="Simulate demo data with the built-in detector simulator.", no_args_is_help=True,
                           cls=FirstThingsFirst)
app.add_typer(simulate_app, name="simulate")

console = Console()
err_console = Console(stderr=True)
#: The width of tables and messages written to a file or a pipe (a terminal gives its own).
LOG_WIDTH = 200

F = TypeVar("F", bound=Callable[..., Any])


shape_help()


def debugging() -> bool:
    """``physnn --debug ...`` or ``PHYSNN_DEBUG=1``: show tracebacks instead of one line."""
    return os.environ.get("PHYSNN_DEBUG", "") not in ("", "0")


def _cli_exits() -> tuple[type[BaseException], ...]:
    """The exceptions by which typer ends a command on purpose (its exit, abort and usage errors), taken from
    what typer exposes: typer 0.29 carries its own copy of click and no longer installs click, older typers
    re-export click's classes, so physnn imports no ``click`` (``pip install physnn`` does not bring it).

    The usage errors are the most general class above ``typer.BadParameter`` that still shows itself to the user
    (click's ``ClickException``, whatever its name); ``typer.BadParameter`` itself when there is none."""
    usage = typer.BadParameter
    for cls in typer.BadParameter.__mro__:
        if isinstance(cls, type) and issubclass(cls, Exception) and callable(getattr(cls, "show", None)):
            usage = cls
    return typer.Exit, typer.Abort, usage


def command_line(err: BaseException) -> str:
    """An error's message as the ``physnn`` command says it: ``--overwrite`` where Python reads
    ``overwrite=True``, and ``--bins-of energy`` where it reads ``bins_of=energy``, for each option the error
    names (its ``options``)."""
    text = str(err)
    for name in getattr(err, "options", ()):
        flag = f"--{name.replace('_', '-')}"
        text = re.sub(rf"\b{re.escape(name)}=(True\b)?", lambda m, flag=flag: flag if m.group(1) else f"{flag} ", text)
    return text


def user_errors(func: F) -> F:
    """Turn :class:`PhysnnError` into one line on stderr and exit code 2; anything unforeseen too, with a hint
    (``--debug`` shows the traceback, for a bug report)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from physnn.errors import PhysnnError

        try:
            return func(*args, **kwargs)
        except _cli_exits():  # a command's own exit
            raise
        except PhysnnError as err:
            if debugging():
                raise
            from rich.markup import escape  # a message's [brackets] are text: pip install 'physnn[onnx]'

            err_console.print(f"[bold red]error:[/] {escape(command_line(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: no partial output was left behind")
            raise typer.Exit(130) from None
        except Exception as err:
            if debugging():
                raise
            text = str(err).strip().splitlines()[0] if str(err).strip() else ""
            from rich.markup import escape

            err_console.print(f"[bold red]error:[/] {escape(f'unexpected {type(err).__name__}: {text}')} (this may "
                              "be a physnn bug: rerun with physnn --debug to see the traceback, and report it)",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"physnn {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (or PHYSNN_DEBUG=1).")]
    = False,
) -> None:
    """physnn: train CNN, LSTM/GRU, autoencoder and GAN models on ROOT files."""
    if debug:
        os.environ["PHYSNN_DEBUG"] = "1"
    for stream in (console, err_console):  # a log file has no width: tables and paths are not cut at 80 columns
        log = not stream.is_terminal and "COLUMNS" not in os.environ
        stream.width = LOG_WIDTH if log else None  # type: ignore[assignment]  # None: COLUMNS, else the terminal's


def _range(text: str | None, option: str) -> tuple[float, float] | None:
    from physnn.errors import ConfigError

    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        low = float(lo)
        high = float(hi) if sep else low
    except ValueError:
        msg = f"{option} {text!r}: expected MIN:MAX (e.g. 1:100) or a single value"
        raise ConfigError(msg) from None
    return low, high


def image_format(text: str) -> str:
    """``--format``: one of :data:`physnn.evaluation.image_format.FORMATS` (any case), checked by
    :func:`~physnn.evaluation.image_format.check_format` and its error worded for ``--format``."""
    from physnn.errors import ConfigError
    from physnn.evaluation.image_format import FORMATS, check_format

    try:
        return check_format(text)
    except ConfigError:
        msg = f"--format {text!r}: expected {', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        raise ConfigError(msg) from None


def format_option(help: str) -> Any:
    """The ``--format`` option of figures, with the help of its command."""
    from physnn.evaluation.image_format import FORMATS  # the standard library only: --version stays fast

    return Annotated[str, typer.Option("--format", metavar=f"<{'|'.join(FORMATS)}>", help=help)]


def overwrite_option(help: str) -> Any:
    """The ``--overwrite`` flag, with the help of its command (what it replaces)."""
    return Annotated[bool, typer.Option("--overwrite", help=help)]


FormatOpt = format_option("File format of the figures: png, or vector svg or pdf; report.html shows PNG and SVG "
                          "figures and links to PDF files beside it.")
OverwriteOpt = overwrite_option("Replace an existing output file.")
ReportOverwriteOpt = overwrite_option("Replace the earlier report in --out: its report.html, metrics.json and "
                                      "figures go, other files stay.")
#: ``--out`` of ``evaluate`` and ``compare`` (each gives its default folder).
ReportOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Report folder: report.html, metrics.json, the "
                                            "figures; one that holds an earlier report needs --overwrite.",
                                            metavar="<folder>")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output ROOT file (written atomically).",
                                     metavar="<file>")]
EventsOpt = Annotated[int, typer.Option("--events", "-n", help="Number of events.", min=1)]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
CompressionOpt = Annotated[str | None, typer.Option(
    help="Compression of the ROOT file: zlib, lz4, zstd, lzma or none, with an optional level, e.g. zstd:5 "
         "(default levels: zlib 1, lz4 4, zstd 5, lzma 9).", metavar="<algorithm[:level]>", show_default="zlib:1")]
#: What --device accepts, for --help.
DEVICES = "<auto|cpu|cuda[:N]|mps>"
DEVICE_HELP = "Where to run: auto takes CUDA, then Apple MPS, then the CPU."
DeviceOpt = Annotated[str, typer.Option(help=DEVICE_HELP, metavar=DEVICES)]
MapOpt = Annotated[list[str] | None, typer.Option("--map", metavar="<old=new>", help="Read the run's branch OLD "
                                                  "from the file's NEW (repeatable or comma separated); predict's "
                                                  "outputs keep the run's names, denoise keeps the file's layout.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of simulator settings.",
                                                  metavar="<file>")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: KEY=VALUE (repeatable).",
                                                  metavar="<key=value>")]


def main() -> None:
    """Entry point of the ``physnn`` console script."""
    app(prog_name="physnn")
    sys.exit(0)
