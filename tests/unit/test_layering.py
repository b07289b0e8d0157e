"""The package boundaries, pinned: services and the shared package never reach
into the SDK, and the shared errors load without gRPC."""

import ast
import pathlib
import subprocess
import sys

from ember import exceptions
from ember._private import serialization
from ember_common.object_layout import Failure, FailureType

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _imported_modules(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_services_and_common_import_only_the_api_of_the_sdk():
    offenders = []
    for folder in ("services", "common"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported_modules(path):
                if module == "ember" or module.startswith("ember.") and not module.startswith("ember.v1"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_errors_module_loads_without_grpc():
    code = "import sys, ember_common.errors; assert not [m for m in sys.modules if m.startswith('grpc')], 'grpc loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_failure_type_names_an_ember_exception():
    for failure_type in FailureType:
        encoded = Failure(failure_type, f"why {failure_type.name}").encode()
        value, is_error = serialization.deserialize(encoded)
        assert is_error and type(value) is getattr(exceptions, failure_type.value)
        assert isinstance(value, exceptions.EmberError) and str(value) == f"why {failure_type.name}"
