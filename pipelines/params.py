"""A pipeline's ``params``: validation, which of them are paths, and how paths resolve.

Each pipeline declares its params as a pydantic model whose fields carry their help
(``Field(description=...)``): ``tubelet pipelines NAME`` and docs/pipelines.md are made
from these models, and validation uses them.

Paths in params resolve like every other path of a manifest, from the manifest's folder;
a value given with ``--set`` on the command line resolves from the current directory.
Many of these values may also be model *names* (``yolov8n.pt`` for Ultralytics,
``IDEA-Research/grounding-dino-tiny`` for transformers), so one rule, ``PATH_RULE``,
decides which a value is. A field is marked as a path with ``PathOrName``; a mapping
whose keys include paths (``tracker_options.checkpoint``) with ``PathKeys``; a mapping
holding another pipeline's params (strefer's ``track``) with ``NestedParams``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from tubelet.engine.config import RunConfig
from tubelet.engine.storage import is_url

P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

#: The rule for every path parameter, as the help and docs/pipelines.md state it.
PATH_RULE = (
    "A value that names an existing file or folder relative to the manifest's folder (or an absolute path) "
    "is replaced by its absolute path; a value given with --set on the command line resolves from the "
    "current directory instead. A value written as a path (starting with /, ./, ../ or ~, or with a folder "
    "and a weights suffix such as .pt, .pth, .safetensors, .onnx, .tflite) that does not exist is an error "
    "naming the parameter and the path tried. Anything else is a model name, passed on as written (the "
    "library finds it: Ultralytics' weights, the Hugging Face cache, a config packaged with SAM 2). "
    "URLs (s3://, https://) stay as they are."
)

#: The help of ``decode_check``, a parameter of every pipeline that probes its videos.
DECODE_CHECK = "Decode the first and last frame of every video when probing it, to catch truncated files."

#: Suffixes of model weight files: with a folder part, a value ending so is a path, never a name.
WEIGHT_SUFFIXES = frozenset(
    {".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".onnx", ".tflite", ".engine", ".torchscript", ".mlmodel"}
)


@dataclass(frozen=True)
class PathParam:
    """Marks a string parameter as a path or a model name (resolved by ``PATH_RULE``)."""


#: A string parameter that is a local path (resolved from the manifest's folder) or a name.
PathOrName = Annotated[str, PathParam()]


@dataclass(frozen=True)
class PathKeys:
    """Marks a mapping parameter some of whose keys are paths or names: ``keys`` maps each
    such key to its help. With ``when=(field, value)`` they are paths only while that
    field of the same params has that value (an OpenAI-compatible server's ``model`` is
    always a name, a transformers ``model`` may be a local folder)."""

    keys: Mapping[str, str]
    when: tuple[str, str] | None = None


@dataclass(frozen=True)
class NestedParams:
    """Marks a mapping parameter that holds another pipeline's params (strefer's ``track``)."""

    model: type[BaseModel]
    pipeline: str


def takes_params(model: type[BaseModel]) -> Callable[[F], F]:
    """Declare the params model of a pipeline builder, registered or your own
    (``module:function``): ``tubelet pipelines`` then lists its parameters, and its path
    parameters are resolved before the builder is called."""

    def mark(builder: F) -> F:
        builder.params_model = model  # type: ignore[attr-defined]
        return builder

    return mark


def params_model_of(builder: Callable[..., Any]) -> type[BaseModel] | None:
    """The model ``takes_params`` declared for ``builder``, if any."""
    model = getattr(builder, "params_model", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


Loc = tuple[str | int, ...]


class ParamsError(ValueError):
    """Bad ``params`` of a pipeline: ``problems`` holds ``(key path, message)`` pairs, so a
    manifest loader can point at each key's line; the message lists them all."""

    def __init__(self, pipeline: str, problems: Sequence[tuple[Loc, str]]) -> None:
        self.pipeline = pipeline
        self.problems = list(problems)
        listed = "; ".join(f"{dotted(loc) or '<params>'}: {message}" for loc, message in self.problems)
        super().__init__(f"{pipeline}: bad params: {listed}")

    def under(self, key: str) -> ParamsError:
        """The same problems, found in the params nested under ``key`` (strefer's ``track``)."""
        return ParamsError(self.pipeline, [((key, *loc), message) for loc, message in self.problems])


