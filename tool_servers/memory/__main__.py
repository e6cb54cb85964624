from tool_servers.memory.server import main

main()
