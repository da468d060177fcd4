"""The per-run heatmap (SVG text): well-formed, one coloured cell per number, matplotlib's viridis colours."""

import math
import xml.etree.ElementTree as ET

import pytest

from nlbench.results.heatmap_svg import accuracy_heatmap_svg, viridis

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("v", [0.0, 0.1, 0.333, 0.5, 0.6, 0.999, 1.0, -0.2, 1.5])
def test_viridis_is_matplotlibs(v):
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    assert viridis(v) == to_hex(colormaps["viridis"](min(max(v, 0.0), 1.0)))


def test_cells_values_labels_and_an_escaped_title():
    R = [[0.9, math.nan], [0.5, 0.8]]
    root = ET.fromstring(accuracy_heatmap_svg(R, [0.1, 0.2], "a<b & c"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[0] == "a<b & c"
    assert [t for t in texts if t and t.startswith("0.") and len(t) == 4] == ["0.10", "0.20", "0.90", "0.50", "0.80"]
    assert {"init", "0", "1", "evaluated on experience", "after training on", "accuracy"} <= set(texts)
    cells = [r for r in root.iter(f"{SVG}rect") if r.get("fill", "").startswith("#") and r.get("fill") != "#444"]
    assert [c.get("fill") for c in cells] == [viridis(v) for v in (0.1, 0.2, 0.9, 0.5, 0.8)]  # the NaN cell is empty
    dark_on_light = [t.get("fill") for t in root.iter(f"{SVG}text") if t.text in ("0.90", "0.50")]
    assert dark_on_light == ["black", "white"]


def test_without_b_the_rows_are_the_experiences():
    texts = [t.text for t in ET.fromstring(accuracy_heatmap_svg([[1.0]])).iter(f"{SVG}text")]
    assert "init" not in texts and "1.00" in texts
