"""``tubelet pipelines``: the pipelines and every parameter they take.

tubelet pipelines [NAME] [--json | --markdown]

Everything printed comes from the params models (``tubelet.pipelines.catalog``);
docs/pipelines.md is ``tubelet pipelines --markdown`` (a test keeps it in sync).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

import yaml

from tubelet.cli.common import EXIT_OK, AddCommand, CommandError
from tubelet.pipelines.catalog import ParamDoc, PipelineDoc, describe_pipeline, pipeline_names
from tubelet.pipelines.params import PATH_RULE
from tubelet.pipelines.registry import UnknownPipelineError

#: The command that writes docs/pipelines.md (the docs test prints it when the file is stale).
REGENERATE = "tubelet pipelines --markdown > docs/pipelines.md"

_NO_MODEL = (
    "declares no params model: its params reach it as written (a mapping), unchecked here and with relative "
    "paths left as they are. Decorate the function with @takes_params(YourModel) "
    "(tubelet.pipelines.params) to list its parameters here and resolve its path parameters."
)


def add_commands(add: AddCommand) -> None:
    """Register ``pipelines``."""
    cmd = add("pipelines", "list the pipelines; with NAME, every parameter with its type, default and help")
    cmd.add_argument("name", nargs="?", help="a pipeline (e.g. track) or your own package.module:function")
    fmt = cmd.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true", help=f"print Markdown (docs/pipelines.md is: {REGENERATE})")
    cmd.set_defaults(func=cmd_pipelines)


def cmd_pipelines(args: argparse.Namespace) -> int:
    """Print the pipelines, or one pipeline's parameters."""
    if args.name is None:
        docs = [describe_pipeline(name) for name in pipeline_names()]
        if args.json:
            print(json.dumps([{"name": d.name, "description": d.summary} for d in docs], indent=2, ensure_ascii=False))
        elif args.markdown:
            print(render_markdown(docs), end="")
        else:
            width = max(len(d.name) for d in docs)
            for d in docs:
                print(f"{d.name.ljust(width)}  {d.summary}")
            print("\n`tubelet pipelines NAME` lists a pipeline's parameters.")
        return EXIT_OK
    doc = _describe(args.name)
    if args.json:
        print(json.dumps(pipeline_json(doc), indent=2, ensure_ascii=False))
    elif args.markdown:
        print("\n".join(_markdown_section(doc, level=1)), end="")
    else:
        print(render_text(doc), end="")
    return EXIT_OK


def _describe(name: str) -> PipelineDoc:
    try:
        return describe_pipeline(name)
    except UnknownPipelineError as error:  # says which names are known, or why it cannot load
        raise CommandError(str(error)) from None


# -------------------------------------------------------------------------- values


