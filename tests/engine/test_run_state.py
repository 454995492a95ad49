"""A run's state is what happened: a "running" run whose driver is gone is "crashed"
(issue 14, item 6); the driver's heartbeat keeps info.json current while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from tubelet.engine.process_identity import ProcessIdentity, process_started
from tubelet.engine.run_state import STALE_S, RunRecord, mark_crashed, run_state
from tubelet.engine.storage import open_storage
from tubelet.schemas.info import DatasetInfo, RunInfo, info_from_json


def running(driver: ProcessIdentity | None, heartbeat_age_s: float | None = 0.0) -> RunInfo:
    beat = None
    if heartbeat_age_s is not None:
        beat = (datetime.now(timezone.utc) - timedelta(seconds=heartbeat_age_s)).isoformat(timespec="seconds")
    return RunInfo(
        run_id="r1", started_at="2026-01-01T00:00:00+00:00", driver=driver and driver.to_dict(), heartbeat_at=beat
    )


def dead_process() -> ProcessIdentity:
    """A process of this machine that ran and is gone (its pid recorded while it lived)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    me = ProcessIdentity.current()
    identity = ProcessIdentity(me.host, me.boot_id, proc.pid, process_started(proc.pid))
    proc.communicate(b"")
    return identity


def test_a_run_whose_driver_lives_is_running() -> None:
    state = run_state(running(ProcessIdentity.current()))
    assert state.status == "running" and not state.ended_badly
    assert "driver pid" in state.detail


def test_a_run_whose_driver_is_gone_crashed() -> None:
    state = run_state(running(dead_process()))
    assert state.status == "crashed" and state.ended_badly
    assert "is gone" in state.detail and "run the manifest again to resume" in state.detail


def test_a_reused_pid_is_not_the_driver() -> None:
    me = ProcessIdentity.current()
    impostor = ProcessIdentity(me.host, me.boot_id, me.pid, "1")  # our pid, another start time
    assert run_state(running(impostor)).status == "crashed"


def test_a_driver_elsewhere_is_judged_by_its_heartbeat() -> None:
    elsewhere = ProcessIdentity("another-host", "another-boot", 1234, "99")
    assert run_state(running(elsewhere, heartbeat_age_s=5)).status == "running"
    state = run_state(running(elsewhere, heartbeat_age_s=STALE_S + 60))
    assert state.status == "crashed" and "silent" in state.detail
    assert run_state(running(elsewhere, heartbeat_age_s=None)).status == "crashed"


def test_an_ended_run_is_what_it_recorded() -> None:
    run = running(dead_process())
    run.status, run.error = "failed", "StageSetupError: no weights"
    assert (run_state(run).status, run_state(run).detail) == ("failed", "StageSetupError: no weights")


def test_runs_recorded_before_drivers_were_kept_stay_running_but_say_so() -> None:
    state = run_state(running(None, heartbeat_age_s=None))
    assert state.status == "running" and "unknown" in state.detail


def test_mark_crashed_records_every_run_left_running() -> None:
    info = DatasetInfo(pipeline="p", config_hash="h", runs=[running(dead_process()), running(None)])
    info.runs.append(RunInfo(run_id="r3", started_at="x", status="finished"))
    crashed = mark_crashed(info, found_by="r4")
    assert [r.status for r in info.runs] == ["crashed", "crashed", "finished"] and len(crashed) == 2
    assert info.runs[0].error.startswith("the run ended without recording how (found by run r4)")


def test_the_heartbeat_refreshes_info_json_until_stopped(tmp_path) -> None:
    storage = open_storage(str(tmp_path))
    run = RunInfo(run_id="r1", started_at="x")
    info = DatasetInfo(pipeline="p", config_hash="h", runs=[run])
    record = RunRecord(storage, info, run, interval=0.2)
    record.save()
    first = info_from_json(storage.read_text("meta/info.json")).runs[0]
    assert first.driver == ProcessIdentity.current().to_dict() and first.heartbeat_at
    with record:
        time.sleep(1.5)  # heartbeat_at has a one-second resolution
    beat = info_from_json(storage.read_text("meta/info.json")).runs[0].heartbeat_at
    assert beat > first.heartbeat_at
    time.sleep(0.5)
    assert json.loads(storage.read_text("meta/info.json"))["runs"][0]["heartbeat_at"] == beat  # stopped
