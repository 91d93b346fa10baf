"""book/_ext/table_caption.py: a result table's caption above its scroll box, and every cell labelled by its
column's header (the phone's one-card-per-row form reads the label)."""

import sys
from pathlib import Path

import pandas as pd

from poprisk import tables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import table_caption  # noqa: E402


def test_caption_moves_out_and_every_cell_gets_its_header():
    frame = pd.DataFrame({"test_ce": [0.25, 0.5], "method": ['hw "k" & co', "uniform"]})
    out = table_caption.rewrite(tables.show(frame, caption="two rows")._repr_html_(), "t")
    assert out.index('<p class="poprisk-caption" id="t-1">two rows</p>') < out.index('<div class="poprisk-scroll"')
    assert "<caption>" not in out
    assert out.count('data-label="test CE (nats)"') == 2 and out.count('data-label="method"') == 2
    assert out.count('role="cell"') == 4 and out.count('role="columnheader"') == 2
    assert out.count('role="row"') == 3 and 'role="table"' in out


def test_header_text_is_escaped_in_the_label():
    frame = pd.DataFrame({'a "b" <c>': [1]})
    out = table_caption.rewrite(tables.show(frame)._repr_html_(), "t")
    assert 'data-label="a &quot;b&quot; &lt;c&gt;"' in out
    assert 'aria-label="table"' in out  # no caption: the scroll box is still named
