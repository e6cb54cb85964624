"""The tool sub-servers as the router sees them: one hub of MCP client sessions and how their processes start."""
