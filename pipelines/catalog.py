"""What each pipeline does and which params it takes, read from the code itself.

A pipeline's one-line description is the first line of its module docstring (of its
function's docstring for a ``module:function`` pipeline); its parameters come from the
params model it declares with ``takes_params``: types, defaults, allowed values and
constraints from the annotations, help from ``Field(description=...)``. ``tubelet
pipelines`` and docs/pipelines.md print these descriptions.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tubelet.pipelines.params import NestedParams, PathKeys, PathParam, field_metadata, params_model_of
from tubelet.pipelines.registry import PIPELINES, builder_of


@dataclass(frozen=True)
class ParamDoc:
    """One parameter as a manifest writes it under ``params:``."""

    name: str  # dotted for keys inside a mapping: "tracker_options.checkpoint"
    type: str  # as a YAML writer reads it: "number", "list of string", "path or name | null"
    default: Any  # a JSON value; None also for "no default of ours" (see ``required``)
    help: str
    required: bool = False
    unset: bool = False  # a key left out unless set (a default of the code it goes to, not ours)
    allowed: tuple[Any, ...] = ()  # the only values accepted (list items for a list)
    constraint: str = ""  # ">= 0", "> 0", "<= 1" ...
    path: bool = False  # resolved from the manifest's folder (PATH_RULE)
    params_of: str = ""  # a mapping that holds this pipeline's params


@dataclass(frozen=True)
class PipelineDoc:
    """A pipeline: its name, what it does, and its parameters (None: it declares no model)."""

    name: str
    summary: str
    description: str
    params: tuple[ParamDoc, ...] | None

    def defaults(self) -> dict[str, Any]:
        """The top-level parameters at their defaults, as a manifest's ``params:`` holds them."""
        return {p.name: p.default for p in self.params or () if "." not in p.name and not (p.required or p.unset)}


def pipeline_names() -> list[str]:
    """The registered pipelines, in the registry's order."""
    return list(PIPELINES)


def describe_pipeline(name: str) -> PipelineDoc:
    """The description of the pipeline ``name`` (registered, or ``module:function``).

    Raises UnknownPipelineError (a KeyError) for an unknown name or a
    ``module:function`` that cannot be imported.
    """
    builder = builder_of(name)
    doc = _docstring(builder, registered=":" not in name)
    summary, _, rest = doc.partition("\n")
    prefix = f"{name}:"
    if summary.startswith(prefix):  # module docstrings start "track: probe → ..."
        summary = summary[len(prefix) :].strip()
    model = params_model_of(builder)
    params = tuple(describe_params(model)) if model is not None else None
    return PipelineDoc(name=name, summary=summary, description=rest.strip(), params=params)


def _docstring(builder: Callable[..., Any], registered: bool) -> str:
    source = importlib.import_module(builder.__module__) if registered else builder
    return inspect.cleandoc(source.__doc__ or "")


def describe_params(model: type[BaseModel], prefix: str = "") -> list[ParamDoc]:
    """Every field of ``model`` (and the documented keys of its mapping fields)."""
    out: list[ParamDoc] = []
    for name, info in model.model_fields.items():
        key = prefix + name
        if info.description is None:
            raise ValueError(f"{model.__name__}.{name} has no description: give it Field(description=...)")
        metadata = field_metadata(info)
        nested = next((m for m in metadata if isinstance(m, NestedParams)), None)
        type_name, allowed = _type_of(info)
        path = any(isinstance(m, PathParam) for m in metadata)
        if path and not type_name.startswith("path"):  # pydantic lifted the mark off a bare PathOrName
            type_name = "path or name"
        out.append(
            ParamDoc(
                name=key,
                type=f"mapping ({nested.pipeline} params)" if nested else type_name,
                default=None if info.is_required() else _jsonable(info.get_default(call_default_factory=True)),
                help=info.description,
                required=info.is_required(),
                allowed=allowed,
                constraint=_constraint(metadata),
                path=path,
                params_of=nested.pipeline if nested else "",
            )
        )
        for mark in metadata:
            if isinstance(mark, PathKeys):
                out += [
                    ParamDoc(name=f"{key}.{sub}", type="path or name", default=None, help=text, unset=True, path=True)
                    for sub, text in mark.keys.items()
                ]
        inner = _model_in(info.annotation)
        if inner is not None:  # a nested model is written as dotted keys
            out += describe_params(inner, prefix=f"{key}.")
    return out


# ------------------------------------------------------------------------- types


_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _type_of(info: FieldInfo) -> tuple[str, tuple[Any, ...]]:
    """The field's type as a YAML writer reads it, and its allowed values (Literal
    choices, or an explicit ``json_schema_extra={"allowed": [...]}``)."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    explicit = extra.get("allowed")
    name, allowed = _type_name(info.annotation)
    return name, tuple(explicit) if isinstance(explicit, list) else allowed


def _type_name(annotation: Any) -> tuple[str, tuple[Any, ...]]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        if any(isinstance(m, PathParam) for m in annotation.__metadata__):
            return "path or name", ()
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a) for a in args if a is not type(None)]
        name = " | ".join(p[0] for p in parts)
        allowed = tuple(v for p in parts for v in p[1])
        return (f"{name} | null" if type(None) in args else name), allowed
    if origin is Literal:
        kinds = {_SCALARS.get(type(a), "string") for a in args}
        return " | ".join(sorted(kinds)), tuple(args)
    if origin in (list, tuple, set, frozenset):
        item, allowed = _type_name(args[0]) if args else ("any", ())
        return f"list of {item}", allowed
    if origin is dict or annotation is dict:
        return "mapping", ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping", ()
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation))), ()


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _constraint(metadata: list[Any]) -> str:
    parts = []
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            parts.append(f">= {m.ge}")
        elif isinstance(m, annotated_types.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Le):
            parts.append(f"<= {m.le}")
        elif isinstance(m, annotated_types.Lt):
            parts.append(f"< {m.lt}")
        elif isinstance(m, annotated_types.MinLen):
            parts.append(f"at least {m.min_length} items")
    return ", ".join(parts)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
