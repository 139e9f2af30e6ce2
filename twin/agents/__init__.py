"""Agent interfaces over a running twin: an MCP server (LLM tools) and a Gymnasium environment."""
