"""Strict decoding of JSON values into frozen dataclasses, and back.

`decode(cls, value, path)` checks every field's type against the dataclass annotations,
refuses unknown and missing fields (fields with defaults may be omitted), and raises
InvalidDocument with the field path and what was expected. Supported annotations: str,
int (never bool), float (int accepted), bool, None unions, Literal, tuple[X, ...],
dict[str, X], nested dataclasses, `JsonValue` (free-form, depth- and size-bounded) and
`Timestamp` (wire.times: an instant, a float of Unix seconds in memory, ISO 8601 UTC on the
wire; numbers are read too).

`encode` leaves out a field declared with `metadata=OMIT_EMPTY` while it is empty: a field
added to a signed document that way does not reach peers that predate it until it is used
(their strict decoding would refuse it), and decoding gives back the same default.
`encode(..., times="epoch")` writes Timestamp fields as numbers instead, for a peer that
predates ISO times (docs/agent.md#times-in-documents).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from wire.errors import InvalidDocument
from wire.records import record
from wire.times import TIME, TimeForm, format_time, parse_time

Timestamp = Annotated[float, TIME]
"""An instant: float Unix seconds in memory, `2026-12-07T18:57:05.646Z` on the wire."""

T = TypeVar("T")

JsonValue = Any
"""Free-form JSON (for config): checked for depth, size and key types only."""

MAX_DEPTH = 32
MAX_ITEMS = 10_000
MAX_FLEET_ITEMS = 10_000_000
"""`max_items` for the objects the controller writes about the whole fleet (its control
objects, `status/cluster.json`): one entry per machine, bounded by their byte caps
(docs/security.md#fleet-sized-objects); anything an agent or an operator writes keeps
MAX_ITEMS."""
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
def hints(cls: type) -> dict[str, Any]:
    """The field annotations of a dataclass, `Timestamp` markers kept."""
    return typing.get_type_hints(cls, include_extras=True)


def check_json(value: object, path: str, depth: int = 0, *, max_items: int = MAX_ITEMS) -> None:
    """Check a free-form JSON value for depth, list/object sizes and string length."""
    if depth > MAX_DEPTH:
        raise InvalidDocument(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if len(value) > max_items:
            raise InvalidDocument(f"{path}: more than {max_items} keys")
        for k, v in value.items():
            check_json(v, f"{path}.{k}", depth + 1, max_items=max_items)
    elif isinstance(value, list):
        if len(value) > max_items:
            raise InvalidDocument(f"{path}: more than {max_items} items")
        for i, v in enumerate(value):
            check_json(v, f"{path}[{i}]", depth + 1, max_items=max_items)
    elif isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidDocument(f"{path}: string longer than {MAX_STRING} characters")
    elif value is not None and not isinstance(value, (int, float, bool)):
        raise _fail(path, "a JSON value", value)


Decoder = typing.Callable[[object, str], Any]
_DECODERS: dict[tuple[Any, int], Decoder] = {}


def decode(tp: Any, value: object, path: str, max_items: int = MAX_ITEMS) -> Any:
    """Decode `value` as type `tp`, raising InvalidDocument naming `path`. Lists and
    objects hold at most `max_items` entries (MAX_FLEET_ITEMS: only for what the controller
    writes about the whole fleet).

    Each annotation is compiled once into a function (`decoder`): the per-value work is the
    checks themselves, not re-reading the annotations (`get_origin`, `dataclasses.fields`)
    for every field of every document."""
    fn = _DECODERS.get((tp, max_items))
    if fn is None:
        fn = decoder(tp, max_items)
    return fn(value, path)


def decoder(tp: Any, max_items: int = MAX_ITEMS) -> Decoder:
    """The compiled decoder of annotation `tp` with lists and objects capped at `max_items`
    (cached)."""
    fn = _DECODERS.get((tp, max_items))
    if fn is None:
        fn = _DECODERS[(tp, max_items)] = _compile(tp, max_items)
    return fn


def _compile(tp: Any, cap: int) -> Decoder:
    if tp is Any:

        def free(value: object, path: str) -> Any:
            check_json(value, path, max_items=cap)
            return value

        return free
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_decoder(tp, cap)
    origin = get_origin(tp)
    if origin is Annotated:
        if TIME in tp.__metadata__:
            return parse_time
        return decoder(get_args(tp)[0], cap)
    if origin is Literal:
        return _literal_decoder(get_args(tp))
    if origin in (Union, types.UnionType):
        return _union_decoder(get_args(tp), cap)
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        return _tuple_decoder(item_tp, cap)
    if origin is dict:
        return _dict_decoder(get_args(tp)[1], cap)
    plain = _SCALARS.get(tp)
    if plain is not None:
        return plain
    raise TypeError(f"codec cannot decode annotation {tp!r}")  # a bug, not bad input


def _literal_decoder(allowed: tuple[Any, ...]) -> Decoder:
    kind = type(allowed[0])

    def literal(value: object, path: str) -> Any:
        if value not in allowed or type(value) is not kind:
            raise InvalidDocument(
                f"{path}: expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}"[
                    :300
                ]
            )
        return value

    return literal


def _union_decoder(args: tuple[Any, ...], cap: int) -> Decoder:
    optional = type(None) in args
    non_none = [a for a in args if a is not type(None)]
    if len(non_none) == 1:
        one = decoder(non_none[0], cap)

        def maybe(value: object, path: str) -> Any:
            if value is None and optional:
                return None
            return one(value, path)

        return maybe
    alternatives = [decoder(a, cap) for a in non_none]

    def union(value: object, path: str) -> Any:
        if value is None and optional:
            return None
        errors = []
        for alt in alternatives:
            try:
                return alt(value, path)
            except InvalidDocument as exc:
                errors.append(str(exc))
        raise InvalidDocument("; ".join(errors))

    return union


def _tuple_decoder(item_tp: Any, cap: int) -> Decoder:
    def items(value: object, path: str) -> Any:
        if not isinstance(value, list):
            raise _fail(path, "array", value)
        if len(value) > cap:
            raise InvalidDocument(f"{path}: more than {cap} items")
        item = decoder(item_tp, cap)
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return items


def _dict_decoder(val_tp: Any, cap: int) -> Decoder:
    def mapping(value: object, path: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(path, "object", value)
        if len(value) > cap:
            raise InvalidDocument(f"{path}: more than {cap} keys")
        item = decoder(val_tp, cap)
        return {k: item(v, f"{path}.{k}") for k, v in value.items()}

    return mapping


def _bool(value: object, path: str) -> Any:
    if not isinstance(value, bool):
        raise _fail(path, "boolean", value)
    return value


def _int(value: object, path: str) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(path, "integer", value)
    if not -(2**63) <= value < 2**63:
        raise InvalidDocument(f"{path}: integer out of range")
    return value


def _float(value: object, path: str) -> Any:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _fail(path, "number", value)
    return float(value)


def _str(value: object, path: str) -> Any:
    if not isinstance(value, str):
        raise _fail(path, "string", value)
    if len(value) > MAX_STRING:
        raise InvalidDocument(f"{path}: string longer than {MAX_STRING} characters")
    return value


_SCALARS: dict[Any, Decoder] = {bool: _bool, int: _int, float: _float, str: _str}


def _dataclass_decoder(cls: type, cap: int) -> Decoder:
    # the fields' decoders are compiled at the first call (a dataclass may refer to itself),
    # published in one assignment so a thread never sees half of them
    Plan = tuple[frozenset[str], str, tuple[tuple[str, Decoder, bool], ...]]
    ready: Plan | None = None

    def prepare() -> Plan:
        field_types = hints(cls)
        fields = dataclasses.fields(cls)
        allowed = frozenset(f.name for f in fields)
        compiled = tuple(
            (
                f.name,
                decoder(field_types[f.name], cap),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in fields
        )
        return allowed, ", ".join(sorted(allowed)), compiled

    def record(value: object, path: str) -> Any:
        nonlocal ready
        if not isinstance(value, dict):
            raise _fail(path, "object", value)
        if ready is None:
            ready = prepare()
        allowed, listing, compiled = ready
        if not allowed.issuperset(value):
            unknown = sorted(set(value) - allowed)
            raise InvalidDocument(
                f"{path}: unknown field {unknown[0]!r} (allowed: {listing})"[:400]
            )
        kwargs: dict[str, Any] = {}
        for name, fn, required in compiled:
            if name in value:
                kwargs[name] = fn(value[name], f"{path}.{name}")
            elif required:
                raise InvalidDocument(f"{path}: missing required field {name!r}")
        return cls(**kwargs)

    return record


_PLAIN = frozenset({str, int, float, bool, type(None)})


@record
class _Shape:
    """How `encode` writes one dataclass: its fields, and those needing more than a copy."""

    names: tuple[str, ...]
    omitted: tuple[str, ...]  # left out while empty
    times: tuple[str, ...]  # Timestamp or Timestamp | None
    time_maps: tuple[str, ...]  # dict[str, Timestamp]


_SHAPES: dict[type, _Shape] = {}


def _is_time(tp: Any) -> bool:
    if get_origin(tp) is Annotated:
        return TIME in tp.__metadata__
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return len(args) == 1 and _is_time(args[0])
    return False


def _shape(cls: type) -> _Shape:
    fields = dataclasses.fields(cls)
    tps = hints(cls)
    return _Shape(
        names=tuple(f.name for f in fields),
        omitted=tuple(f.name for f in fields if f.metadata.get("omit_empty")),
        times=tuple(f.name for f in fields if _is_time(tps[f.name])),
        time_maps=tuple(
            f.name
            for f in fields
            if get_origin(tps[f.name]) is dict and _is_time(get_args(tps[f.name])[1])
        ),
    )


def encode(value: Any, *, times: TimeForm = "iso") -> Any:
    """Turn dataclasses (and tuples inside them) into plain JSON values; Timestamp fields
    as ISO 8601 UTC strings, or as numbers with `times="epoch"`."""
    return _encode(value, times == "iso")


def _encode(value: Any, iso: bool) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    shape = _SHAPES.get(kind)
    if shape is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        shape = _SHAPES[kind] = _shape(kind)
    if shape is not None:
        out = {name: _encode(getattr(value, name), iso) for name in shape.names}
        if iso:
            for name in shape.times:
                t = out[name]
                if t is not None:
                    out[name] = format_time(t)
            for name in shape.time_maps:
                out[name] = {k: format_time(t) for k, t in out[name].items()}
        for name in shape.omitted:
            if not out[name]:
                del out[name]
        return out
    if isinstance(value, (tuple, list)):
        return [_encode(v, iso) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v, iso) for k, v in value.items()}
    return value
