"""Loading manifests: YAML → ``RunConfig``, ``--set`` overrides, video lists → tasks.

A manifest is one YAML file = one reproducible run (the model is ``tubelet.engine.config``).
Errors in the manifest itself stop the run with a ``ManifestError`` that names the file,
the line and the key path::

    manifests/x.yaml:7: videos[2].fps: Input should be greater than 0

A bad *row* of a video list does not: it becomes a ``Reject`` (``item = list:line``) and
the other videos run. Relative paths resolve against the manifest's folder for inline
entries and against the list file's folder for list rows.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import posixpath
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ValidationError

from tubelet.engine.config import AnnotationRef, DatasetVideos, RunConfig, VideoEntry, VideoList
from tubelet.engine.dataset import Dataset
from tubelet.engine.task import DatasetRef, VideoTask
from tubelet.schemas import Reject

#: List file formats by file extension.
LIST_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

#: Fields of RunConfig the loader sets, never a manifest.
LOADER_FIELDS = ("base_dir", "manifest_path", "param_dirs")

#: Fields of a video list row, and those whose value is a mapping (merged with defaults).
ROW_FIELDS = tuple(VideoEntry.model_fields)
_DICT_FIELDS = ("annotations", "extra")

Loc = tuple[Any, ...]


class ManifestError(ValueError):
    """A manifest that cannot be run; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- loading


