"""The book's single figure style (every chapter with a figure).

White background (readable in the theme's dark mode and in print), labelled axes, a colour-blind-safe
palette, and sizes that stay legible where the figure is shown: at most 7 in wide (the PDF's text width),
text of at least 9 pt, rendered at 150 dpi and shown in notebooks and on the site as a double-density
("retina") PNG, so a figure is sharp on HiDPI screens and prints at 300 ppi. Call :func:`use_book_style`
once at the top of a chapter, then plot with plain matplotlib; 3 or more panels go in a 2×2 grid
(:func:`grid`).
"""

from __future__ import annotations

import matplotlib as mpl

#: Okabe–Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

#: Widest figure of the book (inches): the PDF's text width; the site scales it to the column.
MAX_WIDTH_IN = 7.0
#: Smallest font size (points) anywhere in a figure at its natural size.
MIN_FONT_PT = 9.0
#: Rendering resolution (dots per inch); inline PNGs are stored at twice this ("retina").
DPI = 150

_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": DPI,
    "savefig.dpi": 2 * DPI,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "axes.edgecolor": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.frameon": False,
    "figure.titlesize": 11,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "font.size": 10,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
}


def use_book_style() -> None:
    """Apply the book's matplotlib style globally (idempotent); inside IPython/Jupyter also store inline
    figures as double-density PNGs (``matplotlib_inline`` 'retina': twice the pixels, same display size)."""
    mpl.rcParams.update(_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing is displayed inline
        return
    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")


def grid(n_panels: int, *, width: float = 6.8, height: float | None = None, **subplots_kw):
    """A figure for ``n_panels`` panels within :data:`MAX_WIDTH_IN`: one row for 1–2 panels, a 2×2 grid for
    3–4 (the unused fourth axis is removed); returns ``(fig, axes)`` with ``axes`` a flat list of length
    ``n_panels``. ``height`` defaults to 4.0 in for one row and 6.0 in for two."""
    import matplotlib.pyplot as plt

    if isinstance(n_panels, bool) or not isinstance(n_panels, int) or not 1 <= n_panels <= 4:
        raise ValueError(f"n_panels must be an integer in 1..4 (a 2x2 grid at most), got {n_panels!r}")
    if not 0 < width <= MAX_WIDTH_IN:
        raise ValueError(f"width must be in (0, {MAX_WIDTH_IN}] inches, got {width!r}")
    rows, cols = (1, n_panels) if n_panels <= 2 else (2, 2)
    if height is None:
        height = 4.0 if rows == 1 else 6.0
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, **subplots_kw)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.remove()
    return fig, flat[:n_panels]


def labelled(ax, xlabel: str, ylabel: str, title: str | None = None):
    """Label an axis; every figure in the book states units (nats or bits) in its labels."""
    if not xlabel or not ylabel:
        raise ValueError("xlabel and ylabel must be non-empty: every axis in the book is labelled")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


# ------------------------------------------------------- chapters 1 and 9: calibration and sweep figures


