"""Which Ray a run uses: its own private instance, unless it is told to join a cluster.

- No ``--address`` and no ``RAY_ADDRESS``: a private local instance, ``ray.init(address=
  "local")``, bound to 127.0.0.1 — never the cluster a ``ray start`` recorded on this
  machine, which plain ``ray.init()`` would join.
- ``--address HOST:PORT`` (or ``ray.address`` in the manifest, or ``RAY_ADDRESS``): join
  that cluster. Token authentication (``RAY_AUTH_MODE=token``) works as Ray documents it:
  the token comes from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``.
  A join that fails says what to check: a head nobody listens at fails in seconds, and a
  cluster that refuses this driver's token (or its lack of one) in milliseconds, not after
  Ray's 20 seconds of retries.
- Ray already initialized in this process (a notebook, a test): used as it is, left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any

from tubelet.engine.errors import error_chain, one_line
from tubelet.engine.remote_media import default_cache_root, remove_dead_caches
from tubelet.engine.runners.ray_output import filter_forwarded_lines, quiet_driver_logs

log = logging.getLogger(__name__)

_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Seconds to wait for a TCP connection to a cluster's head before giving up.
CONNECT_TIMEOUT_S = 5.0
#: Seconds the head may take to answer the handshake (a port that is no Ray head: ~10 s more in Ray).
HANDSHAKE_TIMEOUT_S = 2.0
_AUTH_MODE_ENV = "RAY_AUTH_MODE"
_AUTH_MARKERS = ("invalidauthtoken", "authentication token", "token authentication")


class ClusterConnectionError(RuntimeError):
    """The Ray cluster to join cannot be reached or refuses this driver."""


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``, else None (a private instance)."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None, num_gpus: float | None = None) -> Iterator[None]:
    """Use the Ray already initialized here, else join ``address`` (or ``RAY_ADDRESS``),
    else start a private instance on 127.0.0.1. Only what this started is shut down."""
    import ray

    if ray.is_initialized():
        if address:
            log.warning("Ray is already initialized in this process; ignoring address %s", address)
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    target = cluster_address(address)
    with quiet_driver_logs() as ray_level:  # Ray's own noise stays off the console (ray_output)
        common: dict[str, Any] = {"logging_level": ray_level, "configure_logging": True}
        if target:
            if num_cpus is not None or num_gpus is not None:
                log.info("ray.num_cpus/num_gpus size a local instance only; the cluster's nodes declare their own")
            join_cluster(target, common)
        else:
            sizes: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}  # Ray types num_gpus int
            log.info("starting a private Ray instance (cpus=%s, gpus=%s) on 127.0.0.1", num_cpus, num_gpus)
            with _loopback_only():
                ray.init(address="local", **sizes, _node_ip_address="127.0.0.1", include_dashboard=False, **common)
        filter_forwarded_lines()
        try:
            yield
        finally:
            ray.shutdown()
            if not target:
                # Ray kills its workers without exit hooks: their video caches are left behind
                remove_dead_caches(default_cache_root())


def join_cluster(address: str, options: dict[str, Any]) -> None:
    """``ray.init(address=...)``, with a failure that says what to check."""
    import ray

    log.info("joining the Ray cluster at %s", address)
    _check_reachable(address)
    _check_handshake(address)
    try:
        ray.init(address=address, **options)
    except Exception as error:
        raise ClusterConnectionError(_join_failure(address, error)) from error


def _check_reachable(address: str) -> None:
    """Fail in seconds when nothing listens at ``host:port`` (Ray itself retries for a minute)."""
    if "://" in address:  # ray://, anyscale://: not a GCS address to probe
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterConnectionError(f"bad Ray cluster address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise ClusterConnectionError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({error.strerror or error}). "
            f"Check that the head is running (`ray status --address {address}` on the head) and that this "
            "machine reaches that host and port (firewall, the head's --node-ip-address)"
        ) from None


def _check_handshake(address: str) -> None:
    """Ask the head for its cluster id once, before ``ray.init``: a token the cluster
    refuses fails here at once, where ``ray.init`` would retry it for 20 seconds and then
    report only that it could not connect."""
    if "://" in address:
        return
    from ray.exceptions import RayError

    try:  # Ray's own pre-connection steps; a Ray that moved them gets ray.init's checks only
        from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
        from ray._raylet import InnerGcsClient  # type: ignore[attr-defined]  # a compiled module: no stubs
    except ImportError:
        return
    try:
        # First: with RAY_AUTH_MODE=token and no token at all, the client below aborts the process.
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
        InnerGcsClient.standalone(address, None, int(HANDSHAKE_TIMEOUT_S * 1000))
    except RayError as error:  # AuthenticationError, RpcError (no answer in time)
        raise ClusterConnectionError(_join_failure(address, error)) from error
    except (TypeError, AttributeError) as error:  # a Ray whose internals changed: ray.init checks the same
        log.debug("skipped the handshake with %s: %s", address, error)


def _join_failure(address: str, error: BaseException) -> str:
    """What went wrong joining ``address``, and what to check, most likely first."""
    refusal = _token_refusal(error)
    if refusal is not None:
        return _token_failure(address, refusal)
    checks = [
        f"reachability: `ray status --address {address}` from this machine, and that {address} is the head's "
        "GCS port (`ray start --head --port`, 6379 by default)",
        f"token authentication: {_token_setup()}",
        _versions_hint(),
    ]
    return f"cannot join the Ray cluster at {address}: {one_line(str(error), 400)}. Check " + "; ".join(checks)


def _token_failure(address: str, refusal: str) -> str:
    """The cluster refused this driver's token, or this driver has none to send: which, and where tokens come from."""
    mode = os.environ.get(_AUTH_MODE_ENV) or "unset"
    source = _token_source()
    if mode.lower() != "token":
        problem = (
            f"This machine has {_AUTH_MODE_ENV}={mode}: set {_AUTH_MODE_ENV}=token here, as on the cluster's nodes"
        )
    elif source is None:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH")
        problem = f"{_AUTH_MODE_ENV}=token is set here, but this machine has no token"
        problem += f" (RAY_AUTH_TOKEN_PATH={path} is not a file)" if path else ""
    else:
        problem = f"The token this machine sent (from {source}) is not the cluster's"
    return (
        f"cannot join the Ray cluster at {address}: token authentication failed ({refusal}). {problem}. "
        "Ray reads the token from RAY_AUTH_TOKEN, else from the file RAY_AUTH_TOKEN_PATH names, else from "
        "~/.ray/auth_token: copy the head's ~/.ray/auth_token here (`ray get-auth-token` on the head prints it)"
    )