def load_manifest(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RunConfig:
    """Read a manifest file, apply ``key=value`` overrides and validate it.

    Overrides use dotted keys (``params.decode_check=false``, ``ray.num_cpus=2``,
    ``videos.0.fps=25``); values are parsed as YAML scalars. ``base_dir`` is set to the
    manifest's folder, ``manifest_path`` to its absolute path and ``param_dirs`` to the
    current directory for each ``params.*`` override (paths in params given on the
    command line resolve from there, the manifest's own from ``base_dir``). Raises
    ``ManifestError`` naming file, line and key for anything that cannot run.
    """
    name = str(path)
    text = _read_text(name)
    root, data = _parse_yaml(name, text)
    if data is None:
        raise ManifestError([f"{name}:1: the manifest is empty"])
    if not isinstance(data, dict):
        raise ManifestError([f"{name}:{_line(root)}: a manifest is a mapping of keys (pipeline, output, videos, ...)"])
    _stringify_category_keys(data)

    overridden: dict[Loc, str] = {}
    for item in overrides:
        loc = _apply_override(name, data, item)
        overridden[loc] = item
    for key in LOADER_FIELDS:
        if (key,) in overridden:
            raise ManifestError([f"--set {overridden[(key,)]}: {key} is set by the loader, not by a manifest"])
        if key in data:
            raise ManifestError([f"{name}:{_line_of(root, (key,))}: {key}: set by the loader, not in a manifest"])

    base_dir = os.path.dirname(os.path.abspath(name))
    data["base_dir"] = base_dir
    data["manifest_path"] = os.path.abspath(name)
    # a path given on the command line is relative to where the command runs
    data["param_dirs"] = {".".join(map(str, loc[1:])): os.getcwd() for loc in overridden if loc[0] == "params"}
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as error:
        raise ManifestError(_describe_errors(name, root, data, error, overridden)) from None
    _check_lists(name, root, config, overridden)
    config._name, config._overridden = name, overridden
    return config


def _read_text(name: str) -> str:
    """The manifest's text; a file that cannot be read, or is not UTF-8, is a ManifestError."""
    try:
        raw = Path(name).read_bytes()
    except OSError as error:
        raise ManifestError([f"{name}: cannot read manifest: {error.strerror or error}"]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ManifestError(
            [
                f"{name}:{line}: not UTF-8 text: byte 0x{raw[error.start]:02x} at column {column}; save the manifest as UTF-8"
            ]
        ) from None


def manifest_error(config: RunConfig, problems: Sequence[tuple[Loc, str]]) -> ManifestError:
    """A ManifestError for problems found after loading (the pipeline refusing its name or
    a parameter): each ``(key path, message)`` located in ``config``'s manifest file (read
    again for its lines) or at the ``--set`` option that gave it, like the loader's own."""
    name = config._name or config.manifest_path or config.name or "manifest"
    root = _compose_file(config.manifest_path)
    located: dict[str, int] = {}
    for loc, message in problems:
        where = _where(name, root, loc, config._overridden) if root is not None else name
        located.setdefault(f"{where}: {_format_loc(loc)}: {message}", _line_of(root, loc))
    return ManifestError(sorted(located, key=located.__getitem__))


def _compose_file(path: str | None) -> yaml.Node | None:
    """The YAML node tree of the manifest at ``path`` (None if it cannot be read)."""
    if not path:
        return None
    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _parse_yaml(name: str, text: str) -> tuple[yaml.Node | None, Any]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context = getattr(error, "context", None)
        what = f"{context}: {problem}" if context else problem
        raise ManifestError([f"{name}:{line}: YAML syntax error: {what}"]) from None
    if root is not None:
        duplicate = _find_duplicate_key(root)
        if duplicate:
            key, line = duplicate
            raise ManifestError([f"{name}:{line}: duplicate key {key!r}"])
    return root, data


def _find_duplicate_key(node: yaml.Node) -> tuple[str, int] | None:
    """PyYAML silently keeps the last of two equal keys; a manifest must not rely on that."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    return key.value, _line(key)
                seen.add(key.value)
            found = _find_duplicate_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _find_duplicate_key(item)
            if found:
                return found
    return None


def _stringify_category_keys(data: dict[str, Any]) -> None:
    """YAML reads ``1: person`` with an int key; category maps are keyed by strings."""

    def fix(entry: Any) -> None:
        if isinstance(entry, dict):
            for holder in (entry, entry.get("defaults")):
                ann = holder.get("annotations") if isinstance(holder, dict) else None
                if isinstance(ann, dict) and isinstance(ann.get("categories"), dict):
                    ann["categories"] = {_scalar_key(k): v for k, v in ann["categories"].items()}

    videos = data.get("videos")
    for entry in videos if isinstance(videos, list) else []:
        fix(entry)


def _scalar_key(key: Any) -> Any:
    return str(key) if isinstance(key, (int, float)) and not isinstance(key, bool) else key


def _apply_override(name: str, data: dict[str, Any], item: str) -> Loc:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ManifestError([f"--set {item}: expected key=value (e.g. shard_size=8)"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not a YAML scalar: take the text as written
    parts: list[Any] = key.split(".")
    node: Any = data
    loc: list[Any] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ManifestError([f"--set {item}: {_format_loc(tuple(loc))} has no item {part}"])
            part = int(part)
        elif not isinstance(node, dict):
            raise ManifestError([f"--set {item}: {_format_loc(tuple(loc))} is not a mapping"])
        loc.append(part)
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[part]
    return tuple(loc)


def _check_lists(name: str, root: yaml.Node | None, config: RunConfig, overridden: dict[Loc, str]) -> None:
    """Problems with a list file as a whole (missing, unknown format, bad defaults) stop the run."""
    problems = []
    for i, entry in enumerate(config.videos):
        if not isinstance(entry, VideoList):
            continue
        where = _where(name, root, ("videos", i, "path"), overridden)
        path = _resolve(config.base_dir, entry.path)
        if not _is_file(path):
            problems.append(f"{where}: videos[{i}].path: list file not found: {path}")
        elif entry.format is None and _list_format(entry) is None:
            problems.append(
                f"{where}: videos[{i}].path: cannot tell the list format from {entry.path!r}; "
                f"set format: jsonl|csv|parquet"
            )
        unknown = sorted(set(entry.defaults) - set(ROW_FIELDS))
        if unknown:
            where = _where(name, root, ("videos", i, "defaults", unknown[0]), overridden)
            problems.append(
                f"{where}: videos[{i}].defaults.{unknown[0]}: unknown field"
                f"{_suggest(unknown[0], ROW_FIELDS)} (expected one of: {', '.join(ROW_FIELDS)})"
            )
    if problems:
        raise ManifestError(problems)


# ------------------------------------------------------------------ error locations


def _describe_errors(
    name: str, root: yaml.Node | None, data: dict[str, Any], error: ValidationError, overridden: dict[Loc, str]
) -> list[str]:
    problems: dict[str, int] = {}  # message -> line, for ordering as in the file
    for err in error.errors():
        loc = _strip_union_tag(tuple(err["loc"]), data)
        if loc is None:
            continue  # the error of the union member this entry is not
        message = _message(err, loc, data)
        where = _where(name, root, loc, overridden)
        problems.setdefault(f"{where}: {_format_loc(loc)}: {message}", _line_of(root, loc))
    return sorted(problems, key=problems.__getitem__) or [f"{name}: {error}"]


def _strip_union_tag(loc: Loc, data: dict[str, Any]) -> Loc | None:
    """``videos[i]`` is ``VideoEntry | VideoList | DatasetVideos``: keep the errors of the one it means to be."""
    members = ("VideoEntry", "VideoList", "DatasetVideos")
    if len(loc) >= 3 and loc[0] == "videos" and isinstance(loc[1], int) and loc[2] in members:
        if loc[2] != _meant_member(data, loc[1]):
            return None
        return loc[:2] + loc[3:]
    return loc


def _meant_member(data: dict[str, Any], index: int) -> str:
    """A video entry with ``dataset`` is a dataset's videos, one with ``path`` and no
    ``uri`` a list file; anything else a video."""
    videos = data.get("videos")
    entry = videos[index] if isinstance(videos, list) and index < len(videos) else None
    if isinstance(entry, dict) and "dataset" in entry and "uri" not in entry:
        return "DatasetVideos"
    return "VideoList" if isinstance(entry, dict) and "path" in entry and "uri" not in entry else "VideoEntry"


def _message(err: Mapping[str, Any], loc: Loc, data: dict[str, Any] | None = None) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(loc[:-1], data or {})
        key = str(loc[-1])
        if not allowed:
            return "unknown key"
        return f"unknown key{_suggest(key, allowed)} (expected one of: {', '.join(allowed)})"
    if kind == "missing":
        return "required key is missing"
    if kind == "model_type" and len(loc) == 2 and loc[0] == "videos":
        return "each video is a mapping with `uri` (a video), `path` (a list file) or `dataset` (a dataset's videos)"
    return str(err["msg"])


def _fields_at(loc: Loc, data: dict[str, Any]) -> list[str]:
    """Names of the fields the model at ``loc`` accepts (for 'unknown key' hints)."""
    model: Any = RunConfig
    for i, part in enumerate(loc):
        if isinstance(part, int):
            if loc[:i] == ("videos",):
                model = {"VideoList": VideoList, "DatasetVideos": DatasetVideos}.get(
                    _meant_member(data, part), VideoEntry
                )
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _model_in(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f for f in model.model_fields if not (model is RunConfig and f in LOADER_FIELDS)]
    return []


def _model_in(annotation: Any) -> Any:
    # AnnotationRef | None, RayOptions ...: the first BaseModel among the type's arguments
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _where(name: str, root: yaml.Node | None, loc: Loc, overridden: dict[Loc, str]) -> str:
    for prefix, item in overridden.items():
        if loc[: len(prefix)] == prefix:
            return f"{name}: --set {item}"
    return f"{name}:{_line_of(root, loc)}"


def _line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the YAML node at ``loc``, or of its nearest ancestor that exists."""
    if root is None:
        return 1
    node = root
    line = _line(root)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None
            )
            if match is None:
                return line
            line, node = _line(match[0]), match[1]  # the key's line: where the reader looks
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            return line
    return line


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# -------------------------------------------------------------------------- expansion


@dataclass
class _Row:
    """One video as written: its fields, where it came from, what paths resolve against."""

    fields: dict[str, Any]
    item: str  # "<file>:<line>", for rejects
    base_dir: str  # the folder of the file the row is written in
    from_defaults: frozenset[str] = frozenset()  # fields that came from the manifest's defaults


def expand_videos(config: RunConfig) -> tuple[list[VideoTask], list[Reject]]:
    """Every task and every rejected row of the manifest, in manifest order (as lists:
    ``iter_videos`` streams them)."""
    tasks: list[VideoTask] = []
    rejects: list[Reject] = []
    for item in iter_videos(config):
        (rejects if isinstance(item, Reject) else tasks).append(item)  # type: ignore[arg-type]
    return tasks, rejects


@dataclass
class Duplicates:
    """The rows of a manifest that repeat an earlier video id, by their position among the
    tasks, with the reject reason. A first pass finds them (remembering every id once);
    a later pass over the same manifest reuses them and remembers nothing."""

    reasons: dict[int, str] = field(default_factory=dict)
    known: bool = False


def iter_videos(config: RunConfig, duplicates: Duplicates | None = None) -> Iterator[VideoTask | Reject]:
    """The manifest's inline entries and list files as tasks, in manifest order, read as
    they are consumed (a list of a million rows is never in memory).

    A row that cannot become a task (invalid JSON, a bad field, no uri, a duplicate
    video id, an unreadable list) is a ``Reject(stage="manifest")`` whose ``item`` is
    ``<file>:<line>``; it never stops the other videos. ``duplicates`` records the
    duplicate rows (first pass) or supplies them (once ``known``: later passes).
    """
    first_seen: dict[str, str] = {}
    reuse = duplicates is not None and duplicates.known
    position = -1
    manifest_name = _manifest_label(config)
    lines = _inline_lines(config)

    for i, entry in enumerate(config.videos):
        if isinstance(entry, VideoEntry):
            item = f"{manifest_name}:{lines.get(i, f'videos[{i}]')}"
            rows: Iterator[_Row | Reject | VideoTask] = iter(
                [_Row(entry.model_dump(exclude_unset=True), item, config.base_dir)]
            )
        elif isinstance(entry, DatasetVideos):
            rows = _dataset_videos(config, entry)
        else:
            rows = _list_rows(config, entry)
        for row in rows:
            if isinstance(row, Reject):
                yield row
                continue
            if isinstance(row, VideoTask):
                task, item = row, f"{entry.dataset}:{row.video_id}"  # type: ignore[union-attr]
            else:
                task_or_reason, item = _row_to_task(row, config.base_dir), row.item
                if isinstance(task_or_reason, str):
                    yield Reject(item=item, stage="manifest", reason=task_or_reason)
                    continue
                task = task_or_reason
            position += 1
            if reuse:
                reason = duplicates.reasons.get(position)  # type: ignore[union-attr]
            elif task.video_id in first_seen:
                reason = f"duplicate video_id {task.video_id!r} (first at {first_seen[task.video_id]})"
                if duplicates is not None:
                    duplicates.reasons[position] = reason
            else:
                first_seen[task.video_id], reason = item, None
            if reason is not None:
                yield Reject(item=item, stage="manifest", reason=reason)
                continue
            yield task
    if duplicates is not None:
        duplicates.known = True


def _manifest_label(config: RunConfig) -> str:
    # The file name only: a reject's item is also its ledger key, which must not
    # depend on the folder the run was started from.
    return Path(config.manifest_path).name if config.manifest_path else "manifest"


def _inline_lines(config: RunConfig) -> dict[int, int]:
    """Line of each inline video entry in the manifest file (best effort, for rejects)."""
    root = _compose_file(config.manifest_path)
    videos = None
    if isinstance(root, yaml.MappingNode):
        videos = next((v for k, v in root.value if getattr(k, "value", None) == "videos"), None)
    if not isinstance(videos, yaml.SequenceNode):
        return {}
    return {i: _line(node) for i, node in enumerate(videos.value)}


def _dataset_videos(config: RunConfig, entry: DatasetVideos) -> Iterator[VideoTask | Reject]:
    """The videos of an existing dataset as tasks, read in batches (their ``videos`` rows:
    uri, the fps if it was set by hand, source, split, licence, extra)."""
    location = _resolve(config.base_dir, entry.dataset)
    try:
        con = Dataset(location, version=entry.version).connect()
        query = "SELECT video_id, uri, fps, fps_source, source, split, licence, extra FROM videos"
        relation = con.sql(query + (f" WHERE {entry.where}" if entry.where else "") + " ORDER BY video_id")
        batches = relation.to_arrow_reader(4096)
    except Exception as error:  # noqa: BLE001 - a missing dataset, a bad version or condition: one reject
        yield Reject(item=entry.dataset, stage="manifest", reason=f"cannot read the dataset's videos: {error}")
        return
    for batch in batches:
        for row in batch.to_pylist():
            yield VideoTask(
                origin=DatasetRef(location, entry.version),
                video_id=row["video_id"],
                uri=row["uri"],
                fps=row["fps"] if row["fps_source"] == "manifest" else None,
                source=row["source"],
                split=row["split"],
                licence=row["licence"],
                extra=json.loads(row["extra"]) if isinstance(row["extra"], str) else dict(row["extra"] or {}),
            )


def _is_file(path: str) -> bool:
    if _is_url(path):
        fs, key = fsspec.core.url_to_fs(path)
        return bool(fs.isfile(key))
    return os.path.isfile(path)


def _list_format(entry: VideoList) -> str | None:
    return entry.format or LIST_FORMATS.get(Path(entry.path).suffix.lower())


def _list_rows(config: RunConfig, entry: VideoList) -> Iterator[_Row | Reject]:
    path = _resolve(config.base_dir, entry.path)
    label = entry.path  # as written in the manifest: stable wherever the run starts from
    fmt = _list_format(entry)
    list_dir = posixpath.dirname(path) if _is_url(path) else os.path.dirname(path)
    readers = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}
    if fmt not in readers:
        yield Reject(item=label, stage="manifest", reason=f"unknown list format for {entry.path!r}")
        return
    try:
        for line, fields in readers[fmt](path):
            item = f"{label}:{line}"
            fields = _unflatten(fields) if isinstance(fields, dict) else fields
            if isinstance(fields, str):
                yield Reject(item=item, stage="manifest", reason=fields)
                continue
            merged, from_defaults = _apply_defaults(fields, entry.defaults)
            yield _Row(merged, item, list_dir, from_defaults)
    except Exception as error:  # noqa: BLE001 - OSError, csv.Error, pyarrow's own errors ...
        # the file as a whole is unreadable: one reject, the rest of the manifest runs
        yield Reject(item=label, stage="manifest", reason=f"cannot read list: {type(error).__name__}: {error}")


