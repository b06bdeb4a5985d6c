"""What every plot module shares: the HEP style, saving a figure, class and particle names, text boxes.

Importing this module selects the Agg backend and the mplhep ROOT style;
the plot modules (``plots_*``) import it first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import mplhep

from physnn.fmt import particle
from physnn.io.write import make_folder

plt.style.use(mplhep.style.ROOT)

#: Resolution of the PNG files.
DPI = 90
#: Label branches holding PDG ids (``pdgid``, ``part_pid``, ``pdg``).
_PDG_BRANCH = re.compile(r"pdg|(^|_)pid$", re.IGNORECASE)


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG (folders created) and close it."""
    path = Path(path)
    make_folder(path.parent)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def particle_label(value: Any) -> str:
    """The symbol of a particle (PDG id 11: e-, with a true minus sign; 211: pi+), an unnamed id as ``pdgid 1000``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    return particle(number, symbol=True)


def class_names(classes: Sequence[Any] | None, label: str | None = None, k: int = 2) -> list[str]:
    """What to call each class on a plot.

    Parameters
    ----------
    classes
        The run's class values (``meta["task"]["classes"]``); None: ``0 .. k-1``.
    label
        The label branch (``meta["label"]``): a PDG-id branch (``pdgid``)
        turns 11, -211, 22 into e-, pi-, gamma (:data:`physnn.fmt.PARTICLES`); another
        branch names the raw value (``is_signal 1``, as the condition checks
        of ``physnn compare`` do); without a label, the raw values.
    k
        The number of classes when ``classes`` is None.
    """
    values = list(classes) if classes is not None else list(range(k))
    if label is None:
        return [str(v) for v in values]
    if _PDG_BRANCH.search(str(label)):
        return [particle_label(v) for v in values]
    return [f"{label} {v}" for v in values]


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
