"""Many rows of one model inserted without a model instance for each. Django's bulk_create builds every
row as a model instance and prepares each of its fields: for a call to 100 recipients, 100 Message
instances and some 3,600 prepared values, most of the accept path's time once bodies were stored once
(docs/benchmarks.md). `insert` takes what the rows share once and, as lists, only the columns that
differ. On PostgreSQL the shared values are bound once and each differing column as one array
(INSERT … SELECT … FROM unnest(…), the form Django's own bulk insert takes there). Elsewhere (the
embedded SQLite set-up) it is bulk_create."""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.utils import timezone


def insert(model: type[models.Model], *, shared: dict[str, Any], each: dict[str, list]) -> list[int]:
    """Insert one row per item of the lists in `each` (all as long), with `shared`'s values in every row
    and each other column's default; their primary keys, in order. Keys are column attribute names
    (`account_id`, not `account`); a key the model does not have raises ValueError."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    unknown = (set(shared) | set(each)) - {field.attname for field in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    count = len(next(iter(each.values())))
    if not count:
        return []
    if connection.vendor != "postgresql":
        rows = [model(**shared, **{name: values[i] for name, values in each.items()}) for i in range(count)]
        return [row.pk for row in model.objects.bulk_create(rows)]
    quote = connection.ops.quote_name
    columns, select, params, arrays, array_names, array_params = [], [], [], [], [], []
    for field in fields:
        name = field.attname
        db_type = field.db_type(connection).split("(")[0]  # varchar[], not varchar(254)[]: no truncation
        columns.append(quote(field.column))
        if name in each:
            select.append(f"u.{quote(name)}")
            arrays.append(f"%s::{db_type}[]")
            array_names.append(quote(name))
            array_params.append([field.get_db_prep_save(value, connection) for value in each[name]])
        else:
            select.append(f"%s::{db_type}")
            params.append(
                field.get_db_prep_save(shared[name] if name in shared else _default(field), connection)
            )
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # nosec B608: the model's names
        f"SELECT {', '.join(select)} FROM unnest({', '.join(arrays)}) "
        f"AS u({', '.join(array_names)}) RETURNING {quote(model._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params + array_params)
        return [row[0] for row in cursor.fetchall()]


def _default(field: models.Field) -> Any:
    """What bulk_create would store in a column not given: its default, or now for an auto_now one."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    return field.get_default()
