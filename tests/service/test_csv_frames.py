"""A csv file read whole by pyarrow (service.csv_frames) is the frame pandas' round-trip reader makes of
it: same columns, types and values, so the same hash; a batch's hash must not change with the reader."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.csv_frames import read_csv
from service.data import frame_hash

INTEGERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.integers(0, 999).map(lambda n: f"00{n}"),  # leading zeros
    st.integers(0, 99).map(lambda n: f"+{n}"),  # a sign pandas reads
    st.integers(0, 99).map(lambda n: f" {n} "),  # spaces pandas reads past
    st.sampled_from([str(2**53 + 1), str(2**63 - 1)]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: f"{x:.2f}"),
    st.sampled_from(["1e5", "-2.5E-3", "inf", "-inf", "1.", ".5", "-0.0"]),
)
MISSING = st.sampled_from(["", "NA", "N/A", "nan", "NaN", "null", "None", "<NA>", "#N/A"])
BOOLEANS = st.sampled_from(["True", "False", "TRUE", "false", "true", "FALSE"])
TEXT = st.one_of(
    st.text("abcxyz ", min_size=1, max_size=6),
    st.sampled_from(['"a, b"', '"say ""hi"""', "2026-01-01", "2026-01-01 12:30", "12:00", "é", " "]),
    # numbers to one reader and not the other
    st.sampled_from(["1_000", "0x1f", "0X1F", "NAN", "Nan", "-nAn", "1d5", "5-", "Infinity", "+inf", "1.5e"]),
)
KINDS = {"int": INTEGERS, "float": FLOATS, "bool": BOOLEANS, "text": TEXT, "missing": MISSING}


@st.composite
def csv_files(draw: st.DrawFn) -> str:
    """A csv file whose columns are each mostly of one kind, with gaps and now and then a stray value."""
    kinds = draw(st.lists(st.sampled_from(list(KINDS)), min_size=1, max_size=6))
    rows = draw(st.integers(1, 30))
    cells = []
    for kind in kinds:
        usual = KINDS[kind]
        cell = st.one_of(usual, MISSING, usual, usual, usual) if kind != "missing" else MISSING
        column = draw(st.lists(cell, min_size=rows, max_size=rows))
        if draw(st.booleans()):  # a stray value of another kind, anywhere in the column
            column[draw(st.integers(0, rows - 1))] = draw(st.one_of(*KINDS.values()))
        cells.append(column)
    names = [f"c{index}" for index in range(len(kinds))]
    lines = [",".join(names)] + [",".join(row) for row in zip(*cells, strict=True)]
    return "\n".join(lines) + "\n"


def by_pandas(text: str, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(text.encode()), float_precision="round_trip", usecols=columns)


def assert_same_frame(text: str, columns: list[str] | None = None) -> None:
    expected = by_pandas(text, columns)
    read = read_csv(io.BytesIO(text.encode()), columns)
    pd.testing.assert_frame_equal(read, expected, check_exact=True)
    assert frame_hash(read) == frame_hash(expected)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files())
def test_any_csv_reads_as_pandas_reads_it(text: str) -> None:
    assert_same_frame(text)


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,x\n",  # plain
        "a,a\n1,2\n",  # repeated names: pandas makes a and a.1
        "a,,c\n1,2,3\n",  # a blank name: pandas makes Unnamed: 1
        "\ufeffa,b\n1,2\n",  # a byte-order mark
        "a,b\n",  # a header alone
        'a,b\n"line\nbreak",2\n',  # a line break inside quotes
        'a,b\n1,x"y\n',  # a stray quote in a value
        "a,b\n1,2,3\n4,5\n",  # a row longer than the header
        "a,b\n,\n,\n",  # nothing but gaps
    ],
)
def test_files_pyarrow_reads_otherwise_read_as_pandas_reads_them(text: str) -> None:
    assert_same_frame(text)


def test_only_the_columns_asked_for_are_read_in_the_files_order() -> None:
    assert_same_frame("a,b,c\n1,x,2.5\n3,y,4.5\n", columns=["c", "a"])


@pytest.mark.parametrize(
    ("text", "columns"),
    [("a,b\n1,2\n", ["a", "z"]), ('a,b\n1,"open\n2,3\n', None), ('a,b\n1,"open', None), ("", None)],
)
def test_a_file_pandas_refuses_is_refused_with_pandas_words(text: str, columns: list[str] | None) -> None:
    with pytest.raises(ValueError) as expected:
        by_pandas(text, columns)
    with pytest.raises(ValueError) as raised:
        read_csv(io.BytesIO(text.encode()), columns)
    assert str(raised.value) == str(expected.value)
