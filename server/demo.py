"""`pgshift demo`: two embedded PostgreSQL servers, the real server over stdio, every tool called once.

`local` holds the app schema as `prisma migrate dev` leaves it; `production` is shaped like a Supabase
database (roles anon/authenticated/service_role, auth.users and auth.uid(), storage, extensions, RLS)
and runs an older version of the app schema. The demo prints what each tool returns.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from tools.localpg import LocalPostgres, embedded_server

SAMPLE = Path(__file__).resolve().parents[1] / "tools" / "sample"

# Production is one release behind local: no "position" column, no modelId index, no "SELECT" enum value.
PRODUCTION_APP_SQL = """
CREATE TYPE "FieldType" AS ENUM ('TEXT', 'NUMBER', 'BOOLEAN', 'DATE');
CREATE TABLE "ModelConfiguration" (
    "id" TEXT NOT NULL,
    "modelName" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "description" TEXT,
    "settings" JSONB NOT NULL DEFAULT '{}',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "ModelConfiguration_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "FieldConfiguration" (
    "id" TEXT NOT NULL,
    "modelId" TEXT NOT NULL,
    "fieldName" TEXT NOT NULL,
    "fieldType" "FieldType" NOT NULL DEFAULT 'TEXT',
    "required" BOOLEAN NOT NULL DEFAULT false,
    "options" JSONB,
    CONSTRAINT "FieldConfiguration_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ModelConfiguration_modelName_key" ON "ModelConfiguration"("modelName");
CREATE UNIQUE INDEX "FieldConfiguration_modelId_fieldName_key" ON "FieldConfiguration"("modelId", "fieldName");
ALTER TABLE "FieldConfiguration" ADD CONSTRAINT "FieldConfiguration_modelId_fkey"
    FOREIGN KEY ("modelId") REFERENCES "ModelConfiguration"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ModelConfiguration" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "FieldConfiguration" ENABLE ROW LEVEL SECURITY;
CREATE POLICY "read models" ON "ModelConfiguration" FOR SELECT TO authenticated USING (true);
"""


def _shorten(value: Any, max_items: int = 6) -> Any:
    if isinstance(value, list):
        head = [_shorten(v, max_items) for v in value[:max_items]]
        return head + ([f"... {len(value) - max_items} more"] if len(value) > max_items else [])
    if isinstance(value, dict):
        return {k: _shorten(v, max_items) for k, v in value.items()}
    if isinstance(value, str) and len(value) > 400:
        return value[:400] + " ..."
    return value


def show(title: str, payload: Any) -> None:
    print(f"\n── {title}", flush=True)
    print(json.dumps(_shorten(payload), indent=2, default=str), flush=True)


async def _load(url: str, *scripts: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for script in scripts:
            await conn.execute(script)
    finally:
        await conn.close()


async def _drive(local: LocalPostgres, production: LocalPostgres, workdir: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {"DATABASE_URL": local.url(), "SUPABASE_DB_URL": production.url(), "PATH": os.environ.get("PATH", "")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=str(workdir))

    async def call(client: Any, tool: str, **args: Any) -> dict[str, Any]:
        result = await client.call_tool(tool, args)
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items() if k != "sql") + (" sql=..." if "sql" in args else "")
        if result.is_error:
            show(f"{tool}({shown})  → tool error", " ".join(getattr(c, "text", "") for c in result.content))
            return {}
        show(f"{tool}({shown})", result.structured_content)
        return dict(result.structured_content or {})

    started = time.monotonic()
    async with Client(params, read_timeout_seconds=120) as client:
        tools = (await client.list_tools()).tools
        print(f"\nconnected to `python -m server` over stdio in {time.monotonic() - started:.2f} s; tools:")
        for t in tools:
            hint = "read-only" if t.annotations and t.annotations.read_only_hint else "writes"
            print(f"  - {t.name} ({hint})")
        await call(client, "list_environments")
        await call(client, "list_tables", environment="local")
        await call(client, "list_tables", environment="production", schemas=["public", "auth"], verbose=False)
        await call(client, "describe_table", environment="local", table="FieldConfiguration")
        await call(client, "list_extensions", environment="production")
        await call(
            client,
            "execute_sql",
            environment="local",
            sql='SELECT "modelName", description FROM "ModelConfiguration" ORDER BY 1',
        )
        await call(client, "execute_sql", environment="local", sql='DELETE FROM "FieldConfiguration"')
        await call(
            client,
            "execute_sql",
            environment="production",
            sql="UPDATE \"ModelConfiguration\" SET description = 'x'",
            write=True,
        )


def run_demo() -> int:
    print("pgshift demo: starting two embedded PostgreSQL servers (local, production) ...", flush=True)
    local, production = embedded_server(), embedded_server()
    try:
        local.start()
        production.start()
        print(f"local:      {local.version}\nproduction: {production.version} (Supabase-shaped)")
        supabase = (SAMPLE / "supabase_shape.sql").read_text()
        anyio.run(_load, local.url(), (SAMPLE / "app.sql").read_text())
        anyio.run(_load, production.url(), supabase, PRODUCTION_APP_SQL)
        with tempfile.TemporaryDirectory(prefix="pgshift-demo-") as workdir:
            anyio.run(_drive, local, production, Path(workdir))
    finally:
        local.stop()
        production.stop()
    print("\ndemo finished: both servers stopped and removed.")
    return 0
