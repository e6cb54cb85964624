from tool_servers.web_search.server import main

main()