def yaml_value(value: Any) -> str:
    """``value`` as a manifest writes it (flow style: ``[a, b]``, ``{}``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def type_label(p: ParamDoc) -> str:
    """The type with its allowed values and constraints: ``lite | full``, ``number, >= 0``."""
    label = p.type
    if p.allowed:
        choices = " | ".join(str(v) for v in p.allowed)
        if p.type.startswith("list of"):
            label = f"list of: {choices}"
        else:
            label = choices + (" | null" if p.type.endswith("| null") else "")
    return f"{label}, {p.constraint}" if p.constraint else label


def default_label(p: ParamDoc) -> str:
    if p.required:
        return "required"
    if p.unset:
        return "unset"
    return yaml_value(p.default)


def pipeline_json(doc: PipelineDoc) -> dict[str, Any]:
    """One pipeline for ``--json``: ``params`` is null for a pipeline without a model."""
    params = None
    if doc.params is not None:
        params = []
        for p in doc.params:
            item: dict[str, Any] = {"name": p.name, "type": p.type}
            if not (p.required or p.unset):
                item["default"] = p.default
            item.update(required=p.required, allowed=list(p.allowed), constraint=p.constraint or None)
            item.update(help=p.help, path=p.path, params_of=p.params_of or None)
            params.append(item)
    return {
        "name": doc.name,
        "description": doc.summary,
        "details": doc.description,
        "params": params,
        "path_rule": PATH_RULE,
    }


# ---------------------------------------------------------------------------- text


def render_text(doc: PipelineDoc) -> str:
    """One pipeline for a terminal: what it does, then every parameter with its help."""
    lines = [f"{doc.name}: {doc.summary}", ""]
    if doc.description:
        lines += [doc.description, ""]
    if doc.params is None:
        return "\n".join([*lines, f"{doc.name} {_NO_MODEL}", ""])
    lines.append("Parameters (under `params:` in a manifest; on the command line --set params.NAME=VALUE):")
    for p in doc.params:
        lines.append(f"  {p.name} = {default_label(p)}  ({type_label(p)})")
        help_text = p.help + (" Path or name: see Paths below." if p.path else "")
        if p.params_of:
            help_text += f" See `tubelet pipelines {p.params_of}`."
        lines += _wrap(help_text, width=92, indent="      ")
    if any(p.path for p in doc.params):
        lines += ["", *_wrap(f"Paths: {PATH_RULE}", width=96)]
    return "\n".join([*lines, ""])


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    # whole words only: a hyphenated name or a path split over two lines cannot be searched for
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    )


# ------------------------------------------------------------------------ markdown


def render_markdown(docs: list[PipelineDoc]) -> str:
    """docs/pipelines.md: every pipeline, every parameter, and a manifest snippet each."""
    lines = [
        "# Pipelines and their parameters",
        "",
        f"Generated from the params models in `pipelines/` by `{REGENERATE}`:",
        "edit the models' `Field(description=...)`, not this file (a test fails when it is out of",
        "date). `tubelet pipelines NAME` prints the same in a terminal, `--json` for programs.",
        "",
        "A manifest names its pipeline in `pipeline:` and sets its parameters under `params:`;",
        "`tubelet run MANIFEST --set params.NAME=VALUE` overrides one (dotted names reach into",
        "mappings: `--set params.track.keyframe_fps=4`). An unknown parameter is an error.",
        "",
        "| Pipeline | What it does |",
        "| --- | --- |",
        *(f"| [{d.name}](#{d.name}) | {_cell(d.summary)} |" for d in docs),
        "",
        "## Paths in params",
        "",
        "Parameters of type *path or name* (model weights, SAM 2 checkpoints and configs, local",
        "model folders) resolve like the other paths of a manifest, from the manifest's folder.",
        "",
        *_wrap(PATH_RULE, width=92),
        "",
        "The resolved value is what every worker receives (process pool, Ray on other nodes) and",
        "what `meta/info.json` records in `params` and its config hash: the same manifest run from",
        "any current directory has the same hash and resumes; moving the files it names (or the",
        "manifest with them) changes it, and `tubelet run` then asks for another output folder.",
        "No parameter is a prompt file today: prompts and templates are given as text or by name.",
        "",
        "## Your own pipeline",
        "",
        "`pipeline: package.module:function` runs your own builder: it takes the params mapping",
        "and returns a `tubelet.engine.pipeline.Pipeline`. Decorate it with",
        "`@takes_params(YourModel)` from `tubelet.pipelines.params` (a pydantic model whose fields",
        "carry `Field(description=...)`, paths typed `PathOrName`): `tubelet pipelines",
        "package.module:function` then lists its parameters, and its path parameters are resolved",
        "as above before it is called. Without it, the params reach it as written.",
        "",
    ]
    for doc in docs:
        lines += _markdown_section(doc, level=2)
    return "\n".join(lines)


def _markdown_section(doc: PipelineDoc, level: int) -> list[str]:
    lines = [f"{'#' * level} {doc.name}", "", f"{doc.summary[:1].upper()}{doc.summary[1:]}", ""]
    if doc.description:
        lines += [doc.description, ""]
    if doc.params is None:
        return [*lines, f"`{doc.name}` {_NO_MODEL}", ""]
    snippet = [f"pipeline: {doc.name}", "params:", *(f"  {k}: {yaml_value(v)}" for k, v in doc.defaults().items())]
    lines += ["Every parameter at its default:", "", "```yaml", *snippet, "```", ""]
    lines += ["| Parameter | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for p in doc.params:
        help_text = p.help + (" Path or name: see [Paths in params](#paths-in-params)." if p.path else "")
        if p.params_of:
            help_text += f" See [{p.params_of}](#{p.params_of})."
        default = f"*{default_label(p)}*" if p.required or p.unset else f"`{_cell(default_label(p))}`"
        lines.append(f"| `{p.name}` | {_cell(type_label(p))} | {default} | {_cell(help_text)} |")
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
