"""The book's single figure style (every chapter with a figure).

White background (readable in the theme's dark mode and in print), labelled axes, a colour-blind-safe
palette, and a consistent size. Call :func:`use_book_style` once at the top of a chapter, then plot with
plain matplotlib.
"""

from __future__ import annotations

import matplotlib as mpl

#: Okabe–Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "font.size": 10,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
}


def use_book_style() -> None:
    """Apply the book's matplotlib style globally (idempotent)."""
    mpl.rcParams.update(_STYLE)


def labelled(ax, xlabel: str, ylabel: str, title: str | None = None):
    """Label an axis; every figure in the book states units (nats or bits) in its labels."""
    if not xlabel or not ylabel:
        raise ValueError("xlabel and ylabel must be non-empty: every axis in the book is labelled")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax
