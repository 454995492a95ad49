"""tubelet: turn raw videos into spatio-temporal instruction datasets for video LLMs.

The package's layers are folders at the repository's top level, reached here through
links (see docs/architecture.md, "Package and layers"); each only imports the ones
below it:

    cli                      the ``tubelet`` command
    release | review         releases and diffs | the Label Studio review loop
    preview | evaluation     pictures and reports | metrics against ground truth
    pipelines                named runs assembled from stages
    annotators               what looks at pixels or writes language
    engine                   the runtime: stages, runners, video IO, writer, ledger
    schemas                  the data model
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("tubelet")
except metadata.PackageNotFoundError:  # a bare checkout on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
