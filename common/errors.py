"""The errors a service's logic raises for a caller to see, with no
dependencies: tables and stores raise them without loading gRPC, and
`ember_common.rpc.map_errors` turns each into its status code. Anything
else escaping a handler is a bug of ours: INTERNAL, logged with its traceback.
"""

from __future__ import annotations


class EmberServiceError(Exception):
    """Base of the errors a handler maps to a status code other than INTERNAL."""


class InvalidArgument(EmberServiceError, ValueError):
    """Bad input from a caller: answered with INVALID_ARGUMENT."""


class ProtocolError(InvalidArgument):
    """A client sent something malformed on a stream; the stream is closed with INVALID_ARGUMENT."""


class NotFound(EmberServiceError, LookupError):
    """A named thing does not exist: answered with NOT_FOUND."""


class AlreadyExists(EmberServiceError):
    """What the call would create is there already: answered with ALREADY_EXISTS."""


class FailedPrecondition(EmberServiceError, RuntimeError):
    """The request is valid but the state does not allow it: FAILED_PRECONDITION."""


class ResourceExhausted(EmberServiceError, RuntimeError):
    """No room for the request: answered with RESOURCE_EXHAUSTED."""


class Unavailable(EmberServiceError, ConnectionError):
    """A backend the service needs cannot be reached: UNAVAILABLE, retry later."""
