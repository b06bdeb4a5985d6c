"""Find input files and open their trees with clear errors.

This is the first step of the data flow: a file specification (one path, a
list, or a glob) becomes a list of paths, and each path becomes an uproot
``TTree`` or ``RNTuple``. Every failure here is an :class:`InputFileError` or a
:class:`TreeError` that names the file.
"""

from __future__ import annotations

import glob
import lzma
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from physnn.errors import InputFileError, TreeError, did_you_mean

#: ROOT classes that physnn reads event by event.
TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple", "ROOT::Experimental::RNTuple")

FileSpec = str | os.PathLike | Sequence[str | os.PathLike]

#: ``skhep_testdata:NAME``: the file NAME of the scikit-hep-testdata package (``pip install 'physnn[testdata]'``),
#: downloaded by it on first use into its cache (``~/.local/skhepdata``).
TESTDATA = "skhep_testdata:"


def local_file(path: str | os.PathLike) -> str:
    """The path of a file on this machine: ``skhep_testdata:NAME`` through scikit-hep-testdata, any other path as
    it is.

    Raises
    ------
    MissingDependency
        If scikit-hep-testdata is not installed (the message names the ``pip install``).
    InputFileError
        If the package knows no such file, or cannot download it.
    """
    text = os.fspath(path)
    if not text.startswith(TESTDATA):
        return text
    from physnn import extras

    package = extras.skhep_testdata()
    name = text[len(TESTDATA):]
    known = set(getattr(package, "known_files", ()))
    if known and name not in known:
        msg = f"{text}: scikit-hep-testdata has no file {name!r}{did_you_mean(name, known)}"
        raise InputFileError(msg)
    try:
        return str(package.data_path(name))
    except Exception as err:  # requests' connection errors, HTTP errors, a cache folder that cannot be written
        msg = (f"{text}: scikit-hep-testdata could not get {name} ({type(err).__name__}: "
               f"{str(err).splitlines()[0] if str(err) else 'no detail'}); it downloads its files on first use (this "
               f"needs the network) into ~/.local/skhepdata, where a copy of {name} also does")
        raise InputFileError(msg) from None


def absolute_file(path: str | os.PathLike) -> str:
    """An absolute path (``~`` expanded), for a run folder that travels; ``skhep_testdata:NAME`` stays a name."""
    text = os.fspath(path)
    return text if text.startswith(TESTDATA) else os.path.abspath(os.path.expanduser(text))


def expand_files(spec: FileSpec) -> list[str]:
    """Turn a path, a glob or a list of either into a sorted list of files.

    Parameters
    ----------
    spec
        ``"data.root"``, ``"run*/data_*.root"``, ``"skhep_testdata:uproot-HZZ.root"`` (:func:`local_file`) or a
        list of such strings.

    Returns
    -------
    list of str
        The paths, in the order given; each glob is expanded and sorted.

    Raises
    ------
    InputFileError
        If a path does not exist or a glob matches nothing.
    """
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not items:
        msg = "no input files given"
        raise InputFileError(msg)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if text.startswith(TESTDATA):
            out.append(local_file(text))
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                msg = f"{text}: the pattern matches no file"
                raise InputFileError(msg)
            out.extend(matches)
        elif not os.path.exists(text):
            msg = f"{text}: no such file"
            raise InputFileError(msg)
        elif os.path.isdir(text):
            msg = f"{text}: is a directory, expected a ROOT file"
            raise InputFileError(msg)
        else:
            out.append(text)
    return out


def open_root(path: str | os.PathLike) -> Any:
    """Open a ROOT file with uproot, turning low-level failures into one line.

    Raises
    ------
    InputFileError
        If the file is missing, empty, not a ROOT file or truncated.
    """
    import uproot

    path = local_file(path)
    if not os.path.exists(path):
        msg = f"{path}: no such file"
        raise InputFileError(msg)
    if os.path.getsize(path) == 0:
        msg = f"{path}: the file is empty, expected a ROOT file"
        raise InputFileError(msg)
    try:
        # chunks are read once: no 100 MB array cache per file; pread instead of mmap, so the pages of a file read
        # through do not count as (and inflate) this process's resident memory
        handle = uproot.open(path, array_cache=None, handler=uproot.source.file.MultithreadedFileSource)
        handle.keys()  # forces reading the directory: catches truncation early
    except Exception as err:  # uproot raises ValueError/OSError/struct.error...
        raise InputFileError(describe_read_error(path, err)) from err
    check_length(path)
    return handle


