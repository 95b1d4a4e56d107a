"""The base of every config model: unknown keys are errors, no field takes inf or NaN, a
boolean is not a number, text is not a number (``p: '0.5'``) and a float is not an integer
(``epochs: 1.0e+3``): pydantic's lax mode would convert each of these in silence."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def accepts_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(accepts_bool(a) for a in typing.get_args(annotation))
    return annotation is Any


def _scalar_types(annotation: Any) -> set[Any]:
    """The scalar types a field takes: ``float | list[float]`` -> {float} (a list's items
    count), ``Literal['a']`` -> {str}, a model or Any -> {Any} (checked elsewhere)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return set().union(*(_scalar_types(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(a) for a in typing.get_args(annotation)}
    if annotation in (int, float, str, bool, type(None)):
        return {annotation}
    return {Any}


def _kind_error(annotation: Any, value: Any) -> str | None:
    """Why ``value`` (or an item of a list) has the wrong kind for the field, or None."""
    kinds = _scalar_types(annotation)
    if Any in kinds:
        return None
    items = value if isinstance(value, list) else [value]
    for v in items:
        if isinstance(v, str) and str not in kinds and kinds & {int, float}:
            return "expected a number, not text (write it without quotes)"
        if (isinstance(v, float) and float not in kinds and int in kinds):
            return "expected an integer, not a float (write it without a decimal point)"
    return None


class StrictModel(BaseModel):
    """The base of every config section."""

    # allow_inf_nan: no field means anything at inf or NaN (`lr: .inf` is a typo, not a rate)
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `epochs: true` as 1; a boolean only fits a bool field.
        if info.field_name is None:
            return v
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool):
            if not accepts_bool(annotation):
                raise ValueError("expected a number or text, got a boolean")
            return v
        problem = _kind_error(annotation, v)
        if problem:
            raise ValueError(problem)
        return v
