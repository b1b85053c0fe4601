"""pgshift's MCP surface: the app, its lifespan, configuration, tool registration and the CLI."""