def check_length(path: str | os.PathLike) -> None:
    """Refuse a ROOT file shorter than its header says (``fEND``, where ROOT's last record ends): cut short while
    copied or written. Without this, a cut inside a tree's header or its baskets surfaces later as uproot's
    "expected Chunk of length N", or not at all when it falls after the entries read. Reads 21 bytes.

    Raises
    ------
    InputFileError
        Naming the file, its size and the size its header announces.
    """
    path = os.fspath(path)
    with open(path, "rb") as stream:
        header = stream.read(21)
    if len(header) < 16 or header[:4] != b"root":
        return  # not ROOT's header: open_root says what the file is
    version = struct.unpack(">i", header[4:8])[0]
    big = version >= 1000000 and len(header) == 21  # fEND takes 8 bytes in large files
    end = struct.unpack(">q", header[12:20])[0] if big else struct.unpack(">i", header[12:16])[0]
    size = os.path.getsize(path)
    if size < end:
        msg = f"{path}: the file is truncated or corrupt: it has {size} bytes, its header says {end}"
        raise InputFileError(msg)


def is_damage(err: BaseException) -> bool:
    """True for failures that mean a file's bytes are not what ROOT wrote: cut short, or altered."""
    if isinstance(err, PermissionError | FileNotFoundError | IsADirectoryError):
        return False
    if isinstance(err, OSError | EOFError | struct.error | zlib.error | lzma.LZMAError | UnicodeError):
        return True
    text = str(err).lower()
    return "decompress" in text or "compression" in text


def describe_read_error(path: str, err: BaseException) -> str:
    """One line describing why reading ``path`` failed, from the exception itself.

    Only failures that mean damage (:func:`is_damage`, or uproot failing to
    deserialise the file's own structures or to check them: an
    AssertionError) call the file truncated or corrupt; a format uproot
    does not support says so.
    """
    text = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    if "not a ROOT file" in text:
        return f"{path}: not a ROOT file (expected the 'root' magic bytes at its start)"
    if isinstance(err, PermissionError):
        return f"{path}: permission denied"
    if is_damage(err) or type(err).__name__ == "DeserializationError" or isinstance(err, AssertionError):
        return f"{path}: cannot be read as a ROOT file, it may be truncated or corrupt ({text})"
    if isinstance(err, NotImplementedError):
        return f"{path}: uproot does not support what the file holds ({text})"
    return f"{path}: cannot be read ({type(err).__name__}: {text})"


def list_trees(handle: Any) -> dict[str, str]:
    """Return ``{name: classname}`` of every TTree/RNTuple in an open file.

    Names carry their directory (``"dir/tree"``) and no cycle number; for a
    name with several cycles only the highest is kept (what ROOT does).
    """
    found: dict[str, str] = {}
    for key, cls in handle.classnames().items():
        if cls in TREE_CLASSES:
            found[key.split(";")[0]] = cls
    return found


def no_tree_message(handle: Any, path: str) -> str:
    """``FILE: no TTree or RNTuple in the file; it holds TH1F 'h', TChain 'c'`` (what there is instead)."""
    held = [f"{cls} {key.split(';')[0]!r}" for key, cls in handle.classnames().items()]
    shown = ", ".join(held[:8]) + (", ..." if len(held) > 8 else "")
    return f"{path}: no TTree or RNTuple in the file" + (f"; it holds {shown}" if held else "; it is empty")


def resolve_tree(handle: Any, path: str, tree: str | None) -> tuple[str, Any]:
    """Find the tree to read in an open file.

    Parameters
    ----------
    handle
        An open uproot file.
    path
        The file's path, for messages.
    tree
        The requested name, or ``None`` to take the only tree in the file.

    Returns
    -------
    (name, object)
        The tree's name and the uproot ``TTree`` or ``RNTuple``.

    Raises
    ------
    TreeError
        If the file has no tree, several trees and none was named, or the
        named one does not exist.
    """
    trees = list_trees(handle)
    if tree is None:
        if not trees:
            raise TreeError(no_tree_message(handle, path))
        if len(trees) > 1:
            names = ", ".join(repr(t) for t in trees)
            msg = f"{path}: several trees ({names}); choose one with tree: / --tree"
            raise TreeError(msg)
        tree = next(iter(trees))
    name = tree.split(";")[0].strip("/")
    if name not in trees:
        msg = f"{path}: no TTree or RNTuple named {name!r}{did_you_mean(name, trees)}"
        if not did_you_mean(name, trees) and trees:
            msg += f"; the file has {', '.join(repr(t) for t in trees)}"
        raise TreeError(msg)
    try:
        obj = handle[name]
        if is_rntuple(obj):
            obj.num_entries  # noqa: B018  # reads the RNTuple's header and footer, which uproot reads lazily
    except Exception as err:
        raise InputFileError(describe_read_error(path, err)) from err
    return name, obj


def is_rntuple(obj: Any) -> bool:
    """True for an uproot RNTuple, False for a TTree."""
    return "RNTuple" in type(obj).__name__


def file_size(path: str) -> int:
    """Size of a file in bytes."""
    return Path(path).stat().st_size