def _open_text(path: str) -> Any:
    """A list file opened for reading text: local, or any fsspec URL (streamed)."""
    if _is_url(path):
        return fsspec.open(path, "rt", encoding="utf-8-sig", newline="").open()
    return open(path, encoding="utf-8-sig", newline="")  # -sig: tolerate a byte-order mark


def _jsonl_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with _open_text(path) as f:
        for number, text in enumerate(f, start=1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                yield number, f"invalid JSON: {error.msg} (column {error.colno})"
                continue
            yield number, row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"


def _csv_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with _open_text(path) as f:  # spreadsheets often write a byte-order mark
        reader = csv.reader(f)
        header: list[str] | None = None
        start = 1
        for cells in reader:
            line, start = start, reader.line_num + 1  # a quoted cell may span lines: report the first
            if header is None:
                header = [h.strip() for h in cells]
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield line, f"expected {len(header)} columns, got {len(cells)}"
                continue
            yield line, {h: c for h, c in zip(header, cells) if c.strip() != ""}


def _parquet_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    source = fsspec.open(path, "rb").open() if _is_url(path) else path
    number = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=4096):  # one batch in memory at a time
        for row in batch.to_pylist():
            number += 1
            yield number, {k: v for k, v in row.items() if v is not None}


def _unflatten(row: dict[str, Any]) -> dict[str, Any] | str:
    """``annotations.path`` columns → nested dicts; JSON strings in mapping columns → dicts.

    Returns the reason instead when the columns contradict each other.
    """
    out: dict[str, Any] = {}
    for key in sorted(row, key=lambda k: k.count(".")):  # "annotations" before "annotations.path"
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node[part] = _maybe_json(node.get(part, {}))
            if not isinstance(node[part], dict):
                return f"column {key!r} conflicts with column {part!r}"
            node = node[part]
        node[parts[-1]] = row[key]
    for key in _DICT_FIELDS:
        if key in out:
            out[key] = _maybe_json(out[key])
    ann = out.get("annotations")
    if isinstance(ann, dict) and "categories" in ann:
        ann["categories"] = _maybe_json(ann["categories"])
    return out


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # left for validation to report
    return value


