"""The nodes the autoscaler launched, in the GCS tables (on etcd when the
GCS is): a launch is stored before the provider is asked, so a standby that
takes over knows every launch under way and starts none twice."""

from __future__ import annotations

from ember.v1 import autoscaler_pb2

from ember_gcs.storage import Storage

TABLE = "autoscaler_instances"
Instance = autoscaler_pb2.AutoscalerInstance


class InstanceTable:
    table = TABLE

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._rows: dict[str, Instance] = {}

    def restore(self, rows: dict[bytes, bytes]) -> None:
        self._rows = {key.decode(): Instance.FromString(raw) for key, raw in rows.items()}

    async def put(self, instance: Instance) -> None:
        """Stored first: a failed write (a deposed leader's) changes nothing here."""
        await self._storage.put(TABLE, instance.instance_id.encode(), instance.SerializeToString())
        self._rows[instance.instance_id] = instance

    async def delete(self, instance_id: str) -> None:
        await self._storage.delete(TABLE, instance_id.encode())
        self._rows.pop(instance_id, None)

    def get(self, instance_id: str) -> Instance | None:
        return self._rows.get(instance_id)

    def all(self) -> list[Instance]:
        return list(self._rows.values())
