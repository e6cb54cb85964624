"""model-router: an MCP server that sends each LLM task to the smallest model that can do it well."""

__version__ = "0.1.0"
