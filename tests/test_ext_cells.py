"""The one place values become osquery cells, and the context parser, under arbitrary input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from osq_dbwatch.tables.base import QueryContext, to_cells

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_VALUES = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text() | st.binary(max_size=20)
           | st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")))


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_context_json_parses_to_constraints_or_nothing(data) -> None:
    ctx = QueryContext.from_json(json.dumps(data))
    for name, items in ctx.constraints.items():
        assert isinstance(name, str)
        assert all(isinstance(c.op, int) and isinstance(c.expr, str) for c in items)
    ctx.int_equals("pid")
    ctx.lower_bound("mtime")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _VALUES))
def test_cells_are_utf8_text_and_none_is_omitted(row) -> None:
    cells = to_cells(row, ["a", "b", "c"])
    assert set(cells) <= {"a", "b", "c"}
    for name, value in cells.items():
        assert isinstance(value, str) and value != "None"
        value.encode("utf-8")  # Thrift sends UTF-8
        assert row[name] is not None
    for name in ("a", "b", "c"):
        if row.get(name) is None:
            assert name not in cells


def test_cell_forms() -> None:
    cells = to_cells({"t": True, "f": False, "i": 2**40, "x": 1.0, "s": "caf\udce9", "b": b"\xff", "n": None},
                     ["t", "f", "i", "x", "s", "b", "n"])
    assert cells == {"t": "1", "f": "0", "i": "1099511627776", "x": "1", "s": "caf\\xe9", "b": "\\xff"}
