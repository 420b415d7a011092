"""Agents: the built-in baselines and (later) LLM providers, behind one interface."""