def log_axis(ax, ticks, axis: str = "x", fmt: str = "{:g}"):
    """A log-scaled axis with labels only at ``ticks`` (no minor labels, which collide on short ranges).

    ``ticks``: positive numbers inside the data range; ``fmt`` formats each label. Chapters 1 and 9 use it
    for the compression-ratio axis.
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    ticks = np.asarray(ticks, dtype=float).reshape(-1)
    if ticks.size == 0 or not np.all(np.isfinite(ticks) & (ticks > 0)):
        raise ValueError(f"ticks must be finite positive numbers (at least one), got {ticks!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, [fmt.format(t) for t in ticks])
    return ax


def interval_plot(ax, frame, x: str, y: str, lo: str, hi: str, **kwargs):
    """Plot ``frame[y]`` against ``frame[x]`` (sorted by ``x``) with the interval ``[frame[lo], frame[hi]]``
    as error bars; extra keyword arguments go to ``ax.errorbar``. Rows with a missing interval get no bar.
    Chapter 9 draws every sweep this way (mean and interval per setting)."""
    import numpy as np

    missing = [c for c in (x, y, lo, hi) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the columns {missing}")
    if len(frame) == 0:
        raise ValueError("frame has no rows to plot")
    f = frame.sort_values(x)
    mid = f[y].to_numpy(float)
    err = np.vstack([mid - f[lo].to_numpy(float), f[hi].to_numpy(float) - mid])
    if np.any(err < -1e-12):
        raise ValueError(f"the interval [{lo}, {hi}] does not contain {y} in every row")
    kwargs.setdefault("capsize", 3)
    return ax.errorbar(f[x].to_numpy(float), mid, yerr=np.nan_to_num(np.clip(err, 0, None)), **kwargs)


def reliability_diagram(ax, curves, *, min_count: int = 1):
    """Reliability diagram: for each ``label → curve`` of ``curves`` (DataFrames from
    :func:`poprisk.calibration.reliability_curve`), the accuracy of each confidence bin against its mean
    confidence, over the diagonal of perfect calibration. Bins with fewer than ``min_count`` examples are
    left out. Points below the diagonal are over-confident (chapters 1 and 9)."""
    if not hasattr(curves, "items") or len(curves) == 0:
        raise ValueError("curves must be a non-empty mapping from label to reliability_curve DataFrame")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive integer, got {min_count!r}")
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfectly calibrated")
    markers = "osD^v<>"
    for i, (label, curve) in enumerate(curves.items()):
        missing = [c for c in ("confidence", "accuracy", "count") if c not in curve.columns]
        if missing:
            raise ValueError(f"curve {label!r} lacks the columns {missing}")
        keep = curve[curve["count"] >= min_count]
        ax.plot(keep["confidence"], keep["accuracy"], marker=markers[i % len(markers)], label=str(label))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    labelled(ax, "confidence (mean top-class probability in the bin)", "accuracy in the bin")
    return ax


def interval_rows(ax, labels, mean, lo, hi, *, xlim: tuple[float, float], offset: float = 0.0, **kwargs):
    """One horizontal interval ``[lo, hi]`` with its ``mean`` per row, the first row on top (a forest plot of
    differences; chapter 9b draws its verdicts this way, raw and calibrated side by side with ``offset``).

    The x axis is set to ``xlim``; an interval reaching beyond it is drawn to the edge, ends in an arrow there,
    and has its numbers written on its line next to the arrow (one compressor 100 times worse than the others then does not
    squeeze everyone else's interval to a dot). Extra keyword arguments (``color``, ``label``) go to
    ``ax.errorbar``. Returns ``ax``.
    """
    import numpy as np

    from poprisk.tables import format_number

    labels = [str(v) for v in labels]
    m, a, b = (np.asarray(v, dtype=float) for v in (mean, lo, hi))
    if not len(labels) == len(m) == len(a) == len(b) or len(m) == 0:
        raise ValueError("labels, mean, lo and hi must be non-empty and of one length")
    if np.any(a > m + 1e-12) or np.any(b < m - 1e-12):
        raise ValueError("every interval [lo, hi] must contain its mean")
    left, right = (float(v) for v in xlim)
    if not left < right:
        raise ValueError(f"xlim must be (left, right) with left < right, got {xlim!r}")
    y = np.arange(len(m))[::-1] + offset
    cm, ca, cb = (np.clip(v, left, right) for v in (m, a, b))
    kwargs.setdefault("capsize", 3)
    kwargs.setdefault("fmt", "o")
    bars = ax.errorbar(cm, y, xerr=np.vstack([cm - ca, cb - cm]), **kwargs)
    colour = bars.lines[0].get_color()
    for yi, mi, ai, bi in zip(y, m, a, b):
        if ai < left or bi > right:
            edge, side = (right, "right") if bi > right else (left, "left")
            ax.plot([edge], [yi], marker=">" if side == "right" else "<", color=colour, ls="none")
            # on the interval's own line, next to its arrow, on a white ground: never over the next row
            ax.annotate(f"{format_number(mi, 3)} [{format_number(ai, 3)}, {format_number(bi, 3)}]",
                        (edge, yi), xytext=(-9 if side == "right" else 9, 0), textcoords="offset points",
                        ha=side, va="center", fontsize=9, color=colour, zorder=5,
                        bbox=dict(boxstyle="square,pad=0.15", fc="white", ec="none"))
    ax.set_xlim(left, right)
    ax.set_yticks(np.arange(len(m))[::-1], labels)
    ax.grid(False, axis="y")
    return ax
