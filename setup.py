"""Build hook for the one optional C accelerator; every other setting is in pyproject.toml.

``tg_bridge.traces._fastspan`` converts canonical OTLP JSON spans in C (the trace readers'
hot loop, issue 13's throughput). ``optional=True``: where no C compiler is available the
install still succeeds and the pure-Python conversion, which gives equal records, is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tg_bridge.traces._fastspan", ["tg_bridge/traces/_fastspan.c"], optional=True),
    ],
)