def _token_refusal(error: BaseException) -> str | None:
    """Ray's own words when ``error``, or an error it was raised from, is about the token; else None.

    ``ray.init`` wraps the refusal in errors that carry it only as text (a traceback)."""
    for current in error_chain(error):
        if type(current).__name__ == "AuthenticationError":
            return one_line(getattr(current, "message", None) or str(current), 400)
        text = str(current)
        if any(marker in text.lower() for marker in _AUTH_MARKERS):
            match = re.search(r"(InvalidAuthToken|Token authentication)[^.]*", text)
            return one_line(match.group(0) if match else text, 400)
    return None


def _token_source() -> str | None:
    """Where Ray takes this machine's token from, in Ray's order; None when there is none."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:  # Ray does not fall back to ~/.ray/auth_token when this is set
        return f"RAY_AUTH_TOKEN_PATH={path}" if os.path.isfile(path) else None
    default = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return default if os.path.isfile(default) else None


def _token_setup() -> str:
    """This driver's token settings, for a message."""
    mode = os.environ.get(_AUTH_MODE_ENV) or "unset"
    source = _token_source()
    token = f"a token from {source}" if source else "no token"
    return (
        f"this machine has {_AUTH_MODE_ENV}={mode} and {token}; a cluster started with {_AUTH_MODE_ENV}=token "
        "needs it here too, with the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
    )


def _versions_hint() -> str:
    import ray

    major, minor = sys.version_info.major, sys.version_info.minor
    return f"versions: Ray {ray.__version__} and Python {major}.{minor} here must match the cluster's"


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local instance starts: make Ray bind 127.0.0.1 only, not every interface.

    Ray reads the switch from the environment once, when it is first imported, so the
    already-imported constant is set too; the processes Ray starts inherit the variable.
    """
    saved_env = os.environ.get(_CLUSTER_ENV)
    os.environ[_CLUSTER_ENV] = "0"
    ray_constants: Any
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray that moved it reads the environment variable
        ray_constants = None
    saved_flag = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    if saved_flag is not None:
        ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_CLUSTER_ENV, None)
        else:
            os.environ[_CLUSTER_ENV] = saved_env


def alive_nodes() -> list[dict[str, Any]]:
    """The cluster's live nodes, as ``ray.nodes()`` describes them."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def total(nodes: list[dict[str, Any]], resource: str) -> float:
    """How much of ``resource`` (``CPU``, ``GPU``, ``memory``) the nodes hold together."""
    return float(sum(n.get("Resources", {}).get(resource, 0.0) for n in nodes))


#: Ray's processes without which this machine's part of a run cannot go on.
_VITAL = ("raylet", "gcs_server")


def dead_local_ray() -> list[str]:
    """The vital Ray processes this process started (a private instance: its raylet, its
    GCS) that have died, as "raylet (pid N, exit -9)"; empty while they live, or when
    this process started none (a joined cluster: Ray reports a lost raylet itself).

    Why ask: with the raylet gone, Ray ends the driver with ``_exit(1)`` at its next call
    that needs it (a ``ray.put``), before Python can record anything; asked first, the
    run stops as failed, saying what died."""
    import ray._private.worker as ray_worker

    node = getattr(ray_worker, "_global_node", None)
    processes = getattr(node, "all_processes", None)
    if not isinstance(processes, dict):
        return []
    dead = []
    for kind in _VITAL:
        for info in processes.get(kind, []):
            process = getattr(info, "process", None)
            if process is not None and process.poll() is not None:
                dead.append(f"{kind} (pid {process.pid}, exit {process.returncode})")
    return dead
