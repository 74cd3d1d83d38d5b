"""Many rows of one model inserted without a model instance for each. Django's bulk_create builds every
row as a model instance and prepares each of its fields: for a call to 100 recipients, 100 Message
instances and some 3,600 prepared values, most of the accept path's time once bodies were stored once
(docs/benchmarks.md). `insert` takes what the rows share once and, as lists, only the columns that
differ. On PostgreSQL the shared values are bound once and each differing column as one array
(INSERT … SELECT … FROM unnest(…), the form Django's own bulk insert takes there). Elsewhere (the
embedded SQLite set-up) it is bulk_create."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection, models
from django.utils import timezone


def insert(model: type[models.Model], *, shared: dict[str, Any], each: dict[str, list]) -> list[int]:
    """Insert one row per item of the lists in `each` (all as long), with `shared`'s values in every row
    and each other column's default; their primary keys, in order. Keys are column attribute names
    (`account_id`, not `account`); a key the model does not have raises ValueError."""
    count = len(next(iter(each.values())))
    if not count:
        return []
    statement = _statement(model, tuple(shared), tuple(each))
    if connection.vendor != "postgresql":
        rows = [model(**shared, **{name: values[i] for name, values in each.items()}) for i in range(count)]
        return [row.pk for row in model.objects.bulk_create(rows)]
    params = [column.value(shared, connection) for column in statement.constant]
    params += [
        [field.get_db_prep_save(value, connection) for value in each[field.attname]]
        for field in statement.arrays
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class _Constant:
    """A column with one value for every row: given, its default (prepared once), or now (auto_now)."""

    field: models.Field
    given: bool
    default: Any = None

    def value(self, shared: dict, connection) -> Any:
        if self.given:
            return self.field.get_db_prep_save(shared[self.field.attname], connection)
        if getattr(self.field, "auto_now", False) or getattr(self.field, "auto_now_add", False):
            return self.field.get_db_prep_save(timezone.now(), connection)
        return self.default


@dataclass(frozen=True)
class _Statement:
    sql: str
    constant: list[_Constant]
    arrays: list[models.Field]


@cache
def _statement(model: type[models.Model], shared: tuple[str, ...], each: tuple[str, ...]) -> _Statement:
    """The INSERT for rows of this shape, built once per process (the names of the shared and the
    differing columns). Raises ValueError for a name the model has no column for."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    unknown = (set(shared) | set(each)) - {field.attname for field in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    if connection.vendor != "postgresql":
        return _Statement("", [], [])
    quote = connection.ops.quote_name
    columns, select, constant, arrays, array_types = [], [], [], [], []
    for field in fields:
        db_type = field.db_type(connection).split("(")[0]  # varchar[], not varchar(254)[]: no truncation
        columns.append(quote(field.column))
        if field.attname in each:
            select.append(f"u.{quote(field.attname)}")
            arrays.append(field)
            array_types.append(f"%s::{db_type}[]")
        else:
            select.append(f"%s::{db_type}")
            given = field.attname in shared
            default = None if given else field.get_db_prep_save(field.get_default(), connection)
            constant.append(_Constant(field, given, default))
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # nosec B608: the model's names
        f"SELECT {', '.join(select)} FROM unnest({', '.join(array_types)}) "
        f"AS u({', '.join(quote(field.attname) for field in arrays)}) RETURNING {quote(model._meta.pk.column)}"
    )
    return _Statement(sql, constant, arrays)
