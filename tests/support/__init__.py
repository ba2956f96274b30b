"""Test support shared by every test directory: loopback servers and helpers.

- :mod:`tests.support.llama_server` starts a real ``llama_cpp.server`` on the embedded model.
- :mod:`tests.support.fault_server` is a scriptable OpenAI-compatible server for failure tests.
- :mod:`tests.support.openai_stub` is a loopback OpenAI-compatible server (chat, streaming, tool
  calls, models, embeddings) for running real framework model classes in tests.

The root ``conftest.py`` exposes both as fixtures (``llama_server``, ``fault_server``).
"""
