"""ember._private.tracing, the switch: on only when the standard OTEL_*
settings ask for OTLP trace export, decided anew at each init."""

import os
import subprocess
import sys

from ember._private.tracing import wanted


def test_tracing_follows_the_environment_at_each_init():
    """A driver that traced (OTEL_* set) and inits again without them does not trace."""
    code = """if True:
        import os
        from ember._private import tracing
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
        assert tracing.configure("t") and tracing.enabled
        tracing.disable()
        del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert not tracing.configure("t") and not tracing.enabled
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
        assert tracing.configure("t") and tracing.enabled
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_tracing_settings():
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:4317"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_SDK_DISABLED": "TRUE"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_TRACES_EXPORTER": "none"})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4317", "OTEL_TRACES_EXPORTER": "console,otlp"})