def _apply_defaults(row: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """Defaults fill the fields a row does not set; mapping fields merge key by key."""
    merged = dict(row)
    from_defaults: set[str] = set()
    for key, value in defaults.items():
        if merged.get(key) is None:
            merged[key] = value
            from_defaults.add(key)
        elif key in _DICT_FIELDS and isinstance(value, dict) and isinstance(merged[key], dict):
            inner = dict(value)
            inner.update(merged[key])
            merged[key] = inner
            from_defaults.update(f"{key}.{k}" for k in value if k not in merged[key] or merged[key][k] is None)
    return merged, frozenset(from_defaults)


def _row_to_task(row: _Row, manifest_dir: str) -> VideoTask | str:
    """A validated task, or the one-line reason the row is rejected."""
    fields = row.fields
    ann = fields.get("annotations")
    if isinstance(ann, dict) and isinstance(ann.get("categories"), dict):
        fields = {
            **fields,
            "annotations": {**ann, "categories": {_scalar_key(k): v for k, v in ann["categories"].items()}},
        }
    try:
        entry = VideoEntry.model_validate(fields)
    except ValidationError as error:
        return "; ".join(
            f"{_format_loc(tuple(e['loc']))}: {_message(e, ('videos', 0, *e['loc']))}" for e in error.errors()
        )
    if not entry.uri.strip():
        return "uri: must not be empty"
    if entry.video_id is not None and not entry.video_id.strip():
        return "video_id: must not be empty"

    # Paths given by the manifest's defaults were written relative to the manifest.
    uri_base = manifest_dir if "uri" in row.from_defaults else row.base_dir
    annotations: dict[str, Any] | None = None
    if entry.annotations is not None:
        ann_base = manifest_dir if {"annotations", "annotations.path"} & row.from_defaults else row.base_dir
        annotations = _annotation_dict(entry.annotations, ann_base)
    return VideoTask(
        video_id=entry.video_id or stable_video_id(entry.uri),
        uri=_resolve(uri_base, entry.uri),
        fps=entry.fps,
        source=entry.source,
        split=entry.split,
        licence=entry.licence,
        annotations=annotations,
        extra=dict(entry.extra),
    )


def _annotation_dict(ref: AnnotationRef, base_dir: str) -> dict[str, Any]:
    out = ref.model_dump()
    out["path"] = _resolve(base_dir, ref.path)
    return out


# ------------------------------------------------------------------------ ids and paths

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def stable_video_id(uri: str) -> str:
    """``<sanitized stem>-<first 8 hex of sha1(uri)>`` for the uri as written.

    A relative uri is hashed as written (relative to its manifest or list file), so ids
    stay the same when the manifest and its videos move together.
    """
    written = _normalize_written(uri)
    stem = _UNSAFE.sub("-", _stem(written)).strip("-.") or "video"
    digest = hashlib.sha1(written.encode("utf-8")).hexdigest()[:8]
    return f"{stem[:64]}-{digest}"


def _normalize_written(uri: str) -> str:
    uri = uri.strip()
    if _is_url(uri):
        return uri
    # "./a.mp4", "a.mp4" and "a//b/../a.mp4" name the same file; hash one spelling
    normalized = posixpath.normpath(uri.replace("\\", "/"))
    return normalized


def _stem(uri: str) -> str:
    name = posixpath.basename(uri.rstrip("/")) or uri
    stem, ext = posixpath.splitext(name)
    return stem if ext else name


def _is_url(uri: str) -> bool:
    return "://" in uri


def _resolve(base_dir: str, path: str) -> str:
    """``path`` resolved against ``base_dir`` (absolute paths and URLs are left alone; a
    relative path in a list on object storage is relative to the list's URL)."""
    path = path.strip()
    if _is_url(path):
        return path
    if _is_url(base_dir):
        scheme, rest = base_dir.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, path))}"
    return os.path.abspath(os.path.join(base_dir, os.path.expanduser(path)))


def resolve_location(base_dir: str, location: str) -> str:
    """A manifest's ``output``, a ``uri`` or a list path, resolved like the manifest does."""
    return _resolve(base_dir, location)
