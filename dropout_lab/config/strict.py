"""The base of every config model: unknown keys are errors, no field takes inf or NaN, and a
boolean is not a number."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _accepts_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_bool(a) for a in typing.get_args(annotation))
    return annotation is Any


class StrictModel(BaseModel):
    """The base of every config section."""

    # allow_inf_nan: no field means anything at inf or NaN (`lr: .inf` is a typo, not a rate)
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `epochs: true` as 1; a boolean only fits a bool field.
        if isinstance(v, bool) and info.field_name is not None:
            if not _accepts_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError("expected a number or text, got a boolean")
        return v
