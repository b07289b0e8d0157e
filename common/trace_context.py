"""W3C Trace Context and Baggage headers as a task spec carries them
(TaskSpec.traceparent, tracestate, baggage): their well-formedness, checked
where a spec enters the raylet. Plain string checks: no OpenTelemetry here
(the services never load it)."""

from __future__ import annotations

import re

# W3C Trace Context: a tracestate holds at most 32 list-members.
MAX_TRACESTATE_ENTRIES = 32
# W3C Baggage: at most 8192 bytes; its list-members, at most 180 (the limit a
# propagator must accept is 64; more are refused by some, kept by us).
MAX_BAGGAGE_BYTES = 8192
MAX_BAGGAGE_ENTRIES = 180

# version-traceid-parentid-flags; a later version may append "-..." fields.
_TRACEPARENT = re.compile(r"(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
                          r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?")
_TRACESTATE_KEY = re.compile(r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}")
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
# A baggage list-member: key=value, then ;properties. Keys are tokens, values
# percent-encoded (no space, comma, semicolon, backslash or double quote).
_BAGGAGE_MEMBER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=\s*[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*(\s*;.*)?")


def check_traceparent(value: str) -> None:
    """ValueError, saying what is wrong, unless `value` is a W3C traceparent."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        raise ValueError(f"traceparent must be VERSION-TRACEID-PARENTID-FLAGS in lowercase hex "
                         f"(00-<32 hex>-<16 hex>-<2 hex>), got {value[:80]!r}")
    if match["version"] == "ff":
        raise ValueError("traceparent version ff is invalid")
    if match["version"] == "00" and match["rest"]:
        raise ValueError("a version 00 traceparent has exactly 4 fields")
    if set(match["trace_id"]) == {"0"} or set(match["parent_id"]) == {"0"}:
        raise ValueError("traceparent trace id and parent id must not be all zeros")


def tracestate_entries(value: str) -> list[str]:
    """The list-members of a tracestate header (empty ones left out)."""
    return [member.strip() for member in value.split(",") if member.strip()]


def check_tracestate(value: str) -> None:
    """ValueError unless `value` is a W3C tracestate of at most 32 entries."""
    entries = tracestate_entries(value)
    if len(entries) > MAX_TRACESTATE_ENTRIES:
        raise ValueError(f"tracestate has {len(entries)} entries; at most {MAX_TRACESTATE_ENTRIES} are allowed")
    keys = set()
    for entry in entries:
        key, eq, val = entry.partition("=")
        if not eq or _TRACESTATE_KEY.fullmatch(key) is None or _TRACESTATE_VALUE.fullmatch(val) is None:
            raise ValueError(f"tracestate entry {entry[:80]!r} is not key=value in W3C form")
        if key in keys:
            raise ValueError(f"tracestate names key {key!r} twice")
        keys.add(key)


def check_baggage(value: str) -> None:
    """ValueError unless `value` is a W3C baggage header within its limits."""
    size = len(value.encode())
    if size > MAX_BAGGAGE_BYTES:
        raise ValueError(f"baggage is {size} bytes; at most {MAX_BAGGAGE_BYTES} are allowed")
    entries = [member.strip() for member in value.split(",") if member.strip()]
    if len(entries) > MAX_BAGGAGE_ENTRIES:
        raise ValueError(f"baggage has {len(entries)} entries; at most {MAX_BAGGAGE_ENTRIES} are allowed")
    for entry in entries:
        if _BAGGAGE_MEMBER.fullmatch(entry) is None:
            raise ValueError(f"baggage entry {entry[:80]!r} is not key=value in W3C form")


# The common case, all of it in one match: a version 00 traceparent with
# ids not all zeros, and nothing else.
_PLAIN_V00 = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


_last_plain = ""  # the last traceparent found plain: the tasks of one driver span (or one task) all carry the same


def check(traceparent: str, tracestate: str, baggage: str) -> None:
    """A task spec's trace context: each header well-formed, and no
    tracestate without the traceparent it belongs to."""
    global _last_plain
    if not tracestate and not baggage:
        if traceparent == _last_plain:
            return  # (every task of a traced driver span: a string compare here, no match)
        if _PLAIN_V00.fullmatch(traceparent) is not None:
            _last_plain = traceparent
            return
    if traceparent:
        check_traceparent(traceparent)
    elif tracestate:
        raise ValueError("tracestate was given without a traceparent")
    if tracestate:
        check_tracestate(tracestate)
    if baggage:
        check_baggage(baggage)
