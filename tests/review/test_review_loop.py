"""The review loop against a real Label Studio: push, review through the API, pull.

The reviewer here is this test, acting through the same REST API the labeling UI uses:
it submits annotations made from the pushed predictions with deliberate edits.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import tubelet.review.pull as review_pull
from tubelet.annotators.instructions import check_instructions
from tubelet.engine.dataset import Dataset
from tubelet.engine.validate import validate_dataset
from tubelet.engine.versions import list_versions, revert
from tubelet.review.client import LabelStudioClient
from tubelet.review.keyframes import from_ls_sequence
from tubelet.review.pull import pull
from tubelet.review.push import push
from tubelet.review.tasks import DATA_EVENTS, DATA_TUBELETS, DATA_VIDEO_ID, region_id

pytestmark = pytest.mark.labelstudio


@pytest.fixture
def client(label_studio) -> LabelStudioClient:
    return LabelStudioClient(label_studio.url, label_studio.token)


def _tasks(client: LabelStudioClient, project: str) -> dict[str, dict[str, Any]]:
    """video id -> {"id", "data", "prediction": result list}."""
    proj = client.find_project(project)
    out = {}
    for task in client.tasks(proj.id):
        preds = list(client.sdk.predictions.list(task=task["id"]))
        assert len(preds) == 1, f"task {task['id']} has {len(preds)} predictions"
        out[task["data"][DATA_VIDEO_ID]] = {**task, "prediction": preds[0].result}
    return out


def _annotate(client: LabelStudioClient, task_id: int, result: list[dict[str, Any]]) -> None:
    client.sdk.annotations.create(id=task_id, result=result, lead_time=12.5)


def _rows(path: Path, version: str | None = None) -> dict[str, list]:
    data = Dataset(path, version=version)
    return {t: data.records(t) for t in ("tubelets", "entities", "events", "instructions", "reviews", "rejects")}


def test_push_is_idempotent_and_shows_real_frames(client: LabelStudioClient, dataset: Path) -> None:
    report = push(dataset, "idempotent", client=client)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.requests["bulk import"] == 1  # both tasks in one request
    tasks = _tasks(client, "idempotent")
    assert set(tasks) == {"scene", "mirror30"}
    scene = tasks["scene"]
    assert scene["data"]["fps"] == 24.0 and tasks["mirror30"]["data"]["fps"] == 30.0
    # the sample is MPEG-4 part 2: it is served as an H.264 proxy of the same frames
    assert "review/media/scene.72f.mp4" in scene["data"]["video"]
    assert "mirror30.mp4" in tasks["mirror30"]["data"]["video"]
    config = client.find_project("idempotent").label_config
    assert 'frameRate="$fps"' in config and "red square" not in config  # categories are the detector's
    boxes = [r for r in scene["prediction"] if r["type"] == "videorectangle"]
    assert len(boxes) == len(scene["data"][DATA_TUBELETS])
    for r in boxes:
        frames = [k["frame"] for k in r["value"]["sequence"]]
        assert min(frames) >= 1 and frames == sorted(frames)
        for k in r["value"]["sequence"]:
            assert abs(k["time"] - (k["frame"] - 1) / 24.0) < 1e-6  # 1-based frames, the video's own fps
    # again: nothing changes, no duplicate
    again = push(dataset, "idempotent", client=client)
    assert (again.created, again.updated, again.unchanged, again.duplicates_removed) == (0, 0, 2, 0)
    # a looser tolerance changes the predictions: replaced, not added
    looser = push(dataset, "idempotent", client=client, tolerance_px=6.0)
    assert (looser.created, looser.updated) == (0, 2)
    assert looser.requests["delete tasks"] == 1 and looser.requests["bulk import"] == 1  # not annotated: replaced
    assert len(_tasks(client, "idempotent")) == 2  # _tasks asserts one prediction per task


def test_round_trip_without_edits_is_lossless(client: LabelStudioClient, dataset: Path, capsys) -> None:
    before = _rows(dataset)
    push(dataset, "roundtrip", client=client, tolerance_px=2.0)
    for task in _tasks(client, "roundtrip").values():
        _annotate(client, task["id"], task["prediction"])
    report = pull(dataset, "roundtrip", client=client, tolerance_px=2.0)
    assert report.applied == 2 and not report.rejects
    after = _rows(dataset)
    assert {r.verdict for r in after["reviews"]} == {"accept"}
    # the dataset is unchanged: same tubelets (boxes and masks), events, instructions
    assert [t.tubelet_id for t in after["tubelets"]] == [t.tubelet_id for t in before["tubelets"]]
    for table in ("tubelets", "entities", "events", "instructions"):
        assert sorted(map(repr, after[table])) == sorted(map(repr, before[table])), table
    # and what the reviewer saw (Label Studio's interpolation of our keyframes) is within tolerance
    worst = 0.0
    exported = client.export(client.find_project("roundtrip").id)
    tubes = {t.tubelet_id: t for t in before["tubelets"]}
    for task in exported:
        video = Dataset(dataset).records("videos")
        v = next(v for v in video if v.video_id == task["data"][DATA_VIDEO_ID])
        for result in task["annotations"][0]["result"]:
            if result["type"] != "videorectangle":
                continue
            shown = {
                k.frame_idx: k.box_xyxy
                for k in from_ls_sequence(result["value"]["sequence"], width=v.width, height=v.height)
            }
            tube = tubes[task["data"][DATA_TUBELETS][result["id"]]]
            for f in tube.frames:
                if f.visible:
                    worst = max(worst, max(abs(a - b) for a, b in zip(shown[f.frame_idx], f.box_xyxy)))
                else:
                    assert f.frame_idx not in shown
    assert worst <= 2.0 + 0.05
    with capsys.disabled():
        print(f"\n[review round trip] max box error {worst:.3f} px at tolerance 2 px")
    # pulling again applies nothing new
    again = pull(dataset, "roundtrip", client=client)
    assert again.applied == 0 and again.already_applied == 2 and again.versions is None
    # re-pushing annotated tasks edits them in place: the reviewers' work stays
    repushed = push(dataset, "roundtrip", client=client, tolerance_px=6.0)
    assert (repushed.created, repushed.updated) == (0, 2) and repushed.requests["update task"] == 2
    assert len(client.export(client.find_project("roundtrip").id)) == 2
    assert len(_tasks(client, "roundtrip")) == 2


def test_reviewer_edits_flow_back_exactly(client: LabelStudioClient, dataset: Path) -> None:
    original = _rows(dataset)
    push(dataset, "edits", client=client)
    tasks = _tasks(client, "edits")
    task = tasks["scene"]
    result = copy.deepcopy(task["prediction"])
    regions = task["data"][DATA_TUBELETS]
    tracks = [r for r in result if r["type"] == "videorectangle"]
    assert len(tracks) >= 2
    tubes = {t.tubelet_id: t for t in original["tubelets"]}
    moved, deleted = tracks[0], tracks[1]
    moved_id, deleted_id = regions[moved["id"]], regions[deleted["id"]]

    # 1. move the box on a middle keyframe of the first track by +24 px (640 px wide: 3.75 %)
    seq = moved["value"]["sequence"]
    key = seq[len(seq) // 2] if len(seq) > 2 else seq[0]
    key["x"] += 3.75
    moved_frame = key["frame"] - 1
    # 2. delete the second track (and its texts)
    result = [r for r in result if r["id"] != deleted["id"]]
    # 3. shorten an event span of the moved track by 3 frames at its end
    event_regions = task["data"][DATA_EVENTS]
    events = {e.event_id: e for e in original["events"]}
    long_span = next(
        r
        for r in result
        if r["type"] == "timelinelabels"
        and moved_id in events[event_regions[r["id"]]].tubelet_ids
        and r["value"]["ranges"][0]["end"] - r["value"]["ranges"][0]["start"] >= 6
    )
    long_span["value"]["ranges"][0]["end"] -= 3
    shortened_id = event_regions[long_span["id"]]
    # 4. rewrite the first track's referring expression
    text = next(
        r for r in result if r["type"] == "textarea" and r["id"] == moved["id"] and r["from_name"] == "expression"
    )
    text["value"]["text"] = ["the reviewed object"]
    # 5. reject an instruction that does not involve either track
    offered = [c["value"] for c in task["data"]["instructions"]]
    insts = {i.instruction_id: i for i in original["instructions"]}
    rejected = offered[0]
    result.append(
        {
            "id": "verdict",
            "from_name": "rejected_instructions",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": [rejected]},
        }
    )
    _annotate(client, task["id"], result)

    report = pull(dataset, "edits", client=client)
    assert report.applied == 1, report
    # the only rejects: frames of the moved track whose mask the tracker could not regenerate
    assert all(r.item.startswith(f"{moved_id} frame") and "mask not regenerated" in r.reason for r in report.rejects)
    after = _rows(dataset)
    assert validate_dataset(dataset).ok

    # the moved box: exactly the reviewer's on that keyframe, masks regenerated inside it
    tube = next(t for t in after["tubelets"] if t.tubelet_id == moved_id)
    frame = next(f for f in tube.frames if f.frame_idx == moved_frame)
    old = next(f for f in tubes[moved_id].frames if f.frame_idx == moved_frame)
    assert frame.box_xyxy[0] == pytest.approx(min(640.0, old.box_xyxy[0] + 24.0), abs=0.1)
    assert tube.extra.get("reviewed") is True
    # 2. the deleted track left the tubelets, entities, events and every instruction
    assert deleted_id not in {t.tubelet_id for t in after["tubelets"]}
    assert deleted_id not in {e.tubelet_id for e in after["entities"]}
    assert all(deleted_id not in e.tubelet_ids for e in after["events"])
    for inst in after["instructions"]:
        assert deleted_id not in {r.tubelet_id for r in inst.regions} | set(inst.answer.tubelet_ids)
        assert not any(deleted_id in p for p in inst.provenance)
    # 3. the shortened span
    event = next(e for e in after["events"] if e.event_id == shortened_id)
    assert event.end_frame == events[shortened_id].end_frame - 3
    # 4. the rewritten expression, now also in the regenerated questions
    entity = next(e for e in after["entities"] if e.tubelet_id == moved_id)
    assert entity.referring_expression == "the reviewed object"
    assert any("the reviewed object" in m.content for i in after["instructions"] for m in i.messages)
    # 5. the rejected instruction is gone, and the regenerated ones all check
    assert rejected not in {i.instruction_id for i in after["instructions"]}
    scene_after = [i for i in after["instructions"] if i.video_id == "scene"]
    assert {i.instruction_id for i in scene_after} != {i for i in insts if insts[i].video_id == "scene"}
    assert check_instructions(after["instructions"], after["tubelets"], after["entities"], after["events"]).ok
    # the other video was not reviewed: untouched
    for table in ("tubelets", "instructions"):
        assert sorted(map(repr, [r for r in after[table] if r.video_id == "mirror30"])) == sorted(
            map(repr, [r for r in original[table] if r.video_id == "mirror30"])
        )
    # provenance: who and when, per verdict
    verdicts = {(r.item_table, r.item_id): r for r in after["reviews"]}
    assert verdicts[("tubelets", moved_id)].verdict == "correct"
    assert verdicts[("tubelets", deleted_id)].verdict == "reject"
    assert verdicts[("events", shortened_id)].verdict == "correct"
    assert verdicts[("instructions", rejected)].verdict == "reject"
    assert all(r.reviewer == "reviewer@tubelet.test" and r.reviewed_at for r in after["reviews"])
    # the pre-review version is kept, and reverting restores it
    before_name, after_name = report.versions
    assert [v.name for v in list_versions(dataset)][-2:] == [before_name, after_name]
    assert sorted(map(repr, _rows(dataset, before_name)["tubelets"])) == sorted(map(repr, original["tubelets"]))
    revert(dataset, before_name)
    assert sorted(map(repr, _rows(dataset)["instructions"])) == sorted(map(repr, original["instructions"]))


def test_mismatches_and_unknown_items_are_reported_not_applied(client: LabelStudioClient, dataset: Path) -> None:
    push(dataset, "mismatch", client=client)
    tasks = _tasks(client, "mismatch")
    # mirror30 is 30 fps: a reviewer tool that assumed 24 fps writes times that disagree
    task = tasks["mirror30"]
    result = copy.deepcopy(task["prediction"])
    track = next(r for r in result if r["type"] == "videorectangle")
    for k in track["value"]["sequence"]:
        k["time"] = (k["frame"] - 1) / 24.0
    result.append(
        {
            "id": "nosuch",
            "from_name": "expression",
            "to_name": "video",
            "type": "textarea",
            "value": {"text": ["a text for no track"]},
        }
    )
    _annotate(client, task["id"], result)
    # a task for a video this dataset does not have
    proj = client.find_project("mismatch")
    ghost = copy.deepcopy({"data": tasks["scene"]["data"]})
    ghost["data"][DATA_VIDEO_ID] = "ghost-video"
    imported = client.sdk.projects.import_tasks(proj.id, request=[ghost], return_task_ids=True)
    _annotate(client, imported.task_ids[0], [])
    report = pull(dataset, "mismatch", client=client)
    reasons = " | ".join(r.reason for r in report.rejects)
    assert "24 fps" not in reasons and "disagree with 30 fps" in reasons
    assert "no track of this task" in reasons
    assert "'ghost-video', which is not in this dataset" in reasons
    after = _rows(dataset)
    moved = task["data"][DATA_TUBELETS][track["id"]]
    assert next(t for t in after["tubelets"] if t.tubelet_id == moved).extra.get("reviewed") is None  # not shifted
    stored = {r.reason for r in after["rejects"] if r.stage == "review"}
    assert any("ghost-video" in r for r in stored) and any("disagree" in r for r in stored)


def test_token_never_reaches_files_or_output(client: LabelStudioClient, dataset: Path, label_studio, capsys) -> None:
    push(dataset, "hygiene", client=client)
    for task in _tasks(client, "hygiene").values():
        _annotate(client, task["id"], task["prediction"])
    pull(dataset, "hygiene", client=client)
    captured = capsys.readouterr()
    assert label_studio.token not in captured.out + captured.err
    assert label_studio.token not in repr(client)
    for path in dataset.rglob("*"):
        if path.is_file():
            assert label_studio.token.encode() not in path.read_bytes(), path


def test_interrupted_push_resumes_without_duplicates(client: LabelStudioClient, dataset: Path, label_studio) -> None:
    from tubelet.review.client import ReviewServerError

    class Interrupted(LabelStudioClient):
        """Loses the connection after the first bulk import."""

        imports = 0

        def call(self, what, fn, *args, **kwargs):
            if what.startswith("importing"):
                Interrupted.imports += 1
                if Interrupted.imports > 1:
                    raise ReviewServerError(f"{what} failed: cannot reach the server")
            return super().call(what, fn, *args, **kwargs)

    with pytest.raises(ReviewServerError):
        push(dataset, "resume", client=Interrupted(label_studio.url, label_studio.token), batch_size=1)
    assert len(_tasks(client, "resume")) == 1
    report = push(dataset, "resume", client=client, batch_size=1)
    assert (report.created, report.unchanged) == (1, 1)
    assert len(_tasks(client, "resume")) == 2


def test_push_selects_videos_with_where(client: LabelStudioClient, dataset: Path) -> None:
    report = push(dataset, "where", client=client, where="fps > 25")
    assert report.created == 1 and set(_tasks(client, "where")) == {"mirror30"}
    with pytest.raises(ValueError, match="--where"):
        push(dataset, "where", client=client, where="no_such_column = 1")


def test_cli_push_and_pull(label_studio, dataset: Path, capsys) -> None:
    from tubelet.cli.main import main

    assert main(["review", "push", str(dataset), "--project", "cli"]) == 0
    out = capsys.readouterr().out
    assert "2 created" in out and label_studio.token not in out
    assert main(["review", "pull", str(dataset), "--project", "cli"]) == 0
    assert "0 applied" in capsys.readouterr().out
    assert main(["versions", str(dataset)]) == 0
    assert json.dumps(region_id("t", "x"))  # ids are plain strings


def test_the_readme_push_works_from_a_relative_output_folder(
    label_studio, client: LabelStudioClient, dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``tubelet review push out/demo-strefer …`` as the README writes it: a relative
    folder. Label Studio resolves nothing against our directory, so every path it gets
    (its local-files storages, the task URLs) must be absolute, and each task's file must
    lie in one of the project's storages."""
    from tubelet.cli.main import main

    monkeypatch.chdir(dataset.parent)
    assert main(["review", "push", dataset.name, "--project", "relative"]) == 0, capsys.readouterr()
    proj = client.find_project("relative")
    storages = [s.path for s in client.sdk.import_storage.local.list(project=proj.id)]
    assert storages and all(Path(p).is_absolute() and Path(p).is_dir() for p in storages), storages
    for task in client.tasks(proj.id):
        url = task["data"]["video"]
        assert url.startswith("/data/local-files/?d=")
        served = "/" + urllib.parse.unquote(url.split("?d=", 1)[1])  # under the document root "/"
        assert Path(served).is_file(), served
        assert any(Path(served).parent == Path(p) for p in storages), (served, storages)