def dotted(loc: Loc) -> str:
    """``("track", "weights")`` -> ``"track.weights"``."""
    return ".".join(str(part) for part in loc)


def parse_params(model: type[P], params: dict[str, Any], pipeline: str) -> P:
    """``params`` validated by ``model``; ParamsError naming each bad parameter otherwise."""
    try:
        return model.model_validate(params)
    except ValidationError as error:
        raise ParamsError(pipeline, _problems(error, model)) from None


def check_params(model: type[BaseModel], params: Mapping[str, Any], prefix: Loc = ()) -> list[tuple[Loc, str]]:
    """Every problem of ``params`` against ``model``, those of params nested under a
    ``NestedParams`` field (strefer's ``track``) included, as ``(key path, message)``."""
    try:
        model.model_validate(params)
        problems: list[tuple[Loc, str]] = []
    except ValidationError as error:
        problems = _problems(error, model, prefix)
    for name, info in model.model_fields.items():
        value = params.get(name)
        for mark in field_metadata(info):
            if isinstance(mark, NestedParams) and isinstance(value, Mapping):
                problems += check_params(mark.model, value, (*prefix, name))
    return problems


def _problems(error: ValidationError, model: type[BaseModel], prefix: Loc = ()) -> list[tuple[Loc, str]]:
    return [((*prefix, *e["loc"]), _message(e, model)) for e in error.errors()]


def _message(error: Any, model: type[BaseModel]) -> str:
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    key = str(error["loc"][-1])
    allowed = list(model.model_fields) if len(error["loc"]) == 1 else []
    return unknown_key("unknown key", key, allowed)


def unknown_key(what: str, key: str, allowed: Sequence[str]) -> str:
    """``what`` for ``key``, with the closest allowed name and the list of them."""
    if not allowed:
        return what
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{what}{hint} (expected one of: {', '.join(allowed)})"


def option_names(target: type) -> str:
    """The keyword options ``target`` (a dataclass, or a class by its ``__init__``) accepts,
    comma-separated: the help of a free-form mapping lists them from the code itself."""
    return ", ".join(_options_of(target))


def _options_of(target: type) -> list[str]:
    if dataclasses.is_dataclass(target):
        return [f.name for f in dataclasses.fields(target) if f.init and f.name != "resources"]
    return [n for n in inspect.signature(target.__init__).parameters if n != "self"]


def option_problems(key: str, options: Mapping[str, Any], target: type, what: str) -> list[tuple[Loc, str]]:
    """The keys of the free-form mapping ``key`` that ``target`` does not take as keyword
    options — what a stage would pass it in ``setup()``, on a worker, once the run has
    started — each as ``(key path, message)`` naming what ``target`` takes."""
    allowed = _options_of(target)
    return [
        ((key, name), unknown_key(f"unknown option of {what}", name, allowed))
        for name in options
        if name not in allowed
    ]


# ---------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class ParamPaths:
    """Where the relative paths of a run's params resolve from: ``base_dir`` (the
    manifest's folder), except under the keys of ``overrides`` (dotted keys given with
    ``--set``, mapped to the folder they were given in: the current directory)."""

    base_dir: str = "."
    overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: RunConfig) -> ParamPaths:
        """The folders a loaded manifest's params resolve from."""
        return cls(base_dir=config.base_dir, overrides=dict(config.param_dirs))

    def folder_for(self, key: str) -> tuple[str, bool]:
        """The folder ``key``'s value resolves from, and whether it came from ``--set``."""
        given = [k for k in self.overrides if k == "" or key == k or key.startswith(k + ".")]
        if given:
            return self.overrides[max(given, key=len)], True
        return self.base_dir, False


