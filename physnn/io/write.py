"""Write ROOT files atomically.

Outputs are written to a hidden temporary file next to the destination and
renamed into place only when complete, so an interrupted or failed job never
leaves a half-written file at the output path (a ``kill -9`` leaves at most
a hidden ``.NAME.*.tmp`` next to it). Existing outputs are refused unless
``overwrite=True``. Every file gets a ``physnn_meta`` provenance object
(:mod:`physnn.io.metadata`).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from physnn.errors import ConfigError, OutputError
from physnn.io.layout import branch_type, declare
from physnn.io.metadata import META, check_metadata

#: namespace of the UUIDs derived from a job's identity (:func:`write_tree`)
_NAMESPACE = uuid.UUID("6f1d4c2e-8b1a-5e0f-9c3d-70687973666e")

COMPRESSIONS = ("zlib", "lz4", "zstd", "lzma", "none")
DEFAULT_LEVELS = {"zlib": 1, "lz4": 4, "zstd": 5, "lzma": 9}


def parse_compression(spec: str | None) -> Any:
    """``"zstd:5"`` -> ``uproot.ZSTD(5)``; ``"none"`` -> None.

    Parameters
    ----------
    spec
        ``ALGORITHM[:LEVEL]`` with ALGORITHM one of zlib, lz4, zstd, lzma,
        none. ``None`` gives uproot's default (zlib level 1).
    """
    import uproot

    if spec is None:
        return uproot.ZLIB(1)
    name, _, level = spec.lower().partition(":")
    if name not in COMPRESSIONS:
        msg = f"--compression {spec!r}: expected one of {', '.join(COMPRESSIONS)} with an optional :LEVEL"
        raise ConfigError(msg)
    if name == "none":
        return None
    cls = {"zlib": uproot.ZLIB, "lz4": uproot.LZ4, "zstd": uproot.ZSTD, "lzma": uproot.LZMA}[name]
    try:
        return cls(int(level) if level else DEFAULT_LEVELS[name])
    except ValueError:
        msg = f"--compression {spec!r}: the level must be an integer between 1 and 9"
        raise ConfigError(msg) from None


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check before any work that ``path`` can be written.

    Raises
    ------
    OutputError
        If the file exists and ``overwrite`` is False, if its folder cannot be
        created (:func:`check_folder`), or if the path is a folder.
    """
    path = Path(path)
    check_folder(path.parent if str(path.parent) else Path("."))
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as err:  # a name longer than the file system takes
        msg = f"{path}: cannot be written ({err.strerror})"
        raise OutputError(msg) from None
    if is_dir:
        msg = f"{path}: is a directory, expected a file name for the output"
        raise OutputError(msg)
    if exists and not overwrite:
        msg = f"{path}: the output exists; pass overwrite=True to replace it"
        raise OutputError(msg, options=["overwrite"])
    return path


def _cannot_create(folder: Path, reason: str) -> OutputError:
    return OutputError(f"cannot create output folder {folder}: {reason}")


