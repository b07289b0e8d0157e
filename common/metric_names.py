"""Which application metric names (ember.util.metrics) a node exports, in
one place for the SDK, which refuses the others at definition, and the
raylet, which drops them from any client."""

from __future__ import annotations

import re

# Prometheus' metric names (Ray's rule): letters, digits, _ and :, not starting with a digit.
VALID_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# Label names: no ':', and names starting with "__" are Prometheus' own.
VALID_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Ember's own metrics and the standard process metrics every endpoint serves:
# an application metric of such a name would clash with them on /metrics.
RESERVED_PREFIXES = ("ember_", "process_")


def reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIXES)


def valid_label(key: str) -> bool:
    return bool(VALID_LABEL.match(key)) and not key.startswith("__")
