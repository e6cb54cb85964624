from tool_servers.code_exec.server import main

main()
