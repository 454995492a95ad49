"""The README's cluster recipe, run as written, and what a run does with a cluster beside it.

One two-node cluster serves every test: the README's own commands (the token, ``ray start
--head``, a second ``ray start --address``) run in a network namespace of this module's
own that has only a loopback interface, with the README's head address replaced by
127.0.0.1. Everything they start listens there, out of reach of the machine's networks
and of anyone else's ports, and is found and ended by that namespace, never with ``ray
stop`` (which ends every Ray process on the machine). The recipe's shell has a HOME (its
token) and a RAY_TMPDIR (where ``ray start`` records the cluster for a plain
``ray.init()``) of its own; every ``tubelet run`` here gets the same, so it meets the
cluster exactly as it would on a node of a real one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.engine.cluster_recipe import Step, cluster_recipe
from tests.engine.netns import NamespaceUnavailableError, NetworkNamespace, can_create_directly
from tests.engine.raytools import is_loopback, listening_sockets

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LOOPBACK = "127.0.0.1"
#: The recipe's steps in the README's order; a README that changes them changes this test.
RECIPE = ["env", "token", "head", "copy_token", "worker", "run", "stop"]
#: Steps the tests do not run as written, and why.
NOT_RUN = {
    "copy_token": "the test's machines share one HOME, so ~/.ray/auth_token already is the head's",
    "run": "each test runs it with a manifest of its own",
    "stop": "ray stop ends every Ray process on the machine; the namespace's processes are ended by pid",
}
#: A token join that fails must fail well before Ray's own 20 seconds of retries.
FAST_FAILURE_S = 15.0

#: A driver that joins whatever a plain ``ray.init()`` finds and describes it.
PROBE = """
import json, logging, ray
ray.init(logging_level=logging.ERROR)
print("PROBE " + json.dumps({
    "gcs": ray.get_runtime_context().gcs_address,
    "nodes": {node["NodeID"]: node["Alive"] for node in ray.nodes()},
    "jobs": [{"entrypoint": job.get("Entrypoint", ""), "dead": job["IsDead"]} for job in ray._private.state.jobs()],
}))
"""

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.ray]


@dataclass
class Finished:
    """A command that ran in the namespace: exit code, output, and how long it took."""

    returncode: int
    output: str
    seconds: float
    inside: list[tuple[str, int]] = field(default_factory=list)  # listeners seen in the namespace meanwhile
    outside: list[tuple[str, int]] = field(default_factory=list)  # the namespace's processes' listeners outside

    @property
    def error(self) -> str:
        """The CLI's one-line error."""
        return next((line for line in self.output.splitlines() if line.startswith("tubelet: error:")), "")


