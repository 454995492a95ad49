"""What a Ray run prints: tubelet's own lines, not Ray's noise (unless debug logs are asked for)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tubelet.engine.runners.ray_output import is_ray_noise

ROOT = Path(__file__).resolve().parents[2]

#: The three lines issue 14 found on a user's console, as Ray words them.
NOISE = {
    "token": "Token authentication is enabled for this Ray cluster",
    "constructor": "has constructor arguments in the object store and max_restarts > 0",
    "progress bars": "Progress bars disabled",
}


def test_ray_noise_is_recognised_by_its_format_and_tubelet_lines_are_not():
    assert is_ray_noise(
        "[2026-12-06 06:30:08,711 E 31554 31554] core_worker.cc:2465: Actor with class name: 'Helper' and ID: "
        "'bf61' has constructor arguments in the object store and max_restarts > 0."
    )
    assert is_ray_noise(
        "2026-12-06 06:29:45,893\tWARNING authentication_token_setup.py:85 -- Token authentication is enabled"
    )
    assert is_ray_noise("Progress bars disabled. To enable, set `ray.data.DataContext.get_current()...`")
    assert is_ray_noise("✔️  Dataset dataset_0359_0 execution finished in 0.00 seconds")
    for ours in ("a stage printed this", "stage track_masklets failed on a batch of 2; retrying one by one", ""):
        assert not is_ray_noise(ours)


def run_cli(
    tmp_path: Path, name: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "pipeline": "tests.engine.progress_stages:build",
                "output": str(tmp_path / name),
                "runner": "ray",
                "ray": {"num_cpus": 2},
                "params": {"stages": [{"kind": "ray_noise"}]},
                "videos": [{"uri": "synthetic://a", "video_id": "a"}],
            }
        )
    )
    # as a user who set nothing: an earlier ray.init in this process sets RAY_AUTH_MODE=token,
    # which a child would inherit (and then Ray has no token warning to print)
    unset = ("TUBELET_LOG_LEVEL", "RAY_ADDRESS", "RAY_AUTH_MODE")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), environment.get("PYTHONPATH", "")])
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tubelet", "run", str(manifest), *extra],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.ray
@pytest.mark.slow
def test_a_ray_run_keeps_ray_s_noise_off_the_console_unless_debug_logs_are_asked_for(tmp_path):
    quiet = run_cli(tmp_path, "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "run " in quiet.stdout and "1 done" in quiet.stdout
    assert "starting a private Ray instance" in quiet.stderr  # tubelet's own lines still show
    found = {name for name, text in NOISE.items() if text in quiet.stderr}
    assert not found, quiet.stderr

    # the stage really made the noise: debug logs (-v, or TUBELET_LOG_LEVEL=debug) show it
    loud = run_cli(tmp_path, "loud", env={"TUBELET_LOG_LEVEL": "debug"})
    assert loud.returncode == 0, loud.stderr
    assert {name for name, text in NOISE.items() if text in loud.stderr} == set(NOISE), loud.stderr
