"""Oriole: LLM agents in grid mazes, compared on an event log.

The modules at this level (with ``agents/`` and ``llm/``) are the pure core: no I/O, no
asyncio. ``environment/`` reads settings and files, ``kafka/`` is broker plumbing, and
``cli/`` is the composition root that wires the services (``streams``, ``projections``,
``gateway``, ``providers``). docs/architecture.md has the picture; ``lint-imports``
enforces it.
"""
