"""I/O shells of the LLM providers: HTTP transport, endpoint pools, signing, the LLM agent."""
