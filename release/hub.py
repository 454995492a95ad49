"""Uploading a written release to the Hugging Face Hub as a dataset repository.

``push_release(folder, "user/name")`` checks the release against its ``SHA256SUMS``, then
``HfApi().create_repo(repo_type="dataset", exist_ok=True)`` and ``upload_folder``. The
token and endpoint are huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``,
``HF_ENDPOINT``); nothing here reads or stores them. With ``HF_HUB_OFFLINE=1`` it fails
before any request, with a message that says so. ``api`` takes any object with
``create_repo`` and ``upload_folder`` (tests inject a recording double: the upload itself
needs the network).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tubelet.release.build import INFO_FILE, verify_checksums

_TRUE = {"1", "ON", "YES", "TRUE"}  # what huggingface_hub reads as set


class HubUploadError(RuntimeError):
    """The release was not uploaded (offline, changed since written, or the Hub refused it)."""


def push_release(folder: str | os.PathLike[str], repo_id: str, *, private: bool = False, api: Any = None) -> str:
    """Upload the release at ``folder`` to the dataset repository ``repo_id``; the commit's URL."""
    folder = Path(folder)
    if not (folder / INFO_FILE).is_file():
        raise HubUploadError(f"{folder} is not a release (no {INFO_FILE})")
    changed = verify_checksums(folder)
    if changed:
        raise HubUploadError(f"{folder} differs from its SHA256SUMS ({', '.join(changed[:5])}): not uploaded")
    version = json.loads((folder / INFO_FILE).read_text(encoding="utf-8")).get("version")
    try:
        hub = api if api is not None else _default_api()
        hub.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = hub.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="dataset",
            commit_message=f"tubelet release {version}",
        )
    except ConnectionError as error:  # huggingface_hub's OfflineModeIsEnabled is one
        raise HubUploadError(f"cannot reach the Hub to upload {repo_id}: {error}") from error
    return str(getattr(commit, "commit_url", None) or commit)


def hub_offline() -> bool:
    """Whether huggingface_hub is told to stay offline (``HF_HUB_OFFLINE``, or ``TRANSFORMERS_OFFLINE``)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


def _default_api() -> Any:
    if hub_offline():
        raise HubUploadError("HF_HUB_OFFLINE is set: the Hub cannot be reached; unset it to upload")
    from huggingface_hub import HfApi

    return HfApi()