def test_serve_prints_where_and_how_to_stop(label_studio, tmp_path: Path, capsys) -> None:
    import shutil
    import urllib.request

    from tests.review.conftest import TEMPLATE, _free_port
    from tubelet.cli.main import main

    data_dir = tmp_path / "ls"
    shutil.copytree(TEMPLATE, data_dir, ignore=shutil.ignore_patterns("*.pid", "*.log", "media"))
    port = _free_port()
    assert main(["review", "serve", "--data-dir", str(data_dir), "--port", str(port)]) == 0
    out = capsys.readouterr().out
    try:
        assert f"http://127.0.0.1:{port}" in out and "tubelet review stop --data-dir" in out
        assert label_studio.token not in out and label_studio.password not in out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        assert main(["review", "serve", "--data-dir", str(data_dir), "--port", str(port)]) == 2  # already running
    finally:
        assert main(["review", "stop", "--data-dir", str(data_dir)]) == 0
    assert "stopped Label Studio" in capsys.readouterr().out
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_query_reads_an_earlier_version(client: LabelStudioClient, dataset: Path, capsys) -> None:
    from tubelet.cli.main import main

    push(dataset, "versions", client=client)
    task = _tasks(client, "versions")["scene"]
    _annotate(
        client,
        task["id"],
        [
            r
            for r in task["prediction"]
            if r["type"] != "videorectangle" or r["id"] != next(iter(task["data"][DATA_TUBELETS]))
        ],
    )
    report = pull(dataset, "versions", client=client)
    before, after = report.versions
    capsys.readouterr()
    assert main(["query", str(dataset), "SELECT count(*) AS n FROM tubelets", "--format", "csv"]) == 0
    now = int(capsys.readouterr().out.split()[-1])
    assert (
        main(["query", str(dataset), "SELECT count(*) AS n FROM tubelets", "--format", "csv", "--version", before]) == 0
    )
    then = int(capsys.readouterr().out.split()[-1])
    assert then == now + 1  # one track was deleted in review
    assert main(["query", str(dataset), "SELECT 1", "--version", "nope"]) == 2


