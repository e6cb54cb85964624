"""The MCP sub-servers the host starts over stdio: web_search, code_exec, memory.

Each also runs alone from any MCP host: `python -m tool_servers.<name>`.
"""
