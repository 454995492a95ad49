"""`tubelet preview` and `tubelet report` through the real command line."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image

from tubelet.cli.main import main
from tubelet.engine.dataset import Dataset


def test_preview_and_report_commands(sample_dataset: Path, tmp_path: Path, capsys) -> None:
    video = Dataset(sample_dataset).records("videos")[0]
    mp4, sheet = tmp_path / "v.mp4", tmp_path / "v.png"
    assert (
        main(
            ["preview", str(sample_dataset), "--video", video.video_id, "--to", str(mp4), "--contact-sheet", str(sheet)]
        )
        == 0
    )
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == video.n_frames
    assert Image.open(sheet).size[0] > 0
    instruction = Dataset(sample_dataset).records("instructions")[0]
    view = tmp_path / "i.png"
    assert main(["preview", str(sample_dataset), "--instruction", instruction.instruction_id, "--to", str(view)]) == 0
    Image.open(view).verify()
    assert main(["report", str(sample_dataset), "--to", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "index.html").is_file()
    assert main(["preview", str(sample_dataset), "--video", "no-such-video", "--to", str(tmp_path / "x.gif")]) == 2
    assert "no-such-video" in capsys.readouterr().err
