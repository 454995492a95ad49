"""Same input, same output: a video's computation depends on the run's seed, the video and
the stage's config — never on what the process did before, nor on the runner.

Some libraries draw from a process-wide generator that nobody hands them: OpenCV's
GrabCut and KNN background subtraction draw from OpenCV's RNG, a sampling VLM from
torch's. Left alone, such a generator carries its state from one video to the next, so a
video's rows would depend on which videos the same worker processed before it — on the
runner, the pool size and the video order. Thread counts matter too: torch splits a
float sum over its CPU threads, and the runners give a process different counts (Ray
sets ``OMP_NUM_THREADS`` to the CPUs a worker reserves; inline and the process pool leave
every core), so the same model gives other last bits.

A stage that may reach either calls ``start_video(seed, video_id, cpus)`` before it works
on a video: every process-wide generator starts that video from ``video_seed(seed,
video_id)``, and torch computes on the ``cpus`` the stage reserves (``Resources.cpus``)
— the same on every runner.

    start_video(self.seed, task.video_id, self.resources.cpus)   # each video, in the stage's thread
"""

from __future__ import annotations

import hashlib
import random
import sys

import numpy as np

#: Seeds are 31-bit: what every generator below accepts (OpenCV's takes a signed int).
SEED_BITS = 31


def video_seed(seed: int, video_id: str) -> int:
    """The seed of ``video_id`` in a run seeded ``seed``: a hash of both (SHA-256), so it is
    the same in every process, on every machine, in any order."""
    digest = hashlib.sha256(f"{int(seed)}:{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def derived_seed(seed: int, *keys: object) -> int:
    """A seed for one piece of work inside a video (``keys``: e.g. a frame index), from ``seed``."""
    text = ":".join(str(k) for k in (int(seed), *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (1 << SEED_BITS)


def seed_global_rngs(seed: int) -> None:
    """Start every process-wide generator from ``seed``: Python's ``random``, NumPy's legacy
    global one, and — only when the process has imported them already — OpenCV's (per
    thread: the caller's) and torch's (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setRNGSeed(seed)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)


def seed_video(seed: int, video_id: str) -> int:
    """Seed every process-wide generator for ``video_id`` in a run seeded ``seed``; the video's seed."""
    value = video_seed(seed, video_id)
    seed_global_rngs(value)
    return value


def pin_torch_threads(cpus: float) -> None:
    """Run torch's CPU kernels on ``cpus`` threads (at least one), when torch is imported.
    Measured: SAM 2.1-tiny's object scores moved by 2e-8 between 1 and 2 threads."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_num_threads"):
        return
    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def start_video(seed: int, video_id: str, cpus: float) -> int:
    """``seed_video`` and ``pin_torch_threads``: what a stage calls before each video; the video's seed."""
    pin_torch_threads(cpus)
    return seed_video(seed, video_id)