def check_folder(folder: str | os.PathLike) -> None:
    """Check before any work that an output folder exists or can be created (missing folders are made on writing).

    Raises
    ------
    OutputError
        ``cannot create output folder FOLDER: REASON`` when a file stands in its place or above it, the nearest
        existing folder is not writable, or the name is one the file system refuses.
    """
    folder = Path(folder)
    try:
        existing = next((p for p in (folder, *folder.parents) if p.exists()), Path(folder.anchor or "."))
    except OSError as err:  # e.g. a name too long
        raise _cannot_create(folder, err.strerror or str(err)) from None
    if not existing.is_dir():
        raise _cannot_create(folder, f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        msg = (f"output folder {folder}: not writable" if existing == folder else
               f"cannot create output folder {folder}: the folder {existing} is not writable")
        raise OutputError(msg)


def make_folder(folder: str | os.PathLike) -> Path:
    """Create an output folder and those above it, like ``mkdir -p``: the one place physnn makes folders.

    Raises
    ------
    OutputError
        ``cannot create output folder FOLDER: REASON``, the reason from the system or :func:`check_folder`.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        check_folder(folder)  # a file in the way says so
        raise _cannot_create(folder, err.strerror or str(err)) from None
    return folder


def make_parents(path: str | os.PathLike) -> None:
    """Create the folders above ``path`` (an output file or run folder), like ``mkdir -p``."""
    make_folder(Path(path).absolute().parent)


def as_user_file(path: str | os.PathLike) -> None:
    """Give a file the permissions of a newly created one (0666 less the umask): a temporary file has 0600,
    which other members of a group area on a cluster cannot read."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed jobs on this host left next to ``path``.

    ``kill -9`` cannot be caught, so a job killed while writing leaves its
    hidden ``.NAME.HOST-PID.*.tmp`` behind (never a file at ``path``). The
    next write to ``path`` removes those whose process is gone.
    """
    path = Path(path)
    prefix = _temp_prefix(path)
    removed = []
    for tmp in (path.parent if str(path.parent) else Path(".")).glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``path`` on success.

    The temporary file ``.NAME.HOST-PID.XXXX.tmp`` lies in the same folder
    (so the rename is atomic). On any exception (or KeyboardInterrupt) it is
    removed and ``path`` is left as it was; after a ``kill -9`` it stays
    until the next write to ``path`` (:func:`remove_stale_temporaries`).
    """
    path = check_output(path, overwrite=overwrite)
    make_parents(path)
    remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp",
                                    dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        as_user_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tree(
    path: str | os.PathLike,
    tree: str,
    chunks: Iterable[Mapping[str, Any]],
    *,
    overwrite: bool = False,
    compression: str | None = None,
    title: str = "",
    meta: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    on_chunk: Callable[[int], None] | None = None,
    identity: str | None = None,
    counters: Mapping[str, str] | None = None,
    rntuple: bool = False,
) -> int:
    """Write chunks of branches to a new ROOT file as one TTree (or RNTuple), atomically.

    Parameters
    ----------
    path
        The output file.
    tree
        The TTree name.
    chunks
        Mappings of branch name to array (numpy, or awkward for jagged data or
        records; a record array ``part`` becomes branches ``part_*`` with the
        counter ``n_part``). Every chunk must have the same branches.
    overwrite
        Replace an existing file.
    compression
        ``"zlib:1"``, ``"lz4:4"``, ``"zstd:5"``, ``"lzma:9"`` or ``"none"``.
    title
        The TTree title.
    meta
        The provenance document (:func:`physnn.io.metadata.provenance`),
        written as the JSON ``TObjString`` ``physnn_meta``; or a function
        returning it, called after the last chunk (to record the timing).
    on_chunk
        Called with the number of entries after each chunk (progress bars).
    identity
        What determines the file's content (e.g. the simulator's config hash,
        seed and number of events): the file's UUID is derived from it, so
        the same job writes a file with the same identity and its events get
        the same training split (:mod:`physnn.data.split`). None: a new UUID.
    counters
        Jagged branch -> the name of its counter branch (default ``n_<branch>``): branches
        given the same counter share it, and an integer branch of that name becomes it
        (:mod:`physnn.io.layout`).
    rntuple
        Write an RNTuple instead of a TTree (the branches are its fields; no counters).

    Returns
    -------
    int
        The number of entries written.
    """
    import uproot

    codec = parse_compression(compression)
    total = 0
    options = {} if identity is None else {"uuid_function": lambda: uuid.uuid5(_NAMESPACE, identity)}
    with atomic_path(path, overwrite=overwrite) as tmp, uproot.recreate(tmp, compression=codec, **options) as out:
        handle = None
        for chunk in chunks:
            data = dict(chunk)
            if handle is None:
                types = {key: branch_type(value, rntuple=rntuple) for key, value in data.items()}
                handle = declare(out, tree, types, rntuple=rntuple, counters=counters, title=title)
            handle.extend(data)
            n = len(next(iter(data.values())))
            total += n
            if on_chunk is not None:
                on_chunk(n)
        if handle is None:
            msg = f"{path}: nothing to write"
            raise OutputError(msg)
        document = dict(meta() if callable(meta) else meta)
        check_metadata(document)
        out[META] = json.dumps(document)
    return total