def test_an_interrupted_pull_changes_nothing_and_resumes(
    client: LabelStudioClient, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(dataset, "pull-resume", client=client)
    for task in _tasks(client, "pull-resume").values():
        result = [r for r in task["prediction"] if r["type"] != "timelinelabels"]  # every span deleted
        _annotate(client, task["id"], result)
    before = _rows(dataset)
    real_commit = review_pull.commit_revision

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after applying, before committing

    monkeypatch.setattr(review_pull, "commit_revision", killed)
    with pytest.raises(KeyboardInterrupt):
        pull(dataset, "pull-resume", client=client)
    assert _rows(dataset) == before and not list_versions(dataset)
    monkeypatch.setattr(review_pull, "commit_revision", real_commit)
    report = pull(dataset, "pull-resume", client=client)
    assert report.applied == 2
    after = _rows(dataset)
    assert not [e for e in after["events"] if e.source != "review"]
    assert {r.verdict for r in after["reviews"] if r.item_table == "events"} == {"reject"}


def test_a_second_review_keeps_the_first_ones_verdicts(client: LabelStudioClient, dataset: Path) -> None:
    push(dataset, "second", client=client)
    task = _tasks(client, "second")["scene"]
    rejected = task["data"]["instructions"][0]["value"]
    first = task["prediction"] + [
        {
            "id": "verdict",
            "from_name": "rejected_instructions",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": [rejected]},
        }
    ]
    _annotate(client, task["id"], first)
    assert pull(dataset, "second", client=client).applied == 1
    # the reviewer comes back and deletes every span (the earlier rejection is not repeated)
    annotation = client.sdk.annotations.list(id=task["id"])[0]
    client.sdk.annotations.update(
        id=annotation.id, result=[r for r in task["prediction"] if r["type"] != "timelinelabels"]
    )
    report = pull(dataset, "second", client=client)
    assert report.applied == 1 and report.already_applied == 0
    after = _rows(dataset)
    assert rejected not in {i.instruction_id for i in after["instructions"]}  # stays rejected
    scene_reviews = [r for r in after["reviews"] if r.video_id == "scene"]
    assert {("instructions", rejected, "reject")} <= {(r.item_table, r.item_id, r.verdict) for r in scene_reviews}
    assert len({r.payload["annotation_updated_at"] for r in scene_reviews}) == 2  # both passes kept
    assert not [e for e in after["events"] if e.video_id == "scene"]
    assert validate_dataset(dataset).ok  # review ids stay unique across passes
