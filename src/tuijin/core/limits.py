"""Input limits in one place: text lengths come from the model fields, list sizes from here.

Every entry path (services, API schemas, page forms, the Excel import's dry run) asks
the model field for its `max_length`, so validation and storage cannot disagree again:
before, a region of 40 characters passed validation (64) and was refused by the column
(32) on PostgreSQL in the middle of an import, while SQLite stored a 10,000-digit phone.

The API schemas also bound every list in a request body (`MAX_ITEMS`, `bounded_list`):
one request with thousands of nested items held SQLite's write lock for a minute.
docs/api.md lists the limits.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext as _
from pydantic import Field

# List sizes in request bodies (docs/api.md "Limits"). Generous for real use, small enough
# that one request cannot hold the database for long.
MAX_ITEMS = {
    "contacts": 50,        # contacts created with a customer
    "tags": 20,            # tags / style tags on a customer or contact
    "ids": 200,            # ids in one bulk request (transfer, mark read, products, evidence)
    "lines": 200,          # lines of one forecast report or correction
    "short_list": 50,      # small enumerations (departments, key results, grade rule conditions)
    "children": 500,       # units or reps one goal target is allocated to
}
TAG_MAX_LENGTH = 32
# Free text without a database limit (TextField): long enough for any note, bounded all the same.
NOTES_MAX_LENGTH = 10_000
# Short free strings in request bodies that are not stored in a column of their own (codes, choices, reasons).
SHORT_TEXT = 255


def max_length(model: type[models.Model], field: str) -> int:
    """The stored maximum of a text field; the one number every entry path checks against."""
    n = model._meta.get_field(field).max_length
    if n is None:
        raise ValueError(f"{model.__name__}.{field} has no max_length")
    return n


def text(model: type[models.Model], field: str) -> Any:
    """A ninja/pydantic string type bounded by the model field: `name: text(Customer, "name")`."""
    return Annotated[str, Field(max_length=max_length(model, field))]


def short(n: int = SHORT_TEXT) -> Any:
    """A bounded string for body fields that are not a column (codes, choices, free reasons)."""
    return Annotated[str, Field(max_length=n)]


def bounded_list(item: Any, kind: str) -> Any:
    """A list type with maxItems from MAX_ITEMS[kind]."""
    return Annotated[list[item], Field(max_length=MAX_ITEMS[kind])]


def text_fields(model: type[models.Model]) -> list[str]:
    """Names of the model's user-writable text fields with a maximum length."""
    return [
        f.name for f in model._meta.get_fields()
        if isinstance(f, models.CharField | models.TextField) and f.max_length and f.editable
    ]


def length_errors(model: type[models.Model], clean: dict, errors: dict) -> None:
    """Add "最多N字" for every string value in `clean` longer than its model field allows."""
    for key, value in clean.items():
        if key in errors or not isinstance(value, str):
            continue
        try:
            f = model._meta.get_field(key)
        except FieldDoesNotExist:  # not a column of this model (e.g. an alias): nothing to check
            continue
        n = getattr(f, "max_length", None)
        if n and len(value) > n:
            errors[key] = _("最多%(n)s字") % {"n": n}
