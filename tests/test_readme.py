"""README's quick start and the Makefile's demo say the same thing, and following it works.

The Makefile's ``demo`` target is the source: the ``tubelet`` commands it runs and the
paths it lists at its end (``$(call demo_wrote,PATH,WHAT)``, each checked to exist). The
README's "Quick start" must show those commands, in order, and those paths; its first
block (activate the venv, then look at the results) must hold the commands the demo's
last lines suggest. The slow test runs the README's commands literally.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def demo_recipe() -> list[str]:
    """The recipe lines of the Makefile's ``demo`` target, without their tab."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("demo:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line[1:])
    return recipe


def make_commands() -> list[str]:
    """The ``tubelet`` commands ``make demo`` runs, as a shell user types them."""
    return [
        "tubelet " + line.removeprefix("$(BIN)/tubelet ").replace("$$", "$")
        for line in demo_recipe()
        if line.startswith("$(BIN)/tubelet ")
    ]


def make_outputs() -> list[str]:
    """The paths ``make demo`` lists (and checks) at its end."""
    return [m.group(1) for line in demo_recipe() if (m := re.match(r"@\$\(call demo_wrote,([^,]+),", line))]


def make_next_commands() -> list[str]:
    """The commands the demo's last lines suggest."""
    found = [re.match(r'@echo " +(tubelet .*)"$', line) for line in demo_recipe()]
    return [m.group(1).replace('\\"', '"') for m in found if m]


def quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quick start")
    return text[start : text.index("\n## ", start + 1)]


def code_blocks(section: str) -> list[list[str]]:
    """Each ```bash block: its commands, comments stripped."""
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [[re.sub(r"\s+#\s.*$", "", line).strip() for line in b.splitlines() if line.strip()] for b in blocks]


def readme_outputs(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_the_readme_quick_start_shows_the_demo_s_commands_and_paths():
    section = quick_start()
    first, demo = code_blocks(section)[:2]
    assert demo == make_commands()
    assert readme_outputs(section) == make_outputs()
    # how to get `tubelet` on PATH comes right after make demo, before any tubelet command
    assert first[:2] == ["make demo", "source .venv/bin/activate"]
    assert set(make_next_commands()) <= set(first[2:]) and make_next_commands()
    assert "`../shared/assets`" in section and "TUBELET_ASSETS" in section


def test_every_listed_path_is_written_by_a_demo_command():
    written = set()
    for command in make_commands():
        args = shlex.split(command)
        if args[1] == "run":  # a manifest's output, which is relative to the manifest's folder
            manifest = ROOT / args[2]
            output = yaml.safe_load(manifest.read_text())["output"]
            written.add(os.path.relpath((manifest.parent / output).resolve(), ROOT))
        written.update(a for a in args[2:] if a.startswith("out/"))
    assert {path.rstrip("/") for path in make_outputs()} <= written


def closing_makefile(tmp_path: Path) -> Path:
    """A makefile of the demo's closing lines alone (no install, no demo): ``make -f`` runs them."""
    source = (ROOT / "Makefile").read_text()
    definition = next(line for line in source.splitlines() if line.startswith("demo_wrote ="))
    closing = [line for line in demo_recipe() if line.startswith("@")]
    path = tmp_path / "closing.mk"
    path.write_text(definition + "\n\nclosing:\n" + "".join(f"\t{line}\n" for line in closing))
    return path


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_demo_ends_by_listing_what_it_wrote_and_fails_when_one_is_missing(tmp_path):
    makefile = closing_makefile(tmp_path)
    for path in make_outputs():
        target = tmp_path / path
        if path.endswith("/"):
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x")
    done = subprocess.run(["make", "-s", "-f", str(makefile)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  out/")]
    assert listed == make_outputs()
    assert "source .venv/bin/activate" in done.stdout
    assert [line.strip() for line in done.stdout.splitlines() if line.startswith("  tubelet ")] == make_next_commands()

    (tmp_path / "out" / "demo-preview.gif").unlink()
    missing = subprocess.run(["make", "-s", "-f", str(makefile)], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "make demo: out/demo-preview.gif is missing" in missing.stderr


def tubelet_argv(command: str) -> list[str]:
    args = shlex.split(command)
    assert args[0] == "tubelet"
    return [sys.executable, "-m", "tubelet", *args[1:]]


@pytest.mark.slow
def test_following_the_quick_start_literally_works(tmp_path):
    """Every README command, run as written (`tubelet` from this tree) from a copy of the
    repository's manifests: the demo's commands, its listed paths, then the next steps."""
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    first, demo = code_blocks(quick_start())[:2]
    for command in demo + [c for c in first if c.startswith("tubelet ")]:
        done = subprocess.run(tubelet_argv(command), cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    for path in make_outputs():
        assert (tmp_path / path).exists(), path
    assert (tmp_path / "out" / "demo-release" / "README.md").is_file()
    assert (tmp_path / "out" / "demo-report" / "index.html").is_file()
    if shutil.which("make"):
        closing = subprocess.run(["make", "-s", "-f", str(closing_makefile(tmp_path))], cwd=tmp_path)
        assert closing.returncode == 0
