"""The router as an MCP server: tools and resources, streamable HTTP service, the `mcp dev` entry."""
