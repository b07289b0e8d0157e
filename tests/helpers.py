"""Module-level task bodies and classes used by the tests (importable by
workers by reference, as a user's own modules are)."""

import os
import time


class MyError(Exception):
    pass


def raise_my_error(msg):
    raise MyError(msg)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def crash_process():
    os._exit(13)
