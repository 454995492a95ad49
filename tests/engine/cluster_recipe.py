"""The README's cluster recipe ("On a cluster"), read from the README itself so the tests
run what users read.

Every command line of the section's first ``bash`` block becomes a ``Step`` of a known
kind; a line of no known kind is an error, so a README change that adds a step has to be
taught to the tests too.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

#: The head's address in the README (a documentation address); tests put theirs in its place.
README_HEAD_IP = "10.0.0.5"
SECTION = "## On a cluster"

#: What each command of the recipe does, by the shape of its line.
KINDS: dict[str, str] = {
    "env": r"^export [A-Z_]+=\S+$",
    "token": r"^ray get-auth-token --generate$",
    "head": r"^ray start --head\b",
    "copy_token": r"\bscp\b.*\.ray/auth_token",
    "worker": r"^ray start --address=",
    "run": r"^tubelet run \S+",
    "stop": r"^ray stop$",
}


@dataclass(frozen=True)
class Step:
    """One command of the recipe."""

    kind: str
    line: str

    def on(self, head_ip: str) -> str:
        """The command with the README's head address replaced by ``head_ip``."""
        return self.line.replace(README_HEAD_IP, head_ip)

    def env(self) -> tuple[str, str]:
        """``NAME, VALUE`` of an ``export NAME=VALUE`` step."""
        name, _, value = self.line.removeprefix("export ").partition("=")
        return name, value

    def run_with(self, manifest: str, head_ip: str) -> str:
        """A ``tubelet run`` step on ``head_ip`` with ``manifest`` in place of the README's."""
        words = shlex.split(self.on(head_ip))
        words[2] = manifest
        return shlex.join(words)


def cluster_recipe(readme: Path) -> list[Step]:
    """The steps of the README's cluster recipe, in order."""
    return [Step(kind_of(line), line) for line in _commands(_first_bash_block(_section(readme.read_text())))]


def kind_of(line: str) -> str:
    """Which step ``line`` is; ValueError for a command the tests do not know."""
    kinds = [kind for kind, pattern in KINDS.items() if re.search(pattern, line)]
    if len(kinds) != 1:
        raise ValueError(f"the README's cluster recipe has a command the tests do not know: {line!r}")
    return kinds[0]


def _section(text: str) -> str:
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _first_bash_block(section: str) -> str:
    match = re.search(r"^```bash\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    if match is None:
        raise ValueError(f"no ```bash block under {SECTION!r} in the README")
    return match.group(1)


def _commands(block: str) -> list[str]:
    """The block's command lines, without comments and blank lines."""
    commands = []
    for raw in block.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()  # a comment: '#' at the start or after a space
        if line:
            commands.append(line)
    return commands
