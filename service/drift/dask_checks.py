"""The data contract of a check on Dask, judged from the partitions' summaries (``PartMeta``).

The workers read the data; the client sees only each partition's row count, column names, and per column
its kind, non-null count, infinite values and non-numeric examples. That is enough to refuse what the
fast engine refuses — a missing or extra column, no rows, a column entirely null, text in a numeric
column, infinite values — with its messages, naming the file and the column.
"""

from __future__ import annotations

from collections import defaultdict

from service.contracts import ColumnKind, ColumnSpec, DataContract, column_set_problems
from service.drift.dask_parts import PartMeta
from service.errors import ContractViolation


def reference_kinds(metas: list[PartMeta], ignore: list[str], source: str) -> dict[str, ColumnKind]:
    """The kind of every column but ``ignore``, as the reference's values read (an ad-hoc check's contract)."""
    columns = list(metas[0].columns)
    if missing := [name for name in ignore if name not in columns]:
        raise ContractViolation(source, [f"column {name!r} given to --ignore is missing" for name in missing])
    if not sum(meta.rows for meta in metas):
        raise ContractViolation(source, ["has no rows: expected reference data"])
    problems = _by_file(_differing_columns(metas, columns))
    kinds_seen: dict[str, dict[ColumnKind, str]] = defaultdict(dict)
    for meta in metas:
        for name, kind in meta.kinds.items():
            kinds_seen[name].setdefault(kind, meta.uri)
    kinds: dict[str, ColumnKind] = {}
    for name in (name for name in columns if name not in ignore):
        seen = kinds_seen.get(name, {})
        if len(seen) > 1:  # a csv block of numbers in a column of text: which to believe is a guess
            problems[seen["categorical"]].append(
                f"column {name!r} reads as text here but as numbers in {seen['numeric']}: expected one kind "
                "of values in every part of the reference"
            )
        kinds[name] = next(iter(seen), "categorical")
    problems = _merge(problems, side_problems(metas, kinds, allowed=None))
    _raise_first(problems)
    return kinds


def check_side(metas: list[PartMeta], kinds: dict[str, ColumnKind], allowed: set[str] | None, source: str) -> None:
    """Raise ``ContractViolation`` for the first file of a side that breaks the contract ``kinds`` makes.
    ``allowed``: the columns a file may have (None: any, beside the checked ones)."""
    problems = side_problems(metas, kinds, allowed)
    if not sum(meta.rows for meta in metas):
        problems[source].append("has 0 rows: expected at least 1")
    _raise_first(problems)


def side_problems(metas: list[PartMeta], kinds: dict[str, ColumnKind], allowed: set[str] | None) -> dict[str, list]:
    """Each file's problems with the checked columns ``kinds``, summed over its partitions."""
    problems: dict[str, list[str]] = defaultdict(list)
    contract = DataContract(tuple(ColumnSpec(name, "numeric") for name in kinds), None, (), 1, 1.0)
    for uri, parts in _files(metas).items():
        columns = list(parts[0].columns)
        if allowed is None:
            problems[uri] += [f"column {name!r} is missing" for name in kinds if name not in columns]
        else:
            wider = DataContract(contract.features, None, tuple(allowed - set(kinds)), 1, 1.0)
            problems[uri] += column_set_problems(columns, wider, require_target=False)
        if not problems[uri]:
            problems[uri] += _column_problems(parts, kinds)
    return problems


def _column_problems(parts: list[PartMeta], kinds: dict[str, ColumnKind]) -> list[str]:
    problems = []
    for name, kind in kinds.items():
        if not sum(part.non_null.get(name, 0) for part in parts):
            problems.append(f"column {name!r} is entirely null: expected {kind} values")
            continue
        found = [part.not_numeric[name] for part in parts if name in part.not_numeric]
        if found:
            examples = list(dict.fromkeys(example for _, bad in found for example in bad))[:3]
            problems.append(f"column {name!r} has dtype {found[0][0]}: expected numeric values (found e.g. {examples})")
        elif count := sum(part.infinite.get(name, 0) for part in parts):
            problems.append(f"column {name!r} has {count} infinite values: expected finite numbers")
    return problems


def _files(metas: list[PartMeta]) -> dict[str, list[PartMeta]]:
    files: dict[str, list[PartMeta]] = defaultdict(list)
    for meta in metas:
        files[meta.uri].append(meta)
    return files


def _differing_columns(metas: list[PartMeta], columns: list[str]) -> list[tuple[str, str]]:
    return [
        (meta.uri, f"has columns {list(meta.columns)}: expected those of {metas[0].uri}, {columns}")
        for meta in metas
        if list(meta.columns) != columns
    ]


def _by_file(problems: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for uri, problem in problems:
        if problem not in grouped[uri]:
            grouped[uri].append(problem)
    return grouped


def _merge(first: dict[str, list[str]], second: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = defaultdict(list)
    for problems in (first, second):
        for uri, items in problems.items():
            merged[uri] += [item for item in items if item not in merged[uri]]
    return merged


def _raise_first(problems: dict[str, list[str]]) -> None:
    for uri, items in problems.items():
        if items:
            raise ContractViolation(uri, items)
