"""The file format of the figures: ``png`` (the default), or vector ``svg`` and ``pdf``.

Every command that draws (``evaluate``, ``compare``, ``train``) takes it; the
figure's file name ends in it and matplotlib writes that format. Standard
library only, so that checking it costs no matplotlib import.
"""

from __future__ import annotations

from physnn.errors import ConfigError

#: The formats every figure can be written in.
FORMATS = ("png", "svg", "pdf")


def check_format(image_format: str) -> str:
    """``image_format`` in lower case when it is one of :data:`FORMATS`, else a one-line :class:`ConfigError`
    in Python's terms (the command line checks ``--format`` itself).

    >>> check_format("SVG")
    'svg'
    """
    fmt = str(image_format).lower()
    if fmt not in FORMATS:
        msg = f"image_format={image_format!r}: expected 'png', 'svg' or 'pdf'"
        raise ConfigError(msg)
    return fmt
