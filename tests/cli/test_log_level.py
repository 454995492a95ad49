"""How a command's log level is chosen: --log-level, -v/--verbose, TUBELET_LOG_LEVEL, the default."""

from __future__ import annotations

import pytest

from tubelet.cli.common import CommandError, log_level
from tubelet.cli.main import build_parser, main


def level_of(argv: list[str], default: str = "warning") -> str:
    return log_level(build_parser().parse_args(argv), default)


def test_flags_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv("TUBELET_LOG_LEVEL", raising=False)
    assert level_of(["status", "out"]) == "warning"
    assert level_of(["run", "m.yaml"], "info") == "info"
    assert level_of(["run", "m.yaml", "-v"], "info") == "debug"
    assert level_of(["-v", "status", "out"]) == "debug"
    assert level_of(["status", "out", "--verbose"]) == "debug"
    assert level_of(["review", "serve", "-v"]) == "debug"
    monkeypatch.setenv("TUBELET_LOG_LEVEL", "DEBUG")
    assert level_of(["run", "m.yaml"], "info") == "debug"
    assert level_of(["run", "m.yaml", "--log-level", "error"], "info") == "error"  # a flag wins


def test_a_bad_environment_level_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("TUBELET_LOG_LEVEL", "loud")
    with pytest.raises(CommandError, match="TUBELET_LOG_LEVEL='loud' is no log level"):
        level_of(["status", "out"])
    assert main(["status", "out"]) == 2
    assert "tubelet: error: TUBELET_LOG_LEVEL='loud' is no log level" in capsys.readouterr().err
