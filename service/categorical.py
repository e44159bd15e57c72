"""Categorical columns in either form pandas gives them: object strings (csv) or a pandas Categorical
(parquet read for the drift check), handled without making a Python string per row of a Categorical.

A Categorical holds each distinct value once and a small integer code per row, so everything a contract
or a drift test needs (which values occur, how often, which are unseen) is computed from the codes and
applied to the categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


def value_dtype(series: pd.Series) -> object:
    """The dtype of the values themselves: a Categorical's categories' (strings: object), else the column's."""
    return series.cat.categories.dtype if is_categorical(series) else series.dtype


def value_counts(series: pd.Series) -> pd.Series:
    """Each distinct non-null value -> its count, in no particular order; values that do not occur are left out
    (a Categorical keeps categories with no rows, which would count as distinct values)."""
    if not is_categorical(series):
        return series.value_counts(sort=False, dropna=True)
    codes = series.cat.codes.to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(series.cat.categories))
    present = counts > 0
    return pd.Series(counts[present], index=series.cat.categories[present])


def distinct_strings(series: pd.Series) -> frozenset[str]:
    """The distinct non-null values as strings."""
    if not is_categorical(series):
        return frozenset(series.dropna().astype(str))
    return frozenset(value_counts(series).index.astype(str))


def unseen(series: pd.Series, known: frozenset[str]) -> tuple[int, list[str]]:
    """How many non-null values are not in ``known`` (compared as strings), and the distinct ones, sorted."""
    if not is_categorical(series):
        values = series.dropna().astype(str)
        outside = values[~values.isin(known)]
        return len(outside), sorted(outside.unique())
    counts = value_counts(series)
    new = ~counts.index.astype(str).isin(known)
    return int(counts[new].sum()), sorted(counts.index[new].astype(str))


def as_strings(series: pd.Series) -> pd.Series:
    """The column with its values as strings and nulls as missing. A Categorical of strings stays as it is
    (no copy); one of other values gets string categories, unless two values print alike ("1" and 1)."""
    if is_categorical(series):
        categories = series.cat.categories
        if categories.inferred_type in ("string", "empty"):
            return series
        names = categories.astype(str)
        if names.is_unique:
            return series.cat.rename_categories(names)
    return series.astype(str).where(series.notna(), None)


def as_object_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its Categoricals as object strings: what Evidently has always been given."""
    categoricals = {name: object for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)}
    return frame.astype(categoricals) if categoricals else frame
