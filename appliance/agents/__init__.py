"""AI agents: the MCP tools over the records services, scoped tokens, and writes held for approval."""
