"""Optional adapters that put slotq under an agent framework's own environment interface.

Each module imports its framework lazily and works without it (duck-typed to the framework's interface);
when the framework is importable, the adapter subclasses (or registers with) the framework's base class.
The core client never imports this package.

* ``slotq.integrations.minisweagent``: ``SlotqEnvironment``, a mini-swe-agent environment (sync).
* ``slotq.integrations.harbor``: ``SlotqEnvironment``, a Harbor ``BaseEnvironment`` (async).
* ``slotq.integrations.inspect``: ``SlotqSandboxEnvironment``, an inspect_ai sandbox named ``"slotq"``.

docs/harnesses.md says what works and what does not in each.
"""
