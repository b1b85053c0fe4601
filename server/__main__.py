"""`python -m server`: serve MCP over stdio (same as `pgshift serve`)."""

from pgshift.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve"]))
