"""How much memory a node offers by default, by Ray's rule: the object
store takes `fraction` (0.3) of the memory available now, capped by
/dev/shm (95% of what is free there, though never below 10 GB) and by
200 GB; the `memory` resource is what is left of the available memory
(ray/_private/resource_and_label_spec.py `_resolve_memory_resources` and
ray/_private/utils.py `resolve_object_store_memory`, Ray 2.60). Shared by
the object store (its capacity), the raylet (its `memory` and
`object_store_memory` resources) and the SDK's node launcher."""

from __future__ import annotations

import os

_SHM_CAP_FLOOR = 10**10  # Ray's REQUIRE_SHM_SIZE_THRESHOLD
_STORE_CAP = 200 * 10**9  # Ray's DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES


def available_bytes() -> int:
    """Memory available now: total minus used (Ray's estimate_available_memory)."""
    import psutil

    vm = psutil.virtual_memory()
    return int(vm.total - vm.used)


def _shm_free_bytes() -> int | None:
    if not os.path.isdir("/dev/shm"):
        return None
    st = os.statvfs("/dev/shm")
    return st.f_bsize * st.f_bavail


def default_object_store_bytes(fraction: float, available: int | None = None) -> int:
    available = available_bytes() if available is None else available
    cap = _STORE_CAP
    shm = _shm_free_bytes()
    if shm is not None:
        cap = min(cap, max(_SHM_CAP_FLOOR, int(shm * 0.95)))
    return min(int(available * fraction), cap)


def default_memory_bytes(object_store_bytes: int, available: int | None = None) -> int:
    """The `memory` resource: what the object store leaves of the available memory."""
    available = available_bytes() if available is None else available
    return max(0, available - object_store_bytes)
