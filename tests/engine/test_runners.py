"""The runners: failure isolation, batches, actor setup, GPU scheduling, identical output."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.engine.pipelines_for_tests import build
from tests.engine.videos import make_mp4
from tubelet.engine.dataset import Dataset
from tubelet.engine.pipeline import Pipeline
from tubelet.engine.resources import Resources
from tubelet.engine.runners import InlineRunner, ProcessRunner, RayRunner, choose_runner, make_runner
from tubelet.engine.runners.common import StageSetupError, WorkerSettings
from tubelet.engine.runners.plan import Node, ResourceError, plan_steps, size_steps
from tubelet.engine.stage import Stage
from tubelet.engine.task import VideoTask
from tubelet.engine.video_backend import decord_import_error, requested_backend
from tubelet.engine.writer import ShardWriter
from tubelet.schemas.arrow import TABLE_SCHEMAS

N = 24


def fresh_tasks(n: int = N) -> list[VideoTask]:
    return [VideoTask(video_id=f"v{i:03d}", uri=f"synthetic://v{i:03d}", source="test") for i in range(n)]


def full_pipeline(notes: Path) -> Pipeline:
    return build(
        {
            "stages": [
                {"kind": "make"},
                {"kind": "fail", "fail": ["v003", "v010"]},
                {"kind": "model", "notes": str(notes)},
                {"kind": "task_setup", "notes": str(notes)},
                {"kind": "gpu", "notes": str(notes)},
                {"kind": "instruct"},
            ]
        }
    )


def run_into(runner, pipeline: Pipeline, out: Path, n: int = N) -> Dataset:
    with ShardWriter(out, shard_size=5) as writer:
        runner.run(pipeline, fresh_tasks(n), writer, None)
    return Dataset(out)


def notes_of(folder: Path, kind: str) -> list[Path]:
    return sorted(folder.glob(f"{kind}-*"))


def sorted_rows(dataset: Dataset, table: str) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in dataset.read_table(table).to_pylist())


def check_outcome(dataset: Dataset) -> None:
    """What full_pipeline must produce: 22 complete videos, 2 isolated failures."""
    status = dataset.item_status()
    assert len(status) == N
    assert sorted(k for k, s in status.items() if s == "failed") == ["v003", "v010"]
    counts = dataset.counts()
    for table in ("videos", "tubelets", "events", "entities", "instructions"):
        assert counts[table] == N - 2, table
    rejects = dataset.read_table("rejects").to_pylist()
    assert sorted(r["video_id"] for r in rejects) == ["v003", "v010"]
    for r in rejects:
        assert r["stage"] == "fail_on"
        assert r["item"] == f"synthetic://{r['video_id']}"
        assert r["reason"] == f"ValueError: cannot handle {r['video_id']}"
        assert r["traceback"].startswith("Traceback") and "pipelines_for_tests.py" in r["traceback"]


# -- inline -------------------------------------------------------------------------------


def test_inline_isolates_failures_and_batches(tmp_path):
    (tmp_path / "notes").mkdir()
    dataset = run_into(InlineRunner(), full_pipeline(tmp_path / "notes"), tmp_path / "out")
    check_outcome(dataset)
    # the model stage was set up and torn down once, and saw batches of at most 2
    assert len(notes_of(tmp_path / "notes", "setup")) == 1
    assert len(notes_of(tmp_path / "notes", "tsetup")) == 1  # a task stage too
    assert len(notes_of(tmp_path / "notes", "teardown")) == 1
    sizes = [int(p.read_text()) for p in notes_of(tmp_path / "notes", "process")]
    assert max(sizes) == 2 and sum(sizes) == N - 2


def test_inline_tears_down_when_a_stage_setup_fails(tmp_path):
    class Broken(Stage):
        def setup(self) -> None:
            raise OSError("no weights")

    (tmp_path / "notes").mkdir()
    pipeline = build({"stages": [{"kind": "model", "notes": str(tmp_path / "notes")}]})
    pipeline.stages.append(Broken())
    with pytest.raises(StageSetupError, match="stage broken: setup.. failed: OSError: no weights"):
        run_into(InlineRunner(), pipeline, tmp_path / "out")
    assert len(notes_of(tmp_path / "notes", "teardown")) == 1


def test_auto_runner_by_cluster_gpus_and_job_size(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cheap = build({"stages": [{"kind": "make"}, {"kind": "instruct"}]})
    model = build({"stages": [{"kind": "make"}, {"kind": "model"}]})
    gpu = build({"stages": [{"kind": "make"}, {"kind": "gpu"}]})
    assert choose_runner("auto", cheap, pending=10).name == "inline"  # nothing to load: no pool to start
    assert choose_runner("auto", cheap, pending=5000).name == "process"
    assert choose_runner("auto", model, pending=2).name == "process"  # models: parallel from the start
    assert choose_runner("auto", model, pending=1).name == "inline"  # one video: nothing to share
    assert choose_runner("auto", gpu, pending=2).name == "ray"  # Ray places GPU workers
    joined = choose_runner("auto", cheap, address="10.0.0.5:6379", pending=2)
    assert joined.name == "ray" and joined.address == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.6:6379")
    assert choose_runner("auto", cheap, pending=2).name == "ray"
    assert choose_runner("inline", gpu).name == "inline"  # asked for: as asked


def test_make_runner():
    assert isinstance(make_runner("inline"), InlineRunner)
    ray_runner = make_runner("ray", address="127.0.0.1:1")
    assert isinstance(ray_runner, RayRunner) and ray_runner.address == "127.0.0.1:1"
    with pytest.raises(ValueError, match="unknown runner"):
        make_runner("spark")


def test_steps_group_stages_by_device_and_fit_the_cluster(tmp_path):
    pipeline = full_pipeline(tmp_path)
    steps = plan_steps(pipeline.stages)
    assert [s.name for s in steps] == ["make_video+fail_on+model+task_with_setup", "on_gpu", "instruct"]
    assert [s.stateful for s in steps] == [True, True, False]
    # 2 CPUs, 1 GPU: one GPU actor (0.5 CPU), one CPU actor; the tasks get what is left
    placed = size_steps(steps, [Node(cpus=2, gpus=1)])
    assert [p.workers for p in placed] == [1, 1, 1]
    assert placed[2].resources.cpus == 0.5
    # a cluster: 2 GPU nodes, 16 CPUs each
    placed = size_steps(steps, [Node(cpus=16, gpus=1), Node(cpus=16, gpus=1)])
    assert [p.workers for p in placed] == [15, 2, 15]
    assert placed[2].resources.cpus == 1.0
    with pytest.raises(ResourceError, match="on_gpu needs"):
        size_steps(steps, [Node(cpus=8)])
    cpu_only = plan_steps(build({"stages": [{"kind": "make"}, {"kind": "instruct"}]}).stages)
    assert len(cpu_only) == 1 and not cpu_only[0].stateful  # tasks: one per CPU
    assert [p.workers for p in size_steps(cpu_only, [Node(cpus=2)])] == [2]


# -- ray ----------------------------------------------------------------------------------


@pytest.mark.ray
def test_ray_isolates_failures_sets_up_once_per_worker_and_uses_the_fake_gpu(ray_local, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    dataset = run_into(RayRunner(), full_pipeline(notes), tmp_path / "out")
    check_outcome(dataset)

    setups = notes_of(notes, "setup")
    processes = notes_of(notes, "process")
    setup_pids = [p.name.split("-")[1] for p in setups]
    process_pids = {p.name.split("-")[1] for p in processes}
    assert len(setup_pids) == len(set(setup_pids)), "setup() ran twice in one worker"
    assert process_pids <= set(setup_pids), "a worker processed without setup()"
    assert 1 <= len(setups) <= 2  # at most one actor per CPU on 2 CPUs
    assert len(processes) > len(setups)  # each worker kept its model for many batches
    assert str(os.getpid()) not in setup_pids  # it ran in Ray workers, not here
    sizes = [int(p.read_text()) for p in processes]
    assert max(sizes) <= 2 and sum(sizes) == N - 2
    # each actor tears its model down when Ray Data ends the pool (just after the run)
    deadline = time.monotonic() + 10
    while len(notes_of(notes, "teardown")) < len(setups) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(p.name.split("-")[1] for p in notes_of(notes, "teardown")) == sorted(setup_pids)

    # a stage that runs as Ray tasks is set up once per worker process, before its first batch
    task_setup_pids = [p.name.split("-")[1] for p in notes_of(notes, "tsetup")]
    task_process_pids = {p.name.split("-")[1] for p in notes_of(notes, "tprocess")}
    assert task_setup_pids and len(task_setup_pids) == len(set(task_setup_pids)), task_setup_pids
    assert task_process_pids <= set(task_setup_pids), "a task worker processed without setup()"
    assert str(os.getpid()) not in task_setup_pids

    gpu_notes = [p.read_text() for p in notes_of(notes, "gpu")]
    assert gpu_notes and all(text == "0;0" for text in gpu_notes), gpu_notes  # Ray GPU id 0, CUDA_VISIBLE_DEVICES=0


@pytest.mark.ray
def test_ray_and_inline_write_identical_rows(ray_local, tmp_path):
    for name in ("inline", "ray"):
        (tmp_path / name).mkdir()
    inline = run_into(InlineRunner(), full_pipeline(tmp_path / "inline"), tmp_path / "inline-out")
    ray = run_into(RayRunner(), full_pipeline(tmp_path / "ray"), tmp_path / "ray-out")
    assert inline.item_status() == ray.item_status()
    for table in TABLE_SCHEMAS:
        assert sorted_rows(inline, table) == sorted_rows(ray, table), table
    assert inline.counts()["tubelets"] == N - 2


@pytest.mark.ray
def test_ray_fails_fast_when_no_node_has_the_gpus(ray_local, tmp_path):
    class TwoGpus(Stage):
        resources = Resources(cpus=1, gpus=2)

        def process(self, batch):
            return batch

    pipeline = Pipeline("p", [TwoGpus()])
    with pytest.raises(ResourceError, match=r"two_gpus needs .*gpus=2.*no node"):
        run_into(RayRunner(), pipeline, tmp_path / "out", n=3)


@pytest.mark.ray
def test_ray_setup_failure_stops_the_run_with_the_error(ray_local, tmp_path):
    class NoWeights(Stage):
        def setup(self) -> None:
            raise OSError("weights not found: /nope.pt")

        def process(self, batch):
            return batch

    with pytest.raises(
        StageSetupError, match=r"^stage no_weights: setup\(\) failed: OSError: weights not found: /nope.pt$"
    ):
        run_into(RayRunner(), Pipeline("p", [NoWeights()]), tmp_path / "out", n=3)
    assert Dataset(tmp_path / "out").item_status() == {}


LOOPBACK_CHECK = """
import json, os
import ray  # imported before anything set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
from tubelet.engine.runners.ray_runner import ray_session
from tests.engine.raytools import descendants, listeners, non_loopback
with ray_session(None, 1, None):
    pids = descendants(os.getpid())
    found = {"listening": len(listeners(pids)), "exposed": non_loopback(pids),
             "node_ips": [n["NodeManagerAddress"] for n in ray.nodes()]}
