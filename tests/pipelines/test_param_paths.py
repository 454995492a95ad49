"""Paths in params resolve from the manifest's folder; names stay names; --set values
resolve from the current directory; what workers get and info.json records is the
resolved path, and the config hash does not depend on where the run was started."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from tubelet.engine.dataset import Dataset
from tubelet.engine.manifest import load_manifest
from tubelet.pipelines import build_pipeline, pipeline_for, run_manifest
from tubelet.pipelines.params import ParamPaths, looks_like_path, resolve_path_value


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest folder with model files, and the current directory somewhere else."""
    root = tmp_path / "project"
    (root / "models" / "vlm").mkdir(parents=True)
    (root / "models" / "w.pt").write_bytes(b"weights of the manifest's folder")
    (root / "models" / "sam2.pt").write_bytes(b"sam2")
    (root / "models" / "sam2.yaml").write_text("model: {}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root


def manifest(folder: Path, params: dict, pipeline: str = "track", videos: tuple[str, ...] = ("a.mp4",)) -> Path:
    path = folder / "m.yaml"
    entries = "\n".join(f"  - uri: {v}" for v in videos)
    path.write_text(
        textwrap.dedent(
            f"""\
            pipeline: {pipeline}
            output: out
            params: {json.dumps(params)}
            videos:
            """
        )
        + entries
        + "\n"
    )
    return path


def stage(pipeline, name: str):
    return next(s for s in pipeline.stages if s.name == name)


# ------------------------------------------------------------------------- the rule


def test_a_relative_path_resolves_from_the_manifest_folder_not_the_cwd(project: Path) -> None:
    params = {
        "weights": "models/w.pt",
        "tracker": "sam2",  # the options are SAM 2's (the flow tracker refuses them)
        "tracker_options": {"checkpoint": "models/sam2.pt", "config": "./models/sam2.yaml", "image_size": 256},
    }
    config = load_manifest(manifest(project, params))
    pipeline = pipeline_for(config)
    assert stage(pipeline, "yolo_detector").weights == str(project / "models" / "w.pt")
    options = stage(pipeline, "track_masklets").tracker_options
    assert options["checkpoint"] == str(project / "models" / "sam2.pt")
    assert options["config"] == str(project / "models" / "sam2.yaml")
    assert options["image_size"] == 256  # not a path key: untouched
    # info.json records pipeline.params: the resolved paths
    assert pipeline.params["weights"] == str(project / "models" / "w.pt")
    assert pipeline.params["tracker_options"]["checkpoint"] == str(project / "models" / "sam2.pt")


def test_names_stay_names(project: Path) -> None:
    params = {
        "weights": "yolov8n.pt",  # an Ultralytics name
        "open_vocab_model": "IDEA-Research/grounding-dino-tiny",  # a Hugging Face id
        "tracker_options": {"config": "configs/sam2.1/sam2.1_hiera_t.yaml", "checkpoint": "facebook/sam2.1-hiera-tiny"},
    }
    pipeline = pipeline_for(load_manifest(manifest(project, {**params, "prompts": "dog.", "profile": "full"})))
    assert stage(pipeline, "open_vocab_detector").model == "IDEA-Research/grounding-dino-tiny"
    assert stage(pipeline, "track_masklets").tracker_options == params["tracker_options"]
    pipeline = pipeline_for(load_manifest(manifest(project, {**params, "tracker": "sam2"})))
    assert stage(pipeline, "yolo_detector").weights == "yolov8n.pt"


def test_a_name_that_exists_beside_the_manifest_is_that_folder(project: Path) -> None:
    (project / "IDEA-Research" / "grounding-dino-tiny").mkdir(parents=True)
    params = {"prompts": "dog.", "open_vocab_model": "IDEA-Research/grounding-dino-tiny"}
    pipeline = pipeline_for(load_manifest(manifest(project, params)))
    assert stage(pipeline, "open_vocab_detector").model == str(project / "IDEA-Research" / "grounding-dino-tiny")


@pytest.mark.parametrize("value", ["models/missing.pt", "./missing", "../models/w.pt", "~/no-such-tubelet-weights.pt"])
def test_a_missing_path_is_an_error_naming_the_param_and_the_path_tried(project: Path, value: str) -> None:
    config = load_manifest(manifest(project, {"weights": value}))
    with pytest.raises(ValueError) as info:
        pipeline_for(config)
    tried = os.path.abspath(os.path.join(project, os.path.expanduser(value)))
    message = str(info.value)
    assert message.startswith(f"{project / 'm.yaml'}:3: params.weights: no such file or folder: ")
    assert tried in message and "manifest's folder" in message


def test_a_missing_nested_path_names_the_dotted_param(project: Path) -> None:
    params = {"source": "track", "track": {"profile": "full", "tracker_options": {"checkpoint": "ckpt/sam2.pt"}}}
    with pytest.raises(ValueError, match=r"m\.yaml:3: params\.track\.tracker_options\.checkpoint: no such file"):
        pipeline_for(load_manifest(manifest(project, params, pipeline="strefer")))


def test_urls_stay_as_they_are(project: Path) -> None:
    for url in ("s3://bucket/models/w.pt", "https://example.com/w.pt"):
        pipeline = pipeline_for(load_manifest(manifest(project, {"weights": url})))
        assert stage(pipeline, "yolo_detector").weights == url


def test_nested_track_params_and_backend_models(project: Path) -> None:
    base = {"source": "track", "track": {"weights": "models/w.pt"}, "language": "vlm"}
    vlm = {**base, "backend": "transformers", "backend_options": {"model": "models/vlm"}}
    pipeline = pipeline_for(load_manifest(manifest(project, vlm, pipeline="strefer")))
    assert stage(pipeline, "yolo_detector").weights == str(project / "models" / "w.pt")
    assert pipeline.params["track"]["weights"] == str(project / "models" / "w.pt")
    assert stage(pipeline, "describe_entities").backend_options["model"] == str(project / "models" / "vlm")
    # an OpenAI-compatible server's model is the name it serves, even if a folder has that name
    served = {**base, "backend": "openai", "backend_options": {"model": "models/vlm"}}
    pipeline = pipeline_for(load_manifest(manifest(project, served, pipeline="strefer")))
    assert stage(pipeline, "describe_entities").backend_options["model"] == "models/vlm"


# ------------------------------------------------------------------- the command line


def test_a_set_override_resolves_from_the_current_directory(project: Path) -> None:
    cwd = Path.cwd()
    (cwd / "mine").mkdir()
    (cwd / "mine" / "w.pt").write_bytes(b"weights of the current directory")
    m = manifest(project, {"weights": "models/w.pt"})
    config = load_manifest(m, ["params.weights=mine/w.pt"])
    assert config.param_dirs == {"weights": str(cwd)}
    assert stage(pipeline_for(config), "yolo_detector").weights == str(cwd / "mine" / "w.pt")
    # the manifest's relative path given on the command line is looked for here, not there
    missing = r"weights: no such file or folder: .*elsewhere/models/w\.pt .*current directory"
    with pytest.raises(ValueError, match=missing):
        pipeline_for(load_manifest(m, ["params.weights=models/w.pt"]))
    # a mapping given whole, and a key inside one, resolve from here too
    nested = load_manifest(manifest(project, {}, pipeline="strefer"), ["params.track={weights: mine/w.pt}"])
    assert stage(pipeline_for(nested), "yolo_detector").weights == str(cwd / "mine" / "w.pt")
    nested = load_manifest(manifest(project, {}, pipeline="strefer"), ["params.track.weights=mine/w.pt"])
    assert stage(pipeline_for(nested), "yolo_detector").weights == str(cwd / "mine" / "w.pt")


def test_the_loader_owns_param_dirs(project: Path) -> None:
    m = project / "bad.yaml"
    m.write_text("pipeline: track\noutput: out\nparam_dirs: {weights: /}\nvideos: [{uri: a.mp4}]\n")
    from tubelet.engine.manifest import ManifestError

    with pytest.raises(ManifestError, match="param_dirs: set by the loader"):
        load_manifest(m)


def test_the_rule_in_pieces(tmp_path: Path) -> None:
    assert looks_like_path("./x") and looks_like_path("../x") and looks_like_path("/x") and looks_like_path("~/x")
    assert looks_like_path("models/yolov8n.pt") and looks_like_path("a/b.safetensors")
    assert not looks_like_path("yolov8n.pt") and not looks_like_path("IDEA-Research/grounding-dino-tiny")
    assert not looks_like_path("configs/sam2.1/sam2.1_hiera_t.yaml")
    assert not looks_like_path("facebook/sam2.1-hiera-tiny")
    (tmp_path / "w.pt").write_bytes(b"")
    assert resolve_path_value("w.pt", str(tmp_path), "weights") == str(tmp_path / "w.pt")
    assert resolve_path_value("yolov8n.pt", str(tmp_path), "weights") == "yolov8n.pt"
    paths = ParamPaths(base_dir="/m", overrides={"track": "/here", "track.weights": "/there", "": "/all"})
    assert paths.folder_for("track.conf") == ("/here", True)
    assert paths.folder_for("track.weights") == ("/there", True)
    assert paths.folder_for("tracker") == ("/all", True)  # "" is `--set params={...}`: everything
    assert ParamPaths(base_dir="/m").folder_for("tracker") == ("/m", False)


def test_without_a_manifest_paths_resolve_from_the_current_directory(project: Path) -> None:
    (Path.cwd() / "w.pt").write_bytes(b"")
    assert stage(build_pipeline("track", {"weights": "w.pt"}), "yolo_detector").weights == str(Path.cwd() / "w.pt")


# ------------------------------------------------------------------ runs and resume


def test_workers_get_the_resolved_path_and_resume_works_from_another_cwd(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's pipeline whose stage reads its weights on a process-pool worker: the run
    from one folder, then the same manifest with more videos from another, resumes."""
    pipeline = "tests.pipelines.user_pipeline:build"
    m = manifest(project, {"weights": "models/w.pt"}, pipeline=pipeline, videos=("a.mp4", "b.mp4"))
    first = run_manifest(load_manifest(m), runner="process", progress=False, log_to_stderr=False)
    assert (first.done, first.failed) == (2, 0)
    out = project / "out"
    info = Dataset(out).info()

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    m = manifest(project, {"weights": "models/w.pt"}, pipeline=pipeline, videos=("a.mp4", "b.mp4", "c.mp4", "d.mp4"))
    second = run_manifest(load_manifest(Path("..") / "project" / "m.yaml"), runner="process", progress=False)
    assert (second.skipped_already_done, second.done, second.failed) == (2, 2, 0)

    after = Dataset(out).info()
    assert after.config_hash == info.config_hash
    assert after.params["weights"] == str(project / "models" / "w.pt")
    digest = hashlib.sha256((project / "models" / "w.pt").read_bytes()).hexdigest()
    con = Dataset(out).connect()
    rows = con.execute("SELECT json_extract_string(extra, '$.weights_sha256') FROM videos").fetchall()
    assert [r[0] for r in rows] == [digest] * 4


@pytest.mark.slow
def test_real_yolo_weights_beside_the_manifest(assets: Path, project: Path) -> None:
    """The track pipeline with real YOLO weights named relative to the manifest, run from
    another folder on the process pool."""
    pytest.importorskip("ultralytics")
    (project / "models" / "yolo").symlink_to(assets / "models" / "yolov8n-int8-tflite", target_is_directory=True)
    video = assets / "videos" / "sam2-demo" / "01_dog.mp4"
    params = {"profile": "lite", "weights": "models/yolo/yolov8n_int8.tflite", "keyframe_fps": 1, "track_fps": 2}
    m = manifest(project, params, videos=(str(video),))
    summary = run_manifest(load_manifest(m), runner="process", progress=False, log_to_stderr=False)
    assert (summary.done, summary.failed) == (1, 0)
    ds = Dataset(project / "out")
    assert ds.info().params["weights"] == str(project / "models" / "yolo" / "yolov8n_int8.tflite")
    categories = {c for (c,) in ds.connect().execute("SELECT DISTINCT category FROM tubelets").fetchall()}
    assert "dog" in categories
