"""What a writer may write into, and which files it may delete there.

A writer writes only into an absent or empty folder (prefix), or into a tubelet dataset;
it deletes only files it can prove tubelet wrote in that dataset. The proof:

- **The folder is a tubelet dataset**: its ``meta/info.json`` is a dataset's (it parses
  as one: a release's info.json does not), or its ledger holds entries, or a writer
  claimed it (``meta/writers/<run id>.json``). Anything else that holds files — a home
  folder, another tool's Parquet, a release — is refused with ``NotADatasetError``
  before anything is created there. A dataset whose first run was killed early (only
  its lock and log) is not refused.
- **The run is this dataset's**: every writer claims its run id in ``meta/writers/``
  before it writes a data file (a conditional create; the claim also marks a new folder
  as a dataset). A run listed in ``meta/info.json`` or named by a ledger entry is the
  dataset's too (datasets written before claims existed).
- **The name is tubelet's**: a data file ``data/<table>/<run id>-<n>.parquet`` of such a
  run that no ledger entry names (committed or reverted), and the temporary files
  LocalStorage writes on the way to one of the names a writer commits
  (``.<name>.<8 characters>.tmp``, beside it: a data file of such a run, a ledger
  entry, a claim, ``info.json``, ``plan.json``, ``manifest.yaml``).

Everything else stays, whatever it is called: another run's files, a hidden file of
the user's, ``versions.json``'s temporary file (written under another lock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable

from tubelet.engine.ledger import LEDGER_DIR, LedgerEntry
from tubelet.engine.storage import Storage
from tubelet.schemas.info import SchemaVersionError, info_from_json

INFO_FILE = "meta/info.json"
#: Where writers claim their run ids (one small JSON file each).
WRITERS_DIR = "meta/writers"

#: A run id: ``20250101T120000Z-1a2b3c`` (UTC start time, random hex).
RUN_ID = r"\d{8}T\d{6}Z-[0-9a-f]{6}"
#: Data files tubelet writes: ``<run id>[r<retry>]-<part number>[.<n>].parquet``.
_DATA_FILE = re.compile(rf"^({RUN_ID})(?:r[0-9a-f]{{6}})?-\d+(?:\.\d+)?\.parquet$")
#: A temporary file on the way to ``<name>``: LocalStorage's ``.<name>.<8 hex>.tmp``,
#: ``mkstemp``'s ``.<name>.<8 characters>.tmp`` (info.json), older versions' ``.<name>.tmp``.
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)(?:\.[a-z0-9_]{8})?\.tmp$")
#: Ledger entry names: sequenced (``c000000000001``) or legacy (``<run id>-00001``).
_ENTRY = re.compile(rf"^(?:c\d{{12}}|{RUN_ID}-\d+)\.json$")
#: Files of ``meta/`` a run writes while it holds the write lock.
_RUN_META = frozenset({"info.json", "plan.json", "manifest.yaml"})
#: What a dataset's first run leaves before anything proves it a dataset: its lock, its log.
_STARTING = re.compile(r"^meta/(\.lock|writer\.lock|logs/[^/]+\.jsonl)$")


class NotADatasetError(ValueError):
    """The output holds files and is no tubelet dataset: nothing is written or deleted there."""


def check_output(storage: Storage) -> None:
    """Raise NotADatasetError, naming the output and why, unless a writer may write to
    ``storage``: it is absent or empty, or it is a tubelet dataset. Creates nothing."""
    local = storage.local_path()
    if local is not None and local.exists() and not local.is_dir():
        raise NotADatasetError(f"{storage.root} is a file, not a folder: a dataset is a folder")
    if storage.exists(INFO_FILE):
        _check_info(storage)
        return
    if _claims(storage) or _has_entries(storage):
        return
    foreign = [name for name in storage.top_level() if name != "meta"]
    foreign += [rel for rel in storage.list_files("meta") if not _STARTING.match(rel)]
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (", …" if len(foreign) > 3 else "")
        raise NotADatasetError(
            f"{storage.root} holds files ({shown}) but no meta/info.json and no ledger: it is not a tubelet "
            "dataset, and tubelet writes (and cleans up) only its own; write to a new or empty folder"
        )


def _check_info(storage: Storage) -> None:
    try:
        info_from_json(storage.read_text(INFO_FILE), where=storage.url(INFO_FILE))
    except SchemaVersionError:
        raise  # a dataset, of a newer tubelet: that message says what to do
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise NotADatasetError(
            f"{storage.root}: its meta/info.json is not a tubelet dataset's ({type(error).__name__}: {error}); "
            "it is not a tubelet dataset (a release, or another tool's folder?): write to a new or empty folder"
        ) from None


def _claims(storage: Storage) -> list[str]:
    """Run ids that claimed the dataset (``meta/writers/<run id>.json``)."""
    return [
        rel.rsplit("/", 1)[-1][: -len(".json")]
        for rel in storage.list_files(WRITERS_DIR)
        if rel.count("/") == 2 and rel.endswith(".json") and not rel.rsplit("/", 1)[-1].startswith(".")
    ]


def _has_entries(storage: Storage) -> bool:
    return any(_ENTRY.match(rel.rsplit("/", 1)[-1]) for rel in storage.list_files(LEDGER_DIR))


def claim(storage: Storage, run_id: str, opened_at: str) -> None:
    """Record that run ``run_id`` writes this dataset, before it writes anything else
    (the writer holds the write lock). A second claim of the same run keeps the first."""
    record = {"run_id": run_id, "opened_at": opened_at}
    storage.create(f"{WRITERS_DIR}/{run_id}.json", json.dumps(record).encode())


def owned_runs(storage: Storage, entries: Iterable[LedgerEntry], extra: Collection[str] = ()) -> set[str]:
    """The runs whose files are this dataset's: claimed ones, the ledger's, those ``info.json``
    lists, and ``extra`` (what the caller knows)."""
    runs = set(_claims(storage)) | {e.run_id for e in entries} | set(extra)
    if storage.exists(INFO_FILE):
        info = info_from_json(storage.read_text(INFO_FILE), where=storage.url(INFO_FILE))
        runs |= {r.run_id for r in info.runs}
    return runs


def orphans(storage: Storage, entries: Iterable[LedgerEntry], runs: Collection[str]) -> list[str]:
    """The files of the dataset a writer may delete as leftovers of an interrupted run
    (see the module docstring); ``entries`` are the ledger's and the reverted ones."""
    referenced = {str(info["path"]) for entry in entries for info in entry.files.values()}
    found = []
    for rel in storage.list_files("data") + storage.list_files("meta"):
        folder, _, name = rel.rpartition("/")
        temporary = _TEMPORARY.match(name)
        if temporary:
            if _committable(folder, temporary.group("name"), runs):
                found.append(rel)
        elif _data_file_of(folder, name, runs) and rel not in referenced:
            found.append(rel)
    return found


def _committable(folder: str, name: str, runs: Collection[str]) -> bool:
    """Whether a writer writes ``folder/name`` (so a temporary file of that name is its own)."""
    if folder == "meta":
        return name in _RUN_META
    if folder == LEDGER_DIR:
        return bool(_ENTRY.match(name))
    if folder == WRITERS_DIR:
        return name.endswith(".json") and name[: -len(".json")] in runs
    return _data_file_of(folder, name, runs)


def _data_file_of(folder: str, name: str, runs: Collection[str]) -> bool:
    """``data/<table>/<name>`` is a data file of one of ``runs``."""
    match = _DATA_FILE.match(name)
    return folder.startswith("data/") and folder.count("/") == 1 and match is not None and match.group(1) in runs