found["initialized_after"] = ray.is_initialized()
found["env_after"] = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
print("RESULT " + json.dumps(found))
"""


@pytest.mark.ray
def test_a_local_instance_listens_on_loopback_only_even_if_ray_was_imported_first():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    env["PYTHONPATH"] = str(root)
    done = subprocess.run(
        [sys.executable, "-c", LOOPBACK_CHECK], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert found["listening"] > 0 and found["exposed"] == []
    assert found["node_ips"] == ["127.0.0.1"]
    assert found["initialized_after"] is False and found["env_after"] is None


# -- process pool -------------------------------------------------------------------------


def test_process_isolates_failures_and_sets_up_once_per_worker(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    pipeline = build({"stages": [s for s in full_pipeline(notes).params["stages"] if s["kind"] != "gpu"]})
    dataset = run_into(ProcessRunner(workers=2), pipeline, tmp_path / "out")
    check_outcome(dataset)
    for setup, process in (("setup", "process"), ("tsetup", "tprocess")):
        setup_pids = [p.name.split("-")[1] for p in notes_of(notes, setup)]
        assert setup_pids and len(setup_pids) == len(set(setup_pids)) <= 2, setup_pids
        assert {p.name.split("-")[1] for p in notes_of(notes, process)} <= set(setup_pids)
        assert str(os.getpid()) not in setup_pids  # in the workers, not here
    # each worker tears its stages down when the pool shuts down
    assert sorted(p.name.split("-")[1] for p in notes_of(notes, "teardown")) == sorted(
        p.name.split("-")[1] for p in notes_of(notes, "setup")
    )


def test_process_and_inline_write_identical_rows(tmp_path):
    pipeline = build({"stages": [{"kind": "make"}, {"kind": "fail", "fail": ["v003"]}, {"kind": "instruct"}]})
    inline = run_into(InlineRunner(), pipeline, tmp_path / "inline")
    pooled = run_into(ProcessRunner(workers=2), pipeline, tmp_path / "process")
    assert inline.item_status() == pooled.item_status()
    for table in TABLE_SCHEMAS:
        assert sorted_rows(inline, table) == sorted_rows(pooled, table), table


@pytest.mark.parametrize("runner", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_worker_that_dies_costs_only_its_video(request, tmp_path, runner):
    if runner == "ray":
        request.getfixturevalue("ray_local")
    pipeline = build({"stages": [{"kind": "make"}, {"kind": "crash", "on": ["v005"]}, {"kind": "instruct"}]})
    dataset = run_into(ProcessRunner(workers=2) if runner == "process" else RayRunner(), pipeline, tmp_path / "out")
    status = dataset.item_status()
    assert len(status) == N and [k for k, s in status.items() if s == "failed"] == ["v005"]
    [reject] = dataset.read_table("rejects").to_pylist()
    assert reject["video_id"] == "v005" and reject["stage"] == "worker"
    assert "lost twice" in reject["reason"]
    assert dataset.counts()["instructions"] == N - 1


# -- the run's settings reach every worker ---------------------------------------------------


@pytest.mark.parametrize("runner", ["inline", "process", pytest.param("ray", marks=pytest.mark.ray)])
def test_every_worker_decodes_with_the_run_s_video_backend(request, tmp_path, runner):
    """Ray runs the first decoder as tasks, the second in an actor; the pool and the
    driver run both: each notes which backend its VideoReader used, and the pixels."""
    if runner == "ray":
        request.getfixturevalue("ray_local")
    video = make_mp4(tmp_path / "clip.mp4", n=12)
    driver_default = requested_backend()
    backends = ["pyav"] if decord_import_error() else ["pyav", "decord"]
    digests = set()
    for backend in backends:
        notes = tmp_path / f"notes-{backend}"
        notes.mkdir()
        decoder = {"kind": "decoder", "video": str(video), "notes": str(notes)}
        pipeline = build({"stages": [{"kind": "make"}, decoder, {**decoder, "kind": "decoder_actor"}]})
        chosen = make_runner(runner, settings=WorkerSettings(video_backend=backend))
        run_into(chosen, pipeline, tmp_path / f"out-{backend}", n=8)
        seen = [p.read_text().split(";") for p in notes_of(notes, "decoder")]
        assert len(seen) >= 4 and {used for used, _ in seen} == {backend}, seen
        if runner != "inline":
            assert str(os.getpid()) not in {p.name.split("-")[1] for p in notes_of(notes, "decoder")}
        digests |= {digest for _, digest in seen}
    assert len(digests) == 1  # the same pixels from both backends
    assert requested_backend() == driver_default  # the driver's own default is left as it was


def test_a_backend_a_worker_cannot_use_stops_the_run(tmp_path, monkeypatch):
    from tubelet.engine import video_backend

    monkeypatch.setattr(video_backend, "decord_import_error", lambda: "ImportError: no decord here")
    pipeline = build({"stages": [{"kind": "make"}]})
    with pytest.raises(StageSetupError, match="video backend 'decord' was asked for"):
        run_into(InlineRunner(WorkerSettings(video_backend="decord")), pipeline, tmp_path / "out")
    assert requested_backend() != "decord"


def test_a_runner_without_settings_leaves_the_process_s_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBELET_VIDEO_BACKEND", "pyav")  # what a library user may set
    notes = tmp_path / "notes"
    notes.mkdir()
    video = make_mp4(tmp_path / "clip.mp4", n=12)
    pipeline = build({"stages": [{"kind": "make"}, {"kind": "decoder", "video": str(video), "notes": str(notes)}]})
    run_into(InlineRunner(), pipeline, tmp_path / "out", n=3)
    assert {p.read_text().split(";")[0] for p in notes_of(notes, "decoder")} == {"pyav"}
