"""Web search (Brave or SearXNG) and URL fetching with an SSRF guard."""
