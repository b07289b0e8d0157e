"""Ember internals shared by the SDK, the workers and the services.

Nothing here is public API; `ember/__init__.py` is (pinned by tests/test_public_api.py).
"""
