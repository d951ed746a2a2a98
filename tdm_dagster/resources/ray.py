"""The Ray cluster the sharded gate runs on (``gate.engine: ray``), as a dagster-ray resource.

dagster-ray's ``RayResource`` does the connecting (``ray.init(address=...)`` when a step
that uses it starts, disconnect after); this subclass only says where the cluster is:
``ray.address`` from config, or None for a local Ray on the run's machine. Ray is
imported only when a step connects.
"""

from __future__ import annotations

from dagster_ray import RayResource


class TdmRayResource(RayResource):
    address: str | None = None
    """``ray.address``: ``ray://head:10001``, ``head:6379``, ``auto``, or None (local)."""

    @property
    def host(self) -> str:
        return (self.address or "127.0.0.1").split("://")[-1].split(":")[0]

    @property
    def name(self) -> str:
        return f"Ray at {self.address}" if self.address else "local Ray"

    @property
    def ray_address(self) -> str | None:  # type: ignore[override]
        return self.address

    @property
    def created(self) -> bool:
        return True  # a cluster someone started (or a local one ray.init starts): nothing to create

    @property
    def ready(self) -> bool:
        return True
