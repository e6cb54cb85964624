from tool_servers._priority import lower_priority_if_asked

lower_priority_if_asked()  # before the SDK import: see tool_servers/_priority.py

from tool_servers.memory.server import main  # noqa: E402

main()
