"""Test support shared by every test directory: loopback servers and helpers.

- :mod:`tests.support.llama_server` starts a real ``llama_cpp.server`` on the embedded model.
- :mod:`tests.support.fault_server` is a scriptable OpenAI-compatible server for failure tests.

The root ``conftest.py`` exposes both as fixtures (``llama_server``, ``fault_server``).
"""
