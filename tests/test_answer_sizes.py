"""Answers that fit an assistant: the text content is compact JSON without nulls; structured content is unchanged."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from mcp import Client

from server.app import build_app
from tools.databases import Environment


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or has_null(v) for v in value)
    return False


async def test_text_content_is_compact_json_without_null_fields_but_keeps_null_data(db18: str) -> None:
    conn = await asyncpg.connect(db18)
    try:
        await conn.execute("CREATE TABLE item (id int PRIMARY KEY, note text)")
    finally:
        await conn.close()
    envs = [Environment(name="local", url=db18), Environment(name="production", url=db18)]
    async with Client(build_app(lambda: envs), raise_exceptions=False) as client:
        result = await client.call_tool("compare_schemas", {})
        query = await client.call_tool("execute_sql", {"environment": "local", "sql": "SELECT NULL AS nothing"})
    assert not result.is_error, result.content
    structured = result.structured_content
    assert structured is not None and has_null(structured), "structured content keeps its null fields"
    [content] = result.content
    text = getattr(content, "text", "")
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False), "compact JSON"
    assert json.loads(text) == without_nulls(structured)
    assert not has_null(json.loads(text))
    assert list(json.loads(text))[:4] == ["source", "target", "in_sync", "summary"]
    [row_text] = query.content
    assert query.structured_content is not None and query.structured_content["approval_id"] is None
    rows = json.loads(getattr(row_text, "text", ""))["result"]["data"]["rows"]
    assert rows == [{"nothing": None}], "a NULL read from the database is data, not an empty field"


async def test_list_tables_pages_with_limit_and_offset_and_says_where_the_next_page_starts(db18: str) -> None:
    conn = await asyncpg.connect(db18)
    try:
        await conn.execute("CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int)")
    finally:
        await conn.close()
    async with Client(build_app(lambda: [Environment(name="local", url=db18)]), raise_exceptions=False) as client:
        first = await client.call_tool("list_tables", {"environment": "local", "limit": 2})
        rest = await client.call_tool("list_tables", {"environment": "local", "limit": 2, "offset": 2})
    assert first.structured_content is not None and rest.structured_content is not None
    assert [t["name"] for t in first.structured_content["tables"]["data"]] == ["a", "b"]
    assert (first.structured_content["total"], first.structured_content["next_offset"]) == (3, 2)
    assert [t["name"] for t in rest.structured_content["tables"]["data"]] == ["c"]
    assert rest.structured_content["next_offset"] is None
