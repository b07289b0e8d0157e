"""Generated protobuf and gRPC stubs for the ember.v1 API (see proto/).

Do not edit: regenerate with `python proto/generate.py`.
"""
