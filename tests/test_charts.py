"""training.charts: standalone SVG line charts (Django-free, no database)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from training.charts import Line, Panel, panels_svg

NS = "{http://www.w3.org/2000/svg}"


def _svg(x: list[float], *panels: Panel) -> ET.Element:
    return ET.fromstring(panels_svg(x, panels, title="Flywheel", x_label="calls"))


def _texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{NS}text")]


def test_it_writes_a_standalone_svg_document() -> None:
    root = _svg([0, 1, 2], Panel("Local", "share", [Line("a", [0.1, 0.2, 0.3])]))

    assert root.tag == f"{NS}svg"
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_it_draws_one_polyline_per_unbroken_line() -> None:
    panel = Panel("Spend", "$", [Line("a", [1, 2, 3]), Line("b", [3, 2, 1], dashed=True)])

    polylines = list(_svg([0, 1, 2], panel).iter(f"{NS}polyline"))

    assert len(polylines) == 2
    assert polylines[0].get("stroke") != polylines[1].get("stroke")
    assert polylines[1].get("stroke-dasharray")


def test_it_splits_a_line_at_a_missing_value() -> None:
    panel = Panel("Agreement", "share", [Line("a", [1, 2, None, 4, 5])])

    assert len(list(_svg([0, 1, 2, 3, 4], panel).iter(f"{NS}polyline"))) == 2


def test_it_treats_non_finite_values_as_missing() -> None:
    panel = Panel("Latency", "ms", [Line("a", [1, 2, math.nan, 4, math.inf, 6, 7])])

    root = _svg(list(range(7)), panel)

    assert len(list(root.iter(f"{NS}polyline"))) == 2
    assert len(list(root.iter(f"{NS}circle"))) == 1


def test_it_draws_an_isolated_point_as_a_circle() -> None:
    panel = Panel("Latency", "ms", [Line("p95", [None, 5, None])])

    root = _svg([0, 1, 2], panel)

    assert len(list(root.iter(f"{NS}circle"))) == 1
    assert not list(root.iter(f"{NS}polyline"))


def test_it_labels_percent_ticks_with_percent_signs() -> None:
    panel = Panel("Local", "share", [Line("a", [0.0, 0.5, 0.9])], y_max=1.0, percent=True)

    texts = _texts(_svg([0, 1, 2], panel))

    assert "0%" in texts
    assert "100%" in texts


def test_it_rounds_ticks_to_nice_values() -> None:
    panel = Panel("Spend", "$", [Line("a", [0.0, 37.0, 60.0, 83.0])])

    texts = _texts(_svg([0, 1000, 2000, 3000], panel))

    assert {"0", "20", "40", "60", "80"} <= set(texts)
    assert {"0", "500", "1000", "3000"} <= set(texts)


def test_it_escapes_text() -> None:
    label = "A & <B> \"q\" 'q'"
    panel = Panel(label, label, [Line(label, [1, 2])])

    root = ET.fromstring(panels_svg([0, 1], [panel], title=label, x_label=label))

    assert _texts(root).count(label) == 5  # document, panel, y axis, legend, x axis
    assert root.findtext(f"{NS}title") == label


def test_it_rejects_a_line_of_the_wrong_length() -> None:
    panel = Panel("Spend", "$", [Line("baseline", [1, 2])])

    with pytest.raises(ValueError, match="baseline"):
        panels_svg([0, 1, 2], [panel], title="t", x_label="x")


@pytest.mark.parametrize(
    ("x", "lines"),
    [
        ([], [Line("a", [])]),
        ([0, 1, 2], [Line("a", [4, 4, 4])]),
        ([0, 1, 2], [Line("a", [0, 0, 0])]),
        ([5], [Line("a", [3])]),
        ([0, 1], [Line("a", [None, math.nan])]),
        ([0, 1], []),
    ],
    ids=["empty x", "constant", "constant zero", "single point", "all missing", "no lines"],
)
def test_it_survives_degenerate_data(x: list[float], lines: list[Line]) -> None:
    root = _svg(x, Panel("P", "y", lines), Panel("Q", "y", lines, percent=True))

    assert root.tag == f"{NS}svg"


def test_it_renders_no_panels() -> None:
    assert ET.fromstring(panels_svg([0, 1], [], title="t", x_label="x")).tag == f"{NS}svg"


def test_it_is_deterministic() -> None:
    def render() -> str:
        lines = [Line("local", [0.1, None, 0.5, 0.7]), Line("llm", [1, 1, 1, 1], dashed=True)]
        return panels_svg([0, 1, 2, 3], [Panel("P", "y", lines)], title="t", x_label="x")

    assert render() == render()
