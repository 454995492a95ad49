"""How a pipeline's stages are grouped into the steps a distributed runner schedules.

A *step* is a maximal run of consecutive stages on the same kind of device: stages that
need no GPU form CPU steps, stages that need one form GPU steps. A step runs its stages
one after another on one worker, so a video crosses the network only where the device
changes, and two models that share a GPU (a detector and a tracker) live in one process
on it rather than each reserving a GPU of its own. A step that keeps state (a stage with
a ``setup()`` of its own, or a GPU) runs in an actor pool; the others run as tasks. Its
resources are the largest any of its stages asks for, since they run in turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tubelet.engine.resources import Resources
from tubelet.engine.runners.common import batch_size
from tubelet.engine.stage import Stage


@dataclass(frozen=True)
class Step:
    """Consecutive stages run together on one worker."""

    stages: tuple[Stage, ...]

    @property
    def name(self) -> str:
        return "+".join(s.name for s in self.stages)

    @property
    def resources(self) -> Resources:
        memory = [s.resources.memory for s in self.stages if s.resources.memory]
        return Resources(
            cpus=max(s.resources.cpus for s in self.stages),
            gpus=max(s.resources.gpus for s in self.stages),
            memory=max(memory) if memory else None,
        )

    @property
    def stateful(self) -> bool:
        """Whether the step needs long-lived workers (an actor pool)."""
        return any(s.needs_actor for s in self.stages)

    @property
    def on_gpu(self) -> bool:
        return self.resources.gpus > 0


def plan_steps(stages: Sequence[Stage]) -> list[Step]:
    """The steps of ``stages``: consecutive stages grouped by whether they need a GPU."""
    steps: list[Step] = []
    group: list[Stage] = []
    for stage in stages:
        if group and (stage.resources.gpus > 0) != (group[-1].resources.gpus > 0):
            steps.append(Step(tuple(group)))
            group = []
        group.append(stage)
    if group:
        steps.append(Step(tuple(group)))
    return steps


def smallest_bundle(stages: Sequence[Stage]) -> int:
    """The fewest videos a bundle should hold: the largest stage batch, so batches stay whole."""
    return max([batch_size(s) for s in stages] + [1])


class ResourceError(RuntimeError):
    """A stage asks for resources no node of the cluster has (Ray would wait forever)."""


@dataclass(frozen=True)
class Node:
    """What one node of the cluster holds."""

    cpus: float
    gpus: float = 0.0
    memory: float = 0.0


def cluster_of(nodes: list[dict[str, Any]]) -> list[Node]:
    """Nodes as ``ray.nodes()`` describes them, reduced to what scheduling needs."""
    return [
        Node(
            cpus=float(n.get("Resources", {}).get("CPU", 0.0)),
            gpus=float(n.get("Resources", {}).get("GPU", 0.0)),
            memory=float(n.get("Resources", {}).get("memory", 0.0)),
        )
        for n in nodes
    ]


@dataclass(frozen=True)
class Placement:
    """How a step runs: how many workers at once, each reserving ``resources``."""

    workers: int
    resources: Resources


def workers_that_fit(res: Resources, nodes: Sequence[Node], name: str = "stage") -> int:
    """How many workers needing ``res`` the cluster can hold at once; ResourceError if none."""
    fit = 0
    for node in nodes:
        counts = [
            math.floor(have / need + 1e-9)
            for have, need in ((node.cpus, res.cpus), (node.gpus, res.gpus), (node.memory, float(res.memory or 0)))
            if need > 0
        ]
        fit += min(counts) if counts else 64  # a stage that reserves nothing: cap the pool anyway
    if fit < 1:
        cluster = {"CPU": sum(n.cpus for n in nodes), "GPU": sum(n.gpus for n in nodes)}
        hint = " (declare GPUs with ray.num_gpus for a local instance, or add GPU nodes)" if res.gpus else ""
        raise ResourceError(
            f"stage {name} needs {res} per worker, which no node of the Ray cluster has "
            f"(cluster: {cluster}){hint}; Ray would wait for it forever"
        )
    return fit


def size_steps(steps: Sequence[Step], nodes: Sequence[Node]) -> list[Placement]:
    """Workers per step, so that every step can run at once (an actor pool holds its CPUs
    for the whole run; a step that could never get a CPU would stall the stream).

    GPU steps get a worker per GPU they fit. The CPUs left are shared evenly between the
    CPU steps; when a step's tasks would find no CPU free beside the actor pools, they
    reserve what is left (at least a tenth of a CPU) instead of waiting forever.
    ResourceError for a step no node can hold at all.
    """
    capacity = [workers_that_fit(step.resources, nodes, step.name) for step in steps]
    placements: list[Placement | None] = [None] * len(steps)
    cpus_left = sum(n.cpus for n in nodes)
    for i, step in enumerate(steps):
        if step.on_gpu:
            placements[i] = Placement(capacity[i], step.resources)
            cpus_left -= capacity[i] * step.resources.cpus if step.stateful else 0
    cpu_steps = [i for i, step in enumerate(steps) if not step.on_gpu]
    share = max(cpus_left, 0.0) / max(len(cpu_steps), 1)
    for i in cpu_steps:
        res = steps[i].resources
        workers = max(min(capacity[i], math.floor(share / max(res.cpus, 1e-9) + 1e-9)), 1)
        if steps[i].stateful:
            cpus_left -= workers * res.cpus
        placements[i] = Placement(workers, res)
    free = max(cpus_left, 0.0)
    for i in cpu_steps:
        placed = placements[i]
        assert placed is not None
        if not steps[i].stateful and placed.resources.cpus > free:
            placements[i] = Placement(placed.workers, replace(placed.resources, cpus=max(round(free, 2), 0.1)))
    return [p for p in placements if p is not None]
