"""run_manifest: plan, manifest rejects, info.json, logs, re-runs, config mismatch."""

from __future__ import annotations

import json

import pytest
import yaml

from tubelet.engine.config import RunConfig
from tubelet.engine.dataset import Dataset
from tubelet.engine.logs import read_log
from tubelet.engine.run import ConfigMismatchError
from tubelet.engine.writer import ShardWriter
from tubelet.pipelines import run_manifest
from tubelet.schemas.info import SchemaVersionError

PIPELINE = "tests.engine.pipelines_for_tests:build"


def make_config(tmp_path, n: int = 7, *, params: dict | None = None, **kw) -> RunConfig:
    listing = tmp_path / "more.jsonl"
    listing.write_text(
        json.dumps({"uri": "synthetic://w0", "video_id": "w000"})
        + "\n"
        + "{broken json\n"
        + json.dumps({"uri": "synthetic://w1", "video_id": "w001", "split": "val"})
        + "\n"
    )
    data = {
        "pipeline": PIPELINE,
        "output": "out",
        "runner": "inline",
        "shard_size": 3,
        "params": params or {"stages": [{"kind": "make"}, {"kind": "fail", "fail": ["v002"]}, {"kind": "instruct"}]},
        "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(n)] + [{"path": str(listing)}],
        "base_dir": str(tmp_path),
    }
    data.update(kw)
    return RunConfig.model_validate(data)


def test_run_writes_dataset_meta_and_logs(tmp_path):
    summary = run_manifest(make_config(tmp_path), progress=False, log_to_stderr=False)
    out = tmp_path / "out"
    assert summary.output == str(out)
    assert (summary.planned, summary.skipped_already_done, summary.done, summary.failed, summary.rejected_rows) == (
        9,
        0,
        8,
        1,
        1,
    )
    assert summary.removed_orphans == []

    ds = Dataset(out)
    status = ds.item_status()
    reject_key = next(k for k in status if k.startswith("manifest:"))
    assert reject_key.endswith("more.jsonl:2") and status[reject_key] == "failed"
    assert status["v002"] == "failed" and status["w001"] == "done"
    assert ds.planned()[:2] == ["v000", "v001"] and reject_key in ds.planned() and len(ds.planned()) == 10
    assert ds.pending() == []
    con = ds.connect()
    assert con.execute("select count(*) from videos").fetchone() == (8,)
    assert con.execute("select split from videos where video_id = 'w001'").fetchone() == ("val",)
    rejects = con.execute("select stage, video_id from rejects order by stage").fetchall()
    assert rejects == [("fail_on", "v002"), ("manifest", None)]

    info = ds.info()
    assert info.pipeline == "test" and info.params["stages"][0] == {"kind": "make"}
    assert info.counts == {"videos": 8, "tubelets": 8, "events": 8, "instructions": 8, "rejects": 2}
    assert [r.run_id for r in info.runs] == [summary.run_id]
    run = info.runs[0]
    assert (run.status, run.done, run.failed, run.planned, run.rejected_rows, run.runner) == (
        "finished",
        8,
        1,
        9,
        1,
        "inline",
    )

    manifest = yaml.safe_load((out / "meta" / "manifest.yaml").read_text())
    assert manifest["output"] == str(out) and manifest["pipeline"] == PIPELINE

    events = [r for r in read_log(summary.log_path) if r.get("event") in ("run_start", "run_end")]
    assert events[0]["pending"] == 9 and events[0]["run_id"] == summary.run_id
    assert events[-1]["done"] == 8 and events[-1]["status"] == "finished"


def test_rerun_skips_everything_committed_and_adds_new_videos(tmp_path):
    first = run_manifest(make_config(tmp_path), progress=False, log_to_stderr=False)
    again = run_manifest(make_config(tmp_path), progress=False, log_to_stderr=False)
    assert (again.skipped_already_done, again.done, again.failed) == (9, 0, 0)
    more = run_manifest(make_config(tmp_path, n=10), progress=False, log_to_stderr=False)
    assert (more.planned, more.skipped_already_done, more.done) == (12, 9, 3)
    ds = Dataset(tmp_path / "out")
    con = ds.connect()
    assert con.execute("select count(*), count(distinct video_id) from videos").fetchone() == (11, 11)
    assert con.execute("select count(*) from rejects where stage = 'manifest'").fetchone() == (1,)  # once
    assert [r.run_id for r in ds.info().runs] == [first.run_id, again.run_id, more.run_id]
    assert ds.info().counts["videos"] == 11


def test_other_params_into_the_same_output_are_refused(tmp_path):
    run_manifest(make_config(tmp_path), progress=False, log_to_stderr=False)
    other = make_config(tmp_path, params={"stages": [{"kind": "make"}]})
    with pytest.raises(ConfigMismatchError, match="config hash"):
        run_manifest(other, progress=False, log_to_stderr=False)


def test_runner_override_and_locked_output(tmp_path):
    config = make_config(tmp_path, runner="ray")
    with ShardWriter(tmp_path / "out"):
        with pytest.raises(RuntimeError, match="being written by another run"):
            run_manifest(config, runner="inline", progress=False, log_to_stderr=False)
    summary = run_manifest(config, runner="inline", progress=False, log_to_stderr=False)
    assert summary.runner == "inline" and summary.done == 8


def test_an_interrupted_run_commits_what_finished_and_says_so(tmp_path):
    params = {"stages": [{"kind": "make"}, {"kind": "interrupt", "after": 4}]}
    with pytest.raises(KeyboardInterrupt):
        run_manifest(make_config(tmp_path, params=params), progress=False, log_to_stderr=False)
    ds = Dataset(tmp_path / "out")
    done = sorted(k for k, s in ds.item_status().items() if s == "done")
    assert done == ["v000", "v001", "v002"]  # the finished bundle; the interrupted one is redone
    run = ds.info().runs[-1]
    assert (run.status, run.done, run.error) == ("interrupted", 3, "KeyboardInterrupt: Ctrl-C")
    assert ds.pending() == ["v003", "v004", "v005", "v006", "w000", "w001"]


def test_unknown_stage_fails_before_touching_the_output(tmp_path):
    with pytest.raises(KeyError):
        run_manifest(make_config(tmp_path, params={"stages": [{"kind": "nope"}]}), progress=False, log_to_stderr=False)
    assert not (tmp_path / "out" / "meta" / "info.json").exists()


def test_a_dataset_of_a_newer_major_schema_is_not_touched(tmp_path):
    run_manifest(make_config(tmp_path), progress=False, log_to_stderr=False)
    path = tmp_path / "out" / "meta" / "info.json"
    info = json.loads(path.read_text())
    info["schema_version"] = "99.0.0"
    path.write_text(json.dumps(info))
    with pytest.raises(SchemaVersionError):
        run_manifest(make_config(tmp_path, n=9), progress=False, log_to_stderr=False)
    assert len(Dataset(tmp_path / "out").item_status()) == 10


@pytest.mark.ray
def test_ray_runner_through_run_manifest(ray_local, tmp_path):
    summary = run_manifest(make_config(tmp_path), runner="ray", progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed, summary.runner) == (8, 1, "ray")
    assert Dataset(tmp_path / "out").info().runs[0].runner == "ray"
