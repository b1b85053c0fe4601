"""`python -m pgshift`: serve MCP over stdio (same as `pgshift serve` and, from the repository, `python -m server`)."""

from pgshift.server.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve"]))
