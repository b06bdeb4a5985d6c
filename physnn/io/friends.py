"""Friend trees: branches of another tree, entry by entry aligned with the tree read.

A weight or a label computed after the fact often lives in a tree of its own
("friend"), one entry per entry of the main tree. physnn reads a friend's
branches as if they were the tree's: by their own name, or as
``alias.branch`` (the alias defaults to the friend's tree name). Friends come
from two places:

- the data config, ``friends: [{tree: w, files: weights.root}]`` (one friend
  file per data file, in the same order; without ``files`` the friend is a
  tree of the data file itself);
- the tree itself, when ROOT saved it with a friend
  (``tree.AddFriend("w", "weights.root"); tree.Write()``): its ``fFriends``
  list names the friend tree and file. A relative file name is looked up
  next to the data file first, then from the working folder.

Only entry-aligned friends are read: a friend with a different number of
entries is an error naming both trees, and an index built with
``BuildIndex`` is not used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from physnn.errors import ConfigError, InputFileError, TreeError
from physnn.io.files import expand_files, open_root, resolve_tree


@dataclass(frozen=True)
class Friend:
    """A friend tree of one data file.

    Attributes
    ----------
    alias
        The prefix of its branches (``alias.branch``).
    path
        Its file; None when a friend saved with the tree names a file that
        does not exist (an error only when one of its branches is needed).
    tree
        Its tree's name in that file (None: the only tree).
    origin
        ``friends[0]`` for a config entry, ``saved with the tree`` otherwise (for messages).
    """

    alias: str
    path: str | None
    tree: str | None
    origin: str = "saved with the tree"

    def describe(self) -> str:
        """``"w (weights.root:w)"`` for messages and ``physnn inspect``."""
        return f"{self.alias} ({self.path or '?'}:{self.tree or '?'})"


def _spec(item: Any) -> tuple[str | None, Any, str | None]:
    """``(tree, files, alias)`` of a config entry: a pydantic model or a mapping."""
    if isinstance(item, Mapping):
        return item.get("tree"), item.get("files"), item.get("alias")
    return getattr(item, "tree", None), getattr(item, "files", None), getattr(item, "alias", None)


def config_friends(specs: Sequence[Any], paths: Sequence[str]) -> list[list[Friend]]:
    """The friends of each data file from the config's ``friends`` entries.

    Parameters
    ----------
    specs
        Entries with ``tree``, ``files`` and ``alias`` (see
        :class:`physnn.config.FriendSpec`).
    paths
        The data files, expanded.

    Raises
    ------
    ConfigError
        When an entry names a different number of files than there are data files.
    """
    out: list[list[Friend]] = [[] for _ in paths]
    for i, item in enumerate(specs):
        tree, files, alias = _spec(item)
        origin = f"friends[{i}]"
        if files is None and tree is None:
            msg = f"{origin}: give the friend's tree: (and files: unless it is in the data files)"
            raise ConfigError(msg)
        friend_paths = list(paths) if files is None else expand_files(files)
        if len(friend_paths) != len(paths):
            msg = (f"{origin}: {len(friend_paths)} friend file(s) for {len(paths)} data file(s); "
                   "give one friend file per data file, in the same order")
            raise ConfigError(msg)
        for k, friend_path in enumerate(friend_paths):
            name = alias or (tree or "").split("/")[-1] or os.path.splitext(os.path.basename(friend_path))[0]
            out[k].append(Friend(name, friend_path, tree, origin))
    return out


def _locate(name: str, data_path: str) -> str | None:
    """A friend file named in a tree: next to the data file, else from the working folder."""
    if not name:
        return data_path
    candidates = [name] if os.path.isabs(name) else [os.path.join(os.path.dirname(data_path), name), name]
    return next((c for c in candidates if os.path.isfile(c)), None)


def saved_friends(path: str, tree: str) -> list[Friend]:
    """The friends ROOT saved with ``path:tree`` (its ``fFriends`` list); ``[]`` when it has none."""
    import uproot

    try:
        with uproot.open(path, minimal_ttree_metadata=False) as handle:
            friends = handle[tree].member("fFriends")
            elements = list(friends) if friends is not None else []
            found = []
            for element in elements:
                alias = str(element.member("fName"))
                file_name = str(element.member("fTitle") or "")
                tree_name = str(element.member("fTreeName") or "") or alias
                found.append(Friend(alias, _locate(file_name, path), tree_name, f"saved with the tree ({file_name})"))
    except Exception:  # an RNTuple, an older TTree version, a list uproot cannot read: no saved friends
        return []
    return found


def open_friend(friend: Friend, entries: int, where: str) -> Any:
    """Open a friend tree and check that it has ``entries`` entries, as the tree at ``where``.

    Raises
    ------
    InputFileError
        When a friend saved with the tree names a file that cannot be found.
    TreeError
        When the entry counts differ.
    """
    if friend.path is None:
        msg = f"{where}: friend tree {friend.alias!r} {friend.origin}: the file cannot be found"
        raise InputFileError(msg)
    name, obj = resolve_tree(open_root(friend.path), friend.path, friend.tree)
    n = int(obj.num_entries)
    if n != entries:
        msg = (f"{friend.path}:{name} has {n:,} entries but {where} has {entries:,}; a friend tree "
               f"({friend.origin}) must have one entry per entry of the tree, in the same order")
        raise TreeError(msg)
    return obj


__all__ = ["Friend", "config_friends", "open_friend", "saved_friends"]
