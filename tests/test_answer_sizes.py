"""Answers that fit an assistant: compact JSON text without nulls, every tool's answer under 40,000 characters, as
text and as structured content (a client may pass either to the model), on the 1,000-table drifted pair
(tests/corpus/genschema/*-1000.sql.gz; bench/answer_sizes.py, which this test shares, prints the figures), and
compare_schemas paged so that every difference and statement is on exactly one page (the 200-table pair)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mcp import Client

from pgshift.server.app import build_app
from pgshift.tools.compare import CompareResult, compare_schemas
from pgshift.tools.databases import Databases, Environment
from pgshift.tools.localpg import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("answer_sizes", ROOT / "bench" / "answer_sizes.py")
assert _spec is not None and _spec.loader is not None
sizes = sys.modules.setdefault("answer_sizes", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(sizes)

ANSWER_CHARS = 40_000
"""Every tool's answer, in characters of its text content and of its structured content as compact JSON."""
PENDING: dict[str, str] = {}
"""Tools known to answer over budget on the pair, with why. Each must still be over (remove it once it is not)."""


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


@pytest.fixture(scope="module")
def drifted_pair(pg18: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """The committed 200-table drifted pair, loaded once: (local URL, production URL, a table name)."""
    from conftest import create_database, drop_database

    base, target = ((ROOT / "tests" / "corpus" / "genschema" / f"{v}.sql").read_text() for v in ("base", "target"))

    async def load() -> tuple[str, str]:
        urls = await asyncio.gather(create_database(pg18, "sizes"), create_database(pg18, "sizes"))
        for url, sql in zip(urls, (base, target), strict=True):
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        return urls[0], urls[1]

    local, production = asyncio.run(load())
    yield local, production, sizes.first_table(base)
    asyncio.run(drop_database(pg18, local))
    asyncio.run(drop_database(pg18, production))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sizes.write_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGSHIFT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def client_for(pair: tuple[str, str, str]) -> Client:
    return Client(build_app(lambda: sizes.environments(pair[0], pair[1])), raise_exceptions=False)


@pytest.fixture(scope="module")
def large_pair(pg18: LocalPostgres) -> Iterator[tuple[str, str, str]]:
    """The committed 1,000-table drifted pair (genschema seed 7), loaded once: (local, production, a table name)."""
    import gzip

    from conftest import create_database, drop_database

    folder = ROOT / "tests" / "corpus" / "genschema"
    base, target = (gzip.decompress((folder / f"{v}-1000.sql.gz").read_bytes()).decode() for v in ("base", "target"))

    async def load() -> tuple[str, str]:
        urls = await asyncio.gather(create_database(pg18, "sizes1k"), create_database(pg18, "sizes1k"))

        async def run(url: str, sql: str) -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        await asyncio.gather(*(run(url, sql) for url, sql in zip(urls, (base, target), strict=True)))
        return urls[0], urls[1]

    local, production = asyncio.run(load())
    yield local, production, sizes.first_table(base)
    asyncio.run(drop_database(pg18, local))
    asyncio.run(drop_database(pg18, production))


async def measure_chars(client: Client, table: str) -> dict[str, tuple[int, int, str]]:
    """Every tool's default answer and the variants an assistant reaches for: label -> (text chars, structured
    content chars as compact JSON, the text when it is an error)."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    calls = [(name, name, {}) for name in tools] + [v for v in sizes.VARIANTS if v[1] in tools]
    out = {}
    for label, name, extra in calls:
        result = await client.call_tool(name, sizes.arguments(tools[name], table, extra))
        text = "".join(getattr(c, "text", "") for c in result.content)
        structured = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)
        out[label] = (
            len(text),
            len(structured) if result.structured_content is not None else 0,
            result.is_error * text,
        )
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_every_tool_answers_under_40000_characters_in_text_and_structured_content_at_1000_tables(
    large_pair: tuple[str, str, str], project: Path
) -> None:
    async with client_for(large_pair) as client:
        measured = await measure_chars(client, large_pair[2])
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} <= set(measured), "every registered tool is measured"
    assert len(tools) == 19
    internal = {
        label: m[2] for label, m in measured.items() if m[2].startswith("Error executing tool") and ":" not in m[2]
    }
    assert not internal, f"internal errors, not answers: {internal}"
    over = {label: m[:2] for label, m in measured.items() if max(m[:2]) > ANSWER_CHARS}
    assert set(over) - set(PENDING) == set(), f"over {ANSWER_CHARS} characters (text, structured): {over}"
    assert set(PENDING) <= set(over), f"no longer over budget, drop from PENDING: {over}"
    assert measured["compare_schemas plan"][0] > 10_000, "the plan's page is measured with its statements"


async def test_tools_list_is_within_budget_and_every_tool_and_argument_is_described(
    drifted_pair: tuple[str, str, str], project: Path
) -> None:
    async with client_for(drifted_pair) as client:
        tools = (await client.list_tools()).tools
    assert sizes.tokens(sizes.tools_list_text(tools)) <= sizes.TOOLS_LIST_BUDGET_TOKENS, "tools/list"
    for tool in tools:
        assert tool.description and tool.description == tool.description.strip(), f"{tool.name}: no description"
        assert "\n" not in tool.description.replace("\n\n", ""), f"{tool.name}: hard-wrapped lines, not plain text"
        assert tool.output_schema is not None and "$defs" not in tool.output_schema, f"{tool.name}: not outlined"
        undescribed = [p for p, s in tool.input_schema.get("properties", {}).items() if not s.get("description")]
        assert not undescribed, f"{tool.name}: arguments without a description: {undescribed}"


async def engine_result(pair: tuple[str, str, str], plan: bool) -> CompareResult:
    db = Databases.from_urls({"local": pair[0], "production": pair[1]})
    try:
        from pgshift.tools.compare import PlanOptions

        return await compare_schemas(db, plan=PlanOptions() if plan else None)
    finally:
        await db.close()


async def pages(client: Client, **args: Any) -> list[dict[str, Any]]:
    """Every page of one comparison, following next_cursor (bounded)."""
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        result = await client.call_tool("compare_schemas", {**args, **({"cursor": cursor} if cursor else {})})
        assert not result.is_error and result.structured_content is not None, result.content
        out.append(result.structured_content)
        cursor = result.structured_content["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 50 pages")


async def test_paging_returns_every_difference_and_statement_exactly_once_in_order(
    drifted_pair: tuple[str, str, str],
) -> None:
    whole = await engine_result(drifted_pair, plan=True)
    assert whole.plan is not None
    async with client_for(drifted_pair) as client:
        got = await pages(client, plan=True, limit=40)
    assert len(got) >= 3, "the pair needs several pages at this limit"
    names = [(d["kind"], d["name"], d["change"]) for p in got for d in p["differences"]["data"]]
    assert names == [(d.kind, d.name, d.change) for d in whole.differences.data]
    sql = [s["sql"] for p in got for s in p["statements"]["data"]]
    assert sql == [s.sql for s in whole.plan.data.statements]
    for number, page in enumerate(got):
        spans = page["page"]
        assert spans["differences"]["total"] == whole.summary.total
        assert spans["statements"]["total"] == len(whole.plan.data.statements)
        assert (page["next_cursor"] is None) == (number == len(got) - 1)
        assert page["summary"] == got[0]["summary"] and page["plan"]["statements"] == len(sql)
    assert "cursor=" in got[0]["next_step"] and got[0]["next_cursor"] in got[0]["next_step"]


async def test_a_blocked_plan_says_so_before_any_statement_and_withholds_its_script(
    drifted_pair: tuple[str, str, str],
) -> None:
    async with client_for(drifted_pair) as client:
        result = await client.call_tool("compare_schemas", {"plan": True})
    [content] = result.content
    text = getattr(content, "text", "")
    answer = json.loads(text)
    plan = answer["plan"]
    assert plan["blocked_by_data_loss"] is True and plan["destructive_count"] > 0
    assert plan["destructive"]["data"][0]["object"], "destructive statements are named with their objects"
    assert "allow_data_loss=true" in plan["script_withheld"] and "script" not in answer
    assert text.index('"blocked_by_data_loss":true') < text.index('"statements":{'), "blocked before any statement"
    assert answer["next_step"].startswith("Blocked:")
    assert list(answer)[:5] == ["source", "target", "in_sync", "summary", "plan"]
    assert len(text) <= ANSWER_CHARS and len(json.dumps(result.structured_content)) <= ANSWER_CHARS


async def test_differences_are_brief_on_a_large_drift_and_detailed_on_request(
    drifted_pair: tuple[str, str, str],
) -> None:
    async with client_for(drifted_pair) as client:
        brief = (await client.call_tool("compare_schemas", {})).structured_content
        detailed = (await client.call_tool("compare_schemas", {"detail": True})).structured_content
        stale = await client.call_tool("compare_schemas", {"cursor": "1.0.0.000000000000"})
        forged = await client.call_tool("compare_schemas", {"cursor": "x"})
    assert brief is not None and detailed is not None
    assert brief["detail"] is False and detailed["detail"] is True
    changed = [d for d in brief["differences"]["data"] if d["change"] == "changed"]
    assert changed and all(d["changed_fields"] and "fields" not in d for d in changed)
    assert any(d["fields"] and "before" in d["fields"][0] for d in detailed["differences"]["data"])
    assert brief["page"]["differences"]["count"] > detailed["page"]["differences"]["count"]
    assert stale.is_error and "changed since that cursor" in getattr(stale.content[0], "text", "")
    assert forged.is_error and "not a next_cursor" in getattr(forged.content[0], "text", "")
