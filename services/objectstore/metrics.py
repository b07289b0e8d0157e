"""The object store's Prometheus metrics, read at scrape time from the
store's own accounting (nothing is updated per object for them)."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ember_objectstore.store import ObjectStore
from ember_objectstore.transfer import Puller, TransferServer


class ObjectStoreCollector:
    def __init__(self, store: ObjectStore, transfer: TransferServer, puller: Puller) -> None:
        self._store = store
        self._transfer = transfer
        self._puller = puller

    def collect(self) -> Iterator[Metric]:
        shm, spiller = self._store.shm, self._store.spiller
        yield GaugeMetricFamily("ember_object_store_capacity_bytes", "Shared memory the store may use.",
                                value=shm.capacity)
        yield GaugeMetricFamily("ember_object_store_used_bytes",
                                "Shared memory taken by objects (sealed, and reserved for those being written).",
                                value=shm.used)
        yield GaugeMetricFamily("ember_object_store_objects", "Objects in shared memory, sealed or being written.",
                                value=shm.num_objects)
        yield GaugeMetricFamily("ember_object_store_spilled_objects", "Objects spilled to disk now.",
                                value=len(spiller.spilled))
        yield GaugeMetricFamily("ember_object_store_spilled_bytes", "Bytes of the objects spilled to disk now.",
                                value=sum(spiller.spilled.values()))
        yield GaugeMetricFamily("ember_object_store_evicted_objects",
                                "Copies pulled from other nodes dropped to make room (pulled again if read).",
                                value=len(spiller.evicted))
        yield CounterMetricFamily("ember_object_store_spill_bytes", "Bytes spilled to disk since the store started.",
                                  value=spiller.spilled_bytes_total)
        yield CounterMetricFamily("ember_object_store_restore_bytes",
                                  "Bytes restored from disk since the store started.",
                                  value=spiller.restored_bytes_total)
        yield CounterMetricFamily("ember_object_transfer_sent_bytes",
                                  "Object bytes other nodes pulled from this store.", value=self._transfer.sent_bytes)
        yield CounterMetricFamily("ember_object_transfer_received_bytes",
                                  "Object bytes this store pulled from other nodes.",
                                  value=self._puller.received_bytes)
