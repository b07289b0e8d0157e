"""Importable names of Python code ("package.module:function",
"package.module:Class"): how clients in other languages name what to run.
The syntax is checked here (the raylet refuses a malformed name at once);
importing is the worker's (ember._private.code_by_name)."""

from __future__ import annotations

import re

from ember_common.errors import InvalidArgument

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER}(?:\.{_IDENTIFIER})*)$")
MAX_LENGTH = 1000


def split(name: str) -> tuple[str, str]:
    """(module, attribute path) of a well-formed name; InvalidArgument otherwise."""
    if len(name) > MAX_LENGTH:
        raise InvalidArgument(f"an importable name is at most {MAX_LENGTH} characters, got {len(name)}")
    match = _NAME.match(name)
    if match is None:
        raise InvalidArgument(f"{name!r} is not an importable name: write \"package.module:function\" or "
                              "\"package.module:Class\" (a module path, a colon, then the name in it)")
    return match.group(1), match.group(2)