def looks_like_path(value: str) -> bool:
    """Whether ``value`` is written as a path rather than a name (see ``PATH_RULE``)."""
    text = value.strip()
    if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
        return True
    head, _, name = text.replace("\\", "/").rpartition("/")
    return bool(head) and os.path.splitext(name)[1].lower() in WEIGHT_SUFFIXES


class MissingPathError(ValueError):
    """A parameter written as a path names nothing: ``key``, and ``reason`` (the path tried)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


def resolve_path_value(value: str, folder: str, key: str, from_command_line: bool = False) -> str:
    """``value`` by ``PATH_RULE``: an absolute path when it exists from ``folder``, as
    written when it is a name or a URL. Raises MissingPathError (a ValueError) naming
    ``key`` and the path tried when the value is written as a path and nothing is there."""
    text = value.strip()
    if not text or is_url(text):
        return value
    candidate = os.path.abspath(os.path.join(folder, os.path.expanduser(text)))
    if os.path.exists(candidate):
        return candidate
    if looks_like_path(text):
        origin = (
            "given with --set: relative to the current directory"
            if from_command_line
            else "relative to the manifest's folder"
        )
        raise MissingPathError(key, f"no such file or folder: {candidate} ({origin})")
    return value


def resolve_paths(
    model: type[BaseModel], params: Mapping[str, Any], paths: ParamPaths, pipeline: str = "params"
) -> dict[str, Any]:
    """A copy of ``params`` whose path parameters (by ``model``'s marks) are resolved.

    Only values the params set are touched (a default is a name, or its library's own);
    a value of the wrong type is left for validation to report. Every path that names
    nothing is reported at once: ParamsError of ``pipeline``.
    """
    missing: list[MissingPathError] = []
    out = _resolve_into(model, params, paths, "", missing)
    if missing:
        raise ParamsError(pipeline, [(tuple(m.key.split(".")), m.reason) for m in missing])
    return out


def _resolve_into(
    model: type[BaseModel], params: Mapping[str, Any], paths: ParamPaths, prefix: str, missing: list[MissingPathError]
) -> dict[str, Any]:
    def resolve(value: str, key: str) -> str:
        try:
            return resolve_path_value(value, *_folder(paths, key))
        except MissingPathError as error:
            missing.append(error)
            return value

    out = dict(params)
    for name, info in model.model_fields.items():
        if name not in out:
            continue
        key = f"{prefix}{name}"
        value = out[name]
        for mark in field_metadata(info):
            if isinstance(mark, PathParam) and isinstance(value, str):
                out[name] = resolve(value, key)
            elif isinstance(mark, PathKeys) and isinstance(value, Mapping) and _applies(mark, model, params):
                out[name] = {
                    k: resolve(v, f"{key}.{k}") if k in mark.keys and isinstance(v, str) else v
                    for k, v in value.items()
                }
            elif isinstance(mark, NestedParams) and isinstance(value, Mapping):
                out[name] = _resolve_into(mark.model, value, paths, f"{key}.", missing)
    return out


def _folder(paths: ParamPaths, key: str) -> tuple[str, str, bool]:
    folder, given = paths.folder_for(key)
    return folder, key, given


def _applies(mark: PathKeys, model: type[BaseModel], params: Mapping[str, Any]) -> bool:
    if mark.when is None:
        return True
    field_name, value = mark.when
    return params.get(field_name, model.model_fields[field_name].default) == value


def field_metadata(info: FieldInfo) -> list[Any]:
    """A field's annotation metadata (marks, constraints): what pydantic lifted, and what
    sits inside an ``Annotated[...] | None``, which pydantic leaves in the annotation."""
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        if typing.get_origin(arg) is Annotated:
            found += list(arg.__metadata__)
    return found
