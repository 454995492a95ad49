"""Which Ray a run uses: its own private instance, unless it is told to join a cluster.

- No ``--address`` and no ``RAY_ADDRESS``: a private local instance, ``ray.init(address=
  "local")``, bound to 127.0.0.1 — never the cluster a ``ray start`` recorded on this
  machine, which plain ``ray.init()`` would join.
- ``--address HOST:PORT`` (or ``ray.address`` in the manifest, or ``RAY_ADDRESS``): join
  that cluster. Token authentication (``RAY_AUTH_MODE=token``) works as Ray documents it:
  the token comes from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``.
  A join that fails says what to check, and a head nobody listens at fails in seconds.
- Ray already initialized in this process (a notebook, a test): used as it is, left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Seconds to wait for a TCP connection to a cluster's head before giving up.
CONNECT_TIMEOUT_S = 5.0


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
    common: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": True}
    target = cluster_address(address)
    if target:
        if num_cpus is not None or num_gpus is not None:
            log.info("ray.num_cpus/num_gpus size a local instance only; the cluster's nodes declare their own")
        join_cluster(target, common)
    else:
        sizes: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}  # Ray types num_gpus int; fractions work
        log.info("starting a private Ray instance (cpus=%s, gpus=%s) on 127.0.0.1", num_cpus, num_gpus)
        with _loopback_only():
            ray.init(address="local", **sizes, _node_ip_address="127.0.0.1", include_dashboard=False, **common)
    try:
        yield
    finally:
        ray.shutdown()


def join_cluster(address: str, options: dict[str, Any]) -> None:
    """``ray.init(address=...)``, with a failure that says what to check."""
    import ray

    log.info("joining the Ray cluster at %s", address)
    _check_reachable(address)
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


def _join_failure(address: str, error: BaseException) -> str:
    import ray

    cause = " ".join(str(error).split())[:400]
    auth = os.environ.get("RAY_AUTH_MODE", "disabled")
    token_hint = (
        f"token authentication: this driver has RAY_AUTH_MODE={auth}; a cluster started with RAY_AUTH_MODE=token "
        "needs RAY_AUTH_MODE=token here too and the cluster's token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
    )
    versions = (
        f"versions: Ray {ray.__version__} and Python {sys.version_info.major}.{sys.version_info.minor} here must "
        "match the cluster's"
    )
    reachability = f"reachability: `ray status --address {address}` from this machine"
    checks = [token_hint, versions, reachability]
    if "auth" not in cause.lower() and "token" not in cause.lower():
        checks = [reachability, token_hint, versions]
    return f"cannot join the Ray cluster at {address}: {cause}. Check " + "; ".join(checks)


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