@dataclass
class LoopbackCluster:
    """The README's cluster, started in a loopback-only network namespace."""

    namespace: NetworkNamespace
    env: dict[str, str]
    steps: list[Step]
    logs: Path
    nodes: set[str] = field(default_factory=set)
    first_probe: dict[str, Any] = field(default_factory=dict)
    started_outside: list[tuple[str, int]] = field(default_factory=list)  # listeners outside while starting

    @property
    def address(self) -> str:
        """The head's GCS address, as the recipe's ``ray start --head --port`` set it."""
        port = re.search(r"--port[= ](\d+)", self.step("head").line)
        return f"{LOOPBACK}:{port.group(1) if port else 6379}"

    def step(self, kind: str) -> Step:
        return next(step for step in self.steps if step.kind == kind)

    def start(self) -> None:
        """Run the recipe up to the workers; wait until both nodes are in."""
        for step in self.steps:
            if step.kind == "env":
                name, value = step.env()
                self.env[name] = value
            elif step.kind not in NOT_RUN:
                done = self.run(step.on(LOOPBACK), timeout_s=120)
                assert done.returncode == 0, f"{step.line} failed:\n{done.output[-3000:]}"
                self.started_outside += done.outside
        self.first_probe = self.wait_for_nodes(2)
        self.nodes = set(self.first_probe["nodes"])

    def run(self, command: str, env: dict[str, str] | None = None, timeout_s: float = 240) -> Finished:
        """``command`` in the namespace's shell; listeners are sampled while it runs."""
        log = self.logs / f"{time.monotonic_ns()}.log"
        started = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.Popen(
                self.namespace.command(["bash", "-c", command]),
                env=env or self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest is not sent to the daemons; teardown ends them
            )
            inside, outside = self._sample_listeners_until_done(proc, started + timeout_s)
        return Finished(proc.returncode, log.read_text(), time.monotonic() - started, inside, outside)

    def probe(self) -> dict[str, Any]:
        """What a plain ``ray.init()`` in the recipe's shell joins: its GCS, nodes and jobs."""
        done = self.run(shlex.join([sys.executable, "-c", PROBE]), timeout_s=60)
        assert done.returncode == 0, done.output[-3000:]
        return json.loads(done.output.split("PROBE ", 1)[1].splitlines()[0])

    def wait_for_nodes(self, count: int, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.probe()
            if sum(found["nodes"].values()) >= count or time.monotonic() > deadline:
                assert sum(found["nodes"].values()) == count, f"expected {count} live nodes: {found}"
                return found
            time.sleep(0.5)

    def _sample_listeners_until_done(
        self, proc: subprocess.Popen[bytes], deadline: float
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        inside: set[tuple[str, int]] = set()
        outside: set[tuple[str, int]] = set()
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"timed out: {proc.args}")
            ours = self.namespace.pids()
            inside.update(self.namespace.listeners())
            outside.update(s for s in listening_sockets() if s[1] in ours)
            time.sleep(0.5)
        return sorted(inside), sorted(outside)


def recipe_env(root: Path) -> dict[str, str]:
    """The recipe's shell: this environment without the Ray settings a user's shell would
    not have (an address, a token, the test session's loopback switch, which makes ``ray
    start`` refuse worker nodes), with a HOME and a RAY_TMPDIR of its own."""
    dropped = (
        "RAY_ADDRESS",
        "RAY_AUTH_MODE",
        "RAY_AUTH_TOKEN",
        "RAY_AUTH_TOKEN_PATH",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
    )
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    home = root / "home"
    home.mkdir()
    env.update(
        HOME=str(home),
        RAY_TMPDIR=str(root),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(ROOT),  # the test pipeline, on every node's workers too
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `ray`, `tubelet` of this venv
    )
    return env


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (the cluster's temp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and text in cmdline:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """The README's two-node cluster on the namespace's loopback; everything of it ended after."""
    steps = cluster_recipe(README)
    assert [step.kind for step in steps] == RECIPE, "the README's cluster recipe changed: teach this test"
    namespace = _namespace_or_skip()
    root = Path(tempfile.mkdtemp(prefix="/tmp/tbn"))  # short: Ray's socket paths must fit 107 bytes
    try:
        assert namespace.interfaces() == ["lo"], "the namespace has more than a loopback interface"
        started = LoopbackCluster(namespace, recipe_env(root), steps, tmp_path_factory.mktemp("cluster-logs"))
        started.start()
        yield started
    finally:
        left = namespace.stop_processes(grace_s=2)
        namespace.close()
        strays = processes_mentioning(str(root))
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"processes left in the namespace: {left}"
    assert not strays, f"processes of the cluster outside the namespace: {strays}"


def _namespace_or_skip() -> NetworkNamespace:
    try:
        return NetworkNamespace.create()
    except NamespaceUnavailableError as error:
        if can_create_directly():
            raise  # root can always make one: a failure here is a real problem, not a reason to skip
        pytest.skip(
            "cannot create a network namespace: not root (no CAP_SYS_ADMIN) and no unprivileged user "
            f"namespaces ({error})"
        )


def write_manifest(folder: Path, videos: int) -> Path:
    """A manifest of ``videos`` synthetic videos whose ``where`` stage notes the node of each batch."""
    notes = folder / "notes"
    notes.mkdir()
    manifest = {
        "pipeline": "tests.engine.pipelines_for_tests:build",
        "output": str(folder / "out"),
        "shard_size": 2,
        "params": {
            "stages": [
                {"kind": "make"},
                {"kind": "slow", "sleep_s": 0.25},
                {"kind": "where", "notes": str(notes)},
                {"kind": "instruct"},
            ]
        },
        "videos": [{"uri": f"synthetic://v{i}", "video_id": f"v{i:03d}"} for i in range(videos)],
    }
    path = folder / "manifest.yaml"
    path.write_text(json.dumps(manifest, indent=1))  # JSON is YAML
    return path


def nodes_that_ran(folder: Path) -> set[str]:
    return {note.read_text() for note in (folder / "notes").glob("node-*")}


def videos_written(output: Path) -> tuple[int, int]:
    from tubelet.engine.dataset import Dataset

    con = Dataset(output).connect()
    return con.execute("select count(*), count(distinct video_id) from videos").fetchone()


def jobs_of(probe: dict[str, Any], manifest: Path) -> list[dict[str, Any]]:
    """The cluster's jobs whose driver ran ``manifest``."""
    return [job for job in probe["jobs"] if str(manifest) in job["entrypoint"]]


def test_readme_recipe_runs_on_both_nodes_and_on_loopback_only(cluster: LoopbackCluster, tmp_path: Path) -> None:
    videos = 16
    manifest = write_manifest(tmp_path, videos)

    run = cluster.run(cluster.step("run").run_with(str(manifest), LOOPBACK))

    assert run.returncode == 0, run.output[-4000:]
    assert nodes_that_ran(tmp_path) == cluster.nodes, "every batch ran on the cluster, on both of its nodes"
    assert videos_written(tmp_path / "out") == (videos, videos)
    after = cluster.probe()
    assert after["nodes"] == dict.fromkeys(cluster.nodes, True)
    assert [job["dead"] for job in jobs_of(after, manifest)] == [True], "one driver, disconnected when done"
    assert any(address.endswith(f":{cluster.address.rsplit(':', 1)[1]}") for address, _ in run.inside)
    assert [s for s in run.inside if not is_loopback(s[0])] == [], "the cluster listens beyond 127.0.0.1"
    assert cluster.started_outside + run.outside == [], "the namespace's processes listen on the machine's network"


def test_plain_run_starts_its_own_ray_beside_the_cluster(cluster: LoopbackCluster, tmp_path: Path) -> None:
    # The premise: in this shell a plain ray.init() joins the cluster (ray start recorded it here).
    assert cluster.first_probe["gcs"] == cluster.address
    manifest = write_manifest(tmp_path, videos=4)

    run = cluster.run(shlex.join(["tubelet", "run", str(manifest), "--runner", "ray"]))

    assert run.returncode == 0, run.output[-4000:]
    assert videos_written(tmp_path / "out") == (4, 4)
    ran_on = nodes_that_ran(tmp_path)
    assert len(ran_on) == 1 and not ran_on & cluster.nodes, "the run's one node is its own, not the cluster's"
    after = cluster.probe()
    assert after["gcs"] == cluster.address, "the cluster is still the one a plain ray.init() finds"
    assert after["nodes"] == dict.fromkeys(cluster.nodes, True), "no node joined the cluster, not even for a while"
    assert jobs_of(after, manifest) == [], "the run never connected to the cluster"
    assert [s for s in run.inside if not is_loopback(s[0])] == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"RAY_AUTH_MODE": None}, ["RAY_AUTH_MODE=unset: set RAY_AUTH_MODE=token here"]),
        ({"RAY_AUTH_TOKEN": "0" * 32}, ["token this machine sent (from RAY_AUTH_TOKEN) is not the cluster's"]),
    ],
    ids=["without-RAY_AUTH_MODE", "wrong-token"],
)
def test_a_refused_token_says_what_to_fix(
    cluster: LoopbackCluster, tmp_path: Path, change: dict[str, str | None], expected: list[str]
) -> None:
    env = {name: value for name, value in cluster.env.items() if name not in change}
    env.update({name: value for name, value in change.items() if value is not None})
    manifest = write_manifest(tmp_path, videos=2)

    run = cluster.run(shlex.join(["tubelet", "run", str(manifest), "--address", cluster.address]), env=env)

    assert run.returncode == 2, run.output[-3000:]
    for phrase in [cluster.address, "token authentication", "~/.ray/auth_token", "RAY_AUTH_TOKEN_PATH", *expected]:
        assert phrase in run.error, f"{phrase!r} missing from: {run.error}"
    assert run.seconds < FAST_FAILURE_S, f"took {run.seconds:.1f} s to fail"
