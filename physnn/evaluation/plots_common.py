"""What every plot module shares: the HEP style, saving a figure, class and particle names, text boxes.

``class_names`` lives in :mod:`physnn.evaluation.summary` (the tables name the classes too, without
matplotlib) and is re-exported here.

Importing this module selects the Agg backend and the mplhep ROOT style;
the plot modules (``plots_*``) import it first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import mplhep
import numpy as np

from physnn.evaluation.summary import class_names
from physnn.fmt import particle_label
from physnn.io.write import make_folder

plt.style.use(mplhep.style.ROOT)

#: Resolution of the PNG files.
DPI = 90


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` (folders created) in the format of the path's suffix (``.png``, ``.svg``, ``.pdf``; PNG at
    :data:`DPI`) and close it."""
    path = Path(path)
    make_folder(path.parent)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


__all__ = ["DPI", "class_names", "colorbar", "corner_text", "integer_ticks", "particle_label", "plt", "reference_x",
           "save"]


def reference_x(low: float, high: float, *, log: bool = False, points: int = 400) -> np.ndarray:
    """Dense x values for a reference curve (random classifier, 1/x, a fit) from ``low`` to ``high``.

    Matplotlib joins the points with straight segments in display space: a reference drawn from its two end
    points on a log axis is a chord, not the curve. These points are spaced evenly in the plotted coordinate
    (logarithmically on a log axis, where ``low`` must be above 0), so the line reads right everywhere.

    >>> reference_x(1e-3, 1.0, log=True)[[0, 133, -1]].round(4).tolist()
    [0.001, 0.01, 1.0]
    """
    return np.geomspace(low, high, points) if log else np.linspace(low, high, points)


def corner_text(ax: Any, text: str, *, right: bool = False, fontsize: int = 16) -> None:
    """A text box in an upper corner of ``ax`` (axes coordinates), on a white background."""
    ax.text(0.96 if right else 0.04, 0.96, text, transform=ax.transAxes, va="top", ha="right" if right else "left",
            fontsize=fontsize, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 2})


def integer_ticks(axis: Any) -> None:
    """Only whole numbers as ticks (epochs)."""
    axis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))


def colorbar(fig: Any, mappable: Any, ax: Any, label: str, *, fontsize: float | None = None, **kwargs: Any) -> Any:
    """A colour bar with its label (and unit); ``fontsize`` shrinks label and ticks beside small panels."""
    bar = fig.colorbar(mappable, ax=ax, **kwargs)
    bar.set_label(label, fontsize=fontsize)
    if fontsize is not None:
        bar.ax.tick_params(which="both", labelsize=fontsize - 1)
    return bar
