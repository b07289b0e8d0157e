"""Python code that clients in other languages call by name in the tests
(tests/test_client_api.py, clients/node/test): found on the workers' import
path through the session's code search path, not installed anywhere."""

import os

import ember


def add(a, b):
    return a + b


def echo(*args, **kwargs):
    """Its arguments back, as natural Python values saw them (types named)."""
    return {"args": list(args), "kwargs": kwargs, "types": [type(a).__name__ for a in args]}


def describe(value):
    """The Python type a neutral value arrives as."""
    return type(value).__module__ + "." + type(value).__qualname__


def fail(message):
    raise ValueError(message)


def unsendable():
    return object()


def pair(x):
    return x, -x


def table_of(n):
    import pyarrow as pa

    return pa.table({"i": list(range(n)), "sq": [i * i for i in range(n)]})


def table_sum(table, column):
    return sum(table.column(column).to_pylist())


def sleep_then(seconds, value):
    import time

    time.sleep(seconds)
    return value


def pid():
    return os.getpid()


def get_ref_value(refs):
    """A ref nested in the arguments arrives as an ObjectRef."""
    return ember.get(refs[0])


class Counter:
    def __init__(self, start=0):
        self.n = start

    def inc(self, by=1):
        self.n += by
        return self.n

    def value(self):
        return self.n

    def fail(self):
        raise KeyError("no such thing")


@ember.remote
class Decorated:
    def hello(self, who):
        return f"hello {who}"


@ember.remote
def decorated_fn(x):
    return x * 10


def python_only_ref():
    """A ref (in a list) to an object only Python can read: a pickled put."""
    return [ember.put({"pickled": True})]


class Store:
    """Keeps values by key: how values cross between clients and Python drivers in the interop tests."""

    def __init__(self):
        self.values = {}

    def put(self, key, value):
        self.values[key] = value
        return type(value).__module__ + "." + type(value).__qualname__

    def get(self, key):
        return self.values[key]

    def keep_refs(self, key, refs):
        self.values[key] = refs  # ObjectRefs (nested in a list: not resolved)
        return len(refs)
