"""Talking to language models, without I/O: conversations, tools, wire formats, prompts,
prices, the turn loop and the resilience policies. The HTTP shells live in `providers/`."""
