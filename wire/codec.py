"""Strict decoding of JSON values into frozen dataclasses, and back.

`decode(cls, value, path)` checks every field's type against the dataclass annotations,
refuses unknown and missing fields (fields with defaults may be omitted), and raises
InvalidDocument with the field path and what was expected. Supported annotations: str,
int (never bool), float (int accepted), bool, None unions, Literal, tuple[X, ...],
dict[str, X], nested dataclasses and `JsonValue` (free-form, depth- and size-bounded).

`encode` leaves out a field declared with `metadata=OMIT_EMPTY` while it is empty: a field
added to a signed document that way does not reach peers that predate it until it is used
(their strict decoding would refuse it), and decoding gives back the same default.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from wire.errors import InvalidDocument

T = TypeVar("T")

JsonValue = Any
"""Free-form JSON (for config): checked for depth, size and key types only."""

MAX_DEPTH = 32
MAX_ITEMS = 10_000
MAX_STRING = 64 * 1024

OMIT_EMPTY: dict[str, bool] = {"omit_empty": True}

_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}


def _got(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _fail(path: str, expected: str, value: object) -> InvalidDocument:
    return InvalidDocument(f"{path}: expected {expected}, got {_got(value)}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_json(value: object, path: str, depth: int = 0) -> None:
    """Check a free-form JSON value for depth, list/object sizes and string length."""
    if depth > MAX_DEPTH:
        raise InvalidDocument(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise InvalidDocument(f"{path}: more than {MAX_ITEMS} keys")
        for k, v in value.items():
            check_json(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise InvalidDocument(f"{path}: more than {MAX_ITEMS} items")
        for i, v in enumerate(value):
            check_json(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidDocument(f"{path}: string longer than {MAX_STRING} characters")
    elif value is not None and not isinstance(value, (int, float, bool)):
        raise _fail(path, "a JSON value", value)


def decode(tp: Any, value: object, path: str) -> Any:
    """Decode `value` as type `tp`, raising InvalidDocument naming `path`."""
    if tp is Any:
        check_json(value, path)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(tp, value, path)
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or type(value) is not type(allowed[0]):
            raise InvalidDocument(
                f"{path}: expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}"[
                    :300
                ]
            )
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return decode(non_none[0], value, path)
        errors = []
        for arg in non_none:
            try:
                return decode(arg, value, path)
            except InvalidDocument as exc:
                errors.append(str(exc))
        raise InvalidDocument("; ".join(errors))
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if not isinstance(value, list):
            raise _fail(path, "array", value)
        if len(value) > MAX_ITEMS:
            raise InvalidDocument(f"{path}: more than {MAX_ITEMS} items")
        return tuple(decode(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise _fail(path, "object", value)
        if len(value) > MAX_ITEMS:
            raise InvalidDocument(f"{path}: more than {MAX_ITEMS} keys")
        return {k: decode(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "boolean", value)
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, "integer", value)
        if not -(2**63) <= value < 2**63:
            raise InvalidDocument(f"{path}: integer out of range")
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _fail(path, "number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "string", value)
        if len(value) > MAX_STRING:
            raise InvalidDocument(f"{path}: string longer than {MAX_STRING} characters")
        return value
    raise TypeError(f"codec cannot decode annotation {tp!r} at {path}")  # a bug, not bad input


def _decode_dataclass(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise _fail(path, "object", value)
    hints = _hints(cls)  # type: ignore[arg-type]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidDocument(
            f"{path}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(fields))})"[:400]
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = decode(hints[name], value[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidDocument(f"{path}: missing required field {name!r}")
    return cls(**kwargs)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # names, omitted empty


def encode(value: Any) -> Any:
    """Turn dataclasses (and tuples inside them) into plain JSON values."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    known = _FIELDS.get(kind)
    if known is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        known = _FIELDS[kind] = (
            tuple(f.name for f in fields),
            tuple(f.name for f in fields if f.metadata.get("omit_empty")),
        )
    if known is not None:
        names, omitted = known
        out = {name: encode(getattr(value, name)) for name in names}
        for name in omitted:
            if not out[name]:
                del out[name]
        return out
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value
