"""pgshift: keep PostgreSQL schemas in sync (MCP server and CLI). The code lives in server/ and tools/."""
