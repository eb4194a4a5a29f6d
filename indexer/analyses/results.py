"""Typed analysis results with one JSON form: ``as_json()`` writes it, ``from_json()`` reads it.

A result is a frozen dataclass that mixes in ``JsonRecord``. Its fields, in declaration order,
are the keys of its JSON form (the order ``--json`` prints and the inspection cache stores).
Nested records, ``tuple[X, ...]`` and ``dict[int, X]`` (JSON keys are strings; they come back
as ints) are converted both ways. Standard library only: the CLI imports every analysis's
result types to build its commands, and must stay quick to start.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self, Union

_PLAIN = (int, float, str, bool, type(None), Any)


_hints_of: dict[type, dict[str, Any]] = {}
_plain_of: dict[type, bool] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _hints_of:
        _hints_of[cls] = typing.get_type_hints(cls)
    return _hints_of[cls]


def _is_plain(tp: Any) -> bool:
    if tp in _PLAIN:
        return True
    if typing.get_origin(tp) in (Union, types.UnionType):
        return all(_is_plain(a) for a in typing.get_args(tp))
    return False


def _plain(cls: type) -> bool:
    """True when every field is a number, string, bool or None: rows are built in one call."""
    if cls not in _plain_of:
        _plain_of[cls] = all(_is_plain(tp) for tp in _hints(cls).values())
    return _plain_of[cls]


def _load(tp: Any, value: Any) -> Any:
    if value is None or tp in _PLAIN:
        return value
    if isinstance(tp, type) and issubclass(tp, JsonRecord):
        return tp.from_json(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _load(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], v) for v in value)
        return tuple(_load(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        kt, vt = args
        return {(int(k) if kt is int else k): _load(vt, v) for k, v in value.items()}
    return value


def _dump(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.as_json()
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


class JsonRecord:
    """Mixed into a frozen dataclass: its JSON form, field by field, and back."""

    def as_json(self) -> dict[str, Any]:
        names = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        if _plain(type(self)):
            return {n: getattr(self, n) for n in names}
        return {n: _dump(getattr(self, n)) for n in names}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The record from its JSON form; KeyError or TypeError when a field is missing or
        unknown (an old cache file: the caller recomputes it)."""
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        if len(data) != len(names):
            raise TypeError(f"{cls.__name__}: fields {sorted(data)} are not {sorted(names)}")
        if _plain(cls):
            return cls(**data)
        hints = _hints(cls)
        return cls(**{n: _load(hints[n], data[n]) for n in names})
