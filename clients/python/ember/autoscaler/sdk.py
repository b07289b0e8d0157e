"""Ask the autoscaler for room ahead of work, as Ray's
`ray.autoscaler.sdk.request_resources`:

    from ember.autoscaler.sdk import request_resources
    request_resources(num_cpus=8)                       # 8 x {"CPU": 1}
    request_resources(bundles=[{"CPU": 1, "accel": 1}] * 4)
    request_resources()                                 # withdraw the request

The cluster is scaled until these bundles fit its nodes' total resources
(whatever runs there meanwhile), launching at once, past upscaling_speed,
and kept at least that large. Each call replaces the one before; the request
lasts until replaced (it is kept by the GCS, across a failover)."""

from __future__ import annotations

from typing import Mapping, Sequence

from ember.v1 import gcs_pb2

# (the GCS autoscaler reads it here: services/autoscaler/demand.py)
_NAMESPACE = "ember_autoscaler"
_KEY = b"resource_request"
_MAX_BUNDLES = 10_000


def _checked(num_cpus: int | None, bundles: Sequence[Mapping[str, float]] | None) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    if num_cpus is not None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 0:
            raise TypeError(f"num_cpus must be a non-negative int, got {num_cpus!r}")
        out += [{"CPU": 1.0}] * num_cpus
    if bundles is not None:
        if isinstance(bundles, (str, bytes, Mapping)) or not isinstance(bundles, Sequence):
            raise TypeError(f"bundles must be a list of dicts, got {type(bundles).__name__}")
        for i, bundle in enumerate(bundles):
            if (not isinstance(bundle, Mapping) or not bundle or not all(isinstance(k, str) and k for k in bundle)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                               for v in bundle.values())
                    or sum(bundle.values()) <= 0):
                raise TypeError(f"bundle {i} must map resource names to non-negative amounts, some positive; "
                                f"got {bundle!r}")
            out.append({k: float(v) for k, v in bundle.items()})
    if len(out) > _MAX_BUNDLES:
        raise ValueError(f"at most {_MAX_BUNDLES} bundles (num_cpus counts one each), got {len(out)}")
    return out


def request_resources(num_cpus: int | None = None, bundles: Sequence[Mapping[str, float]] | None = None) -> None:
    """Scale the cluster so that `num_cpus` CPUs (as {"CPU": 1} bundles)
    and `bundles` fit; replaces the previous request (none: withdraw it)."""
    import json

    from ember._private import runtime

    value = json.dumps({"bundles": _checked(num_cpus, bundles)}, sort_keys=True).encode()
    runtime.client().gcs.KvPut(gcs_pb2.KvPutRequest(namespace=_NAMESPACE, key=_KEY, value=value, overwrite=True),
                               timeout=30)
