"""What ``physnn models`` shows: each parameter of a model or layer with its allowed values, default and meaning.

The meaning is the first sentence of the parameter's entry in the numpy-style
``Attributes`` section of the parameter class's docstring (or of a base
class's: a sequence model's ``embedding`` is documented once, in
:class:`~physnn.models.sequence.SequenceParams`), else the field's
``description``. The allowed values are written for a user, not as Python
type reprs: ``one of: max, average, sum``, ``int > 0 or null``,
``list of layers``.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class ParamRow:
    """One parameter: its name, allowed values, default (as YAML) and one-sentence description."""

    name: str
    values: str
    default: str
    description: str


def attribute_docs(cls: type) -> dict[str, str]:
    """``{name: text}`` from the ``Attributes`` sections of ``cls`` and its bases (the subclass's entry wins).

    An entry naming several parameters (``a, b``) gives each the same text.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_section(klass.__dict__.get("__doc__") or ""))
    return docs


def _section(doc: str) -> dict[str, str]:
    lines = inspect.cleandoc(doc).splitlines()
    if "Attributes" not in lines:
        return {}
    out: dict[str, str] = {}
    current: list[str] = []
    body = lines[lines.index("Attributes") + 2:]
    for i, line in enumerate(body):
        if i + 1 < len(body) and set(body[i + 1].strip()) == {"-"}:  # the next numpy section begins
            break
        if line and not line.startswith(" "):
            current = [n.strip() for n in line.split(",")]
            out.update(dict.fromkeys(current, ""))
        elif line.strip():
            for name in current:
                out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def plain(text: str) -> str:
    """Docstring markup for a terminal: ``x`` is x, :class:`~a.B` is B."""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`.]+)`", r"\1", text)
    return text.replace("``", "")


def first_sentence(text: str) -> str:
    """The text up to the first full stop followed by a capital letter or markup (``e.g. the`` does not end
    one)."""
    return re.split(r"(?<![ei]\.[ge]\.)(?<=[.!?])\s+(?=[A-Z`:])", text.strip(), maxsplit=1)[0]


def _bounds(metadata: Iterable[Any]) -> str:
    low = high = ""
    not_empty = False
    for item in metadata:  # pydantic's constraints (annotated_types' Gt, Ge, ...), read by their attributes
        if getattr(item, "gt", None) is not None:
            low = f"> {item.gt:g}"
        elif getattr(item, "ge", None) is not None:
            low = f">= {item.ge:g}"
        elif getattr(item, "lt", None) is not None:
            high = f"< {item.lt:g}"
        elif getattr(item, "le", None) is not None:
            high = f"<= {item.le:g}"
        elif (getattr(item, "min_length", None) or 0) > 0:
            not_empty = True
    return " ".join(filter(None, [", ".join(filter(None, [low, high])), "(not empty)" if not_empty else ""]))


def _layer_names(classes: Iterable[type]) -> list[str] | None:
    """The ``type`` tags of a union of layer specs, or None when it is not one."""
    names = []
    for cls in classes:
        field = getattr(cls, "model_fields", {}).get("type")
        if field is None or get_origin(field.annotation) is not Literal:
            return None
        names.append(str(get_args(field.annotation)[0]))
    return names


def describe_type(annotation: Any, metadata: Iterable[Any] = ()) -> str:
    """The values a parameter accepts, in words: ``one of: same, valid``, ``float >= 0, < 1``, ``int or null``."""
    text = _describe(annotation)
    bounds = _bounds(metadata)
    return f"{text} {bounds}" if bounds else text


def _describe(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is typing.Annotated:
        layers = next((m for m in args[1:] if isinstance(m, FieldInfo) and m.discriminator), None)
        return _describe(args[0]) if layers is not None else describe_type(args[0], args[1:])
    if origin is Literal:
        values = ", ".join(str(a) for a in args)
        return values if len(args) == 1 else f"one of: {values}"
    if origin in (typing.Union, types.UnionType):
        names = _layer_names(args)
        if names is not None:
            return f"layer: {', '.join(names)}"
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is list:
        inner = _describe(args[0]) if args else "values"
        if inner.startswith("layer: "):
            return "list of layers" if inner.count(",") > 5 else f"list of layers ({inner[7:]})"
        return f"list of {inner}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"mapping: {', '.join(annotation.model_fields)}"
    names = {bool: "true or false", int: "int", float: "float", str: "text"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def as_yaml(value: Any) -> str:
    """A default as it is written in a config: ``null``, ``true``, ``[64, 32]``; layer lists by their types."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "type" in v for v in value):
            return ", ".join(str(v["type"]) for v in value)
        return f"[{', '.join(as_yaml(v) for v in value)}]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parameter_rows(params: type[BaseModel]) -> list[ParamRow]:
    """One row per parameter of a model's or layer's parameter class (a layer's ``type`` tag left out)."""
    docs = attribute_docs(params)
    rows = []
    for name, info in params.model_fields.items():
        if name == "type":
            continue
        default = "required" if info.is_required() else as_yaml(info.get_default(call_default_factory=True))
        text = plain(first_sentence(docs.get(name) or info.description or ""))
        rows.append(ParamRow(name, describe_type(info.annotation, info.metadata), default, text))
    return rows


def layer_types() -> dict[str, type[BaseModel]]:
    """Every layer spec class by its ``type`` tag, in the order of :data:`~physnn.models.layers.Layer`."""
    from physnn.models.layers import Layer

    classes = get_args(get_args(Layer)[0])
    return dict(zip(_layer_names(classes) or [], classes, strict=True))


def summary(cls: type) -> str:
    """The first line of a class's docstring, markup removed."""
    return plain((cls.__doc__ or "").strip().splitlines()[0]) if cls.__doc__ else ""
