"""The book's figure style: sharp (≥ 150 dpi, retina PNGs inline), at most 7 in wide, text ≥ 9 pt, white."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from PIL import Image  # noqa: E402

from poprisk import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_style():
    with matplotlib.rc_context():
        plotting.use_book_style()
        yield
    plt.close("all")


def font_sizes_pt(fig):
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()]
    return [FontProperties(size=t.get_fontsize()).get_size_in_points() for t in texts]


def test_style_resolution_width_and_background():
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] >= 150 and rc["savefig.dpi"] >= 2 * 150
    assert rc["figure.figsize"][0] <= plotting.MAX_WIDTH_IN
    assert rc["figure.facecolor"] in ("white", "#ffffff", (1.0, 1.0, 1.0, 1.0))
    assert not rc["savefig.transparent"]


def test_every_text_is_at_least_9_pt():
    fig, axes = plotting.grid(3)
    for ax in axes:
        ax.plot([1, 10, 100], [3, 1, 2], label="a curve")
        plotting.labelled(ax, "x label", "y label", "a title")
        ax.set_xscale("log")
        ax.legend()
    fig.suptitle("a suptitle")
    sizes = font_sizes_pt(fig)
    assert sizes and min(sizes) >= plotting.MIN_FONT_PT, sorted(sizes)[:5]


def test_saved_png_is_white_and_opaque_at_300_ppi():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert round(img.info["dpi"][0]) >= 300
    assert img.size[0] == pytest.approx(6.4 * 300, abs=2)
    corner = img.convert("RGBA").getpixel((0, 0))
    assert corner == (255, 255, 255, 255), "figures need an opaque white background (dark mode, print)"


def test_grid_layouts():
    fig, axes = plotting.grid(2)
    assert len(axes) == 2 and fig.get_size_inches()[0] <= plotting.MAX_WIDTH_IN
    fig, axes = plotting.grid(3)
    assert len(axes) == 3 and len(fig.axes) == 3  # 2×2 with the fourth axis removed
    assert axes[0].get_subplotspec().get_geometry()[:2] == (2, 2)
    fig, axes = plotting.grid(4, sharex=True)
    assert len(axes) == 4


@pytest.mark.parametrize("bad", [0, 5, 2.0, True, "3"])
def test_grid_rejects_panel_counts(bad):
    with pytest.raises(ValueError, match="n_panels"):
        plotting.grid(bad)


def test_grid_rejects_wide_figures():
    with pytest.raises(ValueError, match="width"):
        plotting.grid(2, width=10)


def test_retina_inline_format_under_ipython():
    """Inside IPython the style switches inline figures to double-density PNGs (display size unchanged)."""
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline import backend_inline

    shell = InteractiveShell.instance()
    try:
        plotting.use_book_style()
        formatter = shell.display_formatter.formatters["image/png"]
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        data = formatter(fig)
        assert data is not None
        png, meta = data if isinstance(data, tuple) else (data, {})
        if isinstance(png, str):  # IPython may hand back the PNG base64-encoded
            png = base64.b64decode(png)
        width_px = Image.open(io.BytesIO(png)).size[0]
        assert meta.get("width") and width_px >= 1.9 * meta["width"], (width_px, meta)
    finally:
        backend_inline.set_matplotlib_formats("png")
        InteractiveShell.clear_instance()


def test_labelled_requires_both_labels():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError):
        plotting.labelled(ax, "", "y")


def test_interval_rows_clips_at_the_edge_and_writes_the_numbers():
    fig, ax = plt.subplots()
    plotting.interval_rows(ax, ["a", "far"], [0.01, 65.8], [-0.02, 10.8], [0.04, 138.0], xlim=(-0.1, 0.15),
                           label="raw")
    assert ax.get_xlim() == (-0.1, 0.15)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "far"]
    assert [t.get_position()[1] for t in ax.get_yticklabels()] == [1, 0]  # first row on top
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["65.8 [10.8, 138]"]  # only the interval beyond the axis is written out
    plt.close(fig)


@pytest.mark.parametrize("kwargs", [dict(lo=[0.5]), dict(xlim=(1, 0)), dict(labels=[])])
def test_interval_rows_rejects_bad_input(kwargs):
    args = dict(labels=["a"], mean=[0.0], lo=[-1.0], hi=[1.0], xlim=(-2, 2)) | kwargs
    fig, ax = plt.subplots()
    with pytest.raises(ValueError):
        plotting.interval_rows(ax, **args)
    plt.close(fig)
