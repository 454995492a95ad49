"""A real S3-protocol server on 127.0.0.1 for the tests: moto's ThreadedMotoServer, what
s3fs and pyarrow use in their own suites.

Its port is chosen when the test session starts and the standard AWS variables point at
it (``AWS_ENDPOINT_URL`` and test credentials), so every process the tests start — CLI
runs, process-pool and Ray workers — reaches it the way a user's tools reach S3.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

#: The variables a user sets for S3-compatible storage; the tests set them the same way.
AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def point_aws_at(port: int) -> dict[str, str]:
    """The AWS variables for a server on ``port`` (test credentials, nothing real)."""
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "tubelet-test-key",
        "AWS_SECRET_ACCESS_KEY": "tubelet-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@dataclass
class S3:
    """The running server and one bucket of this session."""

    endpoint: str
    bucket: str
    server: Any

    def url(self, *parts: str) -> str:
        """``s3://<bucket>/<parts>``; a fresh prefix per call when no parts are given."""
        return f"s3://{self.bucket}/" + "/".join(parts or (uuid.uuid4().hex[:12],))

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def start_server(port: int) -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def new_bucket(fs: Any) -> str:
    name = f"tubelet-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    return name


def env_is_set(port: int) -> bool:
    return os.environ.get("AWS_ENDPOINT_URL") == f"http://127.0.0.1:{port}"
