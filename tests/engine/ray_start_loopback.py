"""``ray start`` for a worker node that joins a loopback-only head on this machine.

Ray refuses to start a worker node while ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and,
with it set to 1, rewrites ``127.0.0.1`` (both ``--address`` and ``--node-ip-address``)
to the machine's outside IP — where a loopback-only head cannot be reached and where the
worker's raylet would then listen. This launcher keeps loopback addresses as given, so
a two-node test cluster listens on 127.0.0.1 only.

    python tests/engine/ray_start_loopback.py start --address=127.0.0.1:PORT --node-ip-address=127.0.0.1 ...
"""

import sys

import ray._private.services as services

services.resolve_ip_for_localhost = lambda host: host

from ray.scripts.scripts import main  # noqa: E402 - after the patch

if __name__ == "__main__":
    sys.exit(main())
