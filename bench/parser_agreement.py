"""Do our splitters see the statements PostgreSQL's parser sees? Over every migration of every corpus chain
(prisma/*/migrations/*/migration.sql, supabase/*/supabase/migrations/*.sql) and every migra case's a.sql/b.sql.

python bench/parser_agreement.py [--old-rev 61859c8] [--corpus ../shared/corpus] [--verbose]

The reference is PostgreSQL's own parser (libpg_query through pglast): one statement per RawStmt, its span the
first to the last non-comment token of the RawStmt (PostgreSQL's scanner). A splitter agrees on a file when it
gives the same number of statements with the same spans. OLD is the sqlglot-based splitter of `--old-rev`
(loaded from git, not reimplemented); NEW is tools/migrations/parse.py in the working tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from pglast import parse_sql
from pglast.parser import ParseError, scan

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pgshift.tools.migrations import parse as new_parse  # noqa: E402

OLD_REV = "61859c89724ad1e380f5ad96f3b0c78f985c8189"  # last commit whose parse.py split with sqlglot
COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
Spans = list[tuple[int, int]]


def load_old(rev: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:tools/migrations/parse.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_parse.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_parse", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_parse"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def postgres_spans(sql: str) -> Spans:
    tokens = [t for t in scan(sql) if t.name not in COMMENTS]
    spans = []
    for raw in parse_sql(sql):
        begin = raw.stmt_location or 0
        end = begin + raw.stmt_len if raw.stmt_len else len(sql)
        own = [t for t in tokens if begin <= t.start < end]
        spans.append((own[0].start, own[-1].end + 1))
    return spans


def splitter_spans(split: Callable[[str], list], sql: str) -> Spans | str:
    try:
        return [(s.start, s.start + len(s.text)) for s in split(sql)]
    except Exception as error:  # a splitter that refuses a valid script disagrees; say why
        return f"{type(error).__name__}: {str(error)[:100]}"


# Scripts written to confuse a splitter (issue 8's attack first); each is valid PostgreSQL.
ADVERSARIAL = {
    "begin atomic as column names": (
        "CREATE VIEW v AS SELECT begin atomic FROM (SELECT 1 AS begin) s; COMMIT; DROP TABLE victim"
    ),
    "escaped quote in an E string": "SELECT E'it\\'s; DROP TABLE t; --'; SELECT 2",
    "nested comments": "/* a /* b; */ c; */ SELECT 1; SELECT 2",
    "CASE inside BEGIN ATOMIC": (
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 END; "
        "SELECT 2; END; SELECT 3"
    ),
    "dollar quote with a tag": "SELECT $a$ $$; $a$; SELECT 2",
    "unicode escapes": "SELECT U&'d\\0061t\\+000061;'; SELECT 2",
}


def corpus_files(corpus: Path) -> list[Path]:
    return (
        sorted(corpus.glob("prisma/*/migrations/*/migration.sql"))
        + sorted(corpus.glob("supabase/*/supabase/migrations/*.sql"))
        + sorted(corpus.glob("migra/*/a.sql"))
        + sorted(corpus.glob("migra/*/b.sql"))
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    old = load_old(args.old_rev)
    splitters = {"old (sqlglot)": old.split_statements, "new (pglast)": new_parse.split_statements}
    files = corpus_files(args.corpus)
    agree = dict.fromkeys(splitters, 0)
    seconds = dict.fromkeys(splitters, 0.0)
    rejected = statements = 0
    for path in files:
        sql = path.read_text()
        try:
            reference = postgres_spans(sql)
        except ParseError as error:
            rejected += 1
            print(f"PostgreSQL rejects {path.relative_to(args.corpus)}: {error}")
            continue
        statements += len(reference)
        for name, split in splitters.items():
            started = time.perf_counter()
            spans = splitter_spans(split, sql)
            seconds[name] += time.perf_counter() - started
            if spans == reference:
                agree[name] += 1
            elif args.verbose:
                shown = spans if isinstance(spans, str) else f"{len(spans)} statements"
                print(f"{name} disagrees on {path.relative_to(args.corpus)}: {shown} vs {len(reference)}")
    adversarial = dict.fromkeys(splitters, 0)
    for label, sql in ADVERSARIAL.items():
        reference = postgres_spans(sql)
        for name, split in splitters.items():
            spans = splitter_spans(split, sql)
            adversarial[name] += spans == reference
            if spans != reference and args.verbose:
                print(f"{name} disagrees on {label!r}: {spans} vs {reference}")
    parsed = len(files) - rejected
    print(f"{len(files)} files, {parsed} parsed by PostgreSQL ({statements} statements), {rejected} rejected")
    for name in splitters:
        print(
            f"{name:>14}: {agree[name]}/{parsed} files split exactly as PostgreSQL does "
            f"({100 * agree[name] / max(parsed, 1):.1f}%), {seconds[name] * 1000:.0f} ms in all; "
            f"{adversarial[name]}/{len(ADVERSARIAL)} adversarial scripts"
        )


if __name__ == "__main__":
    main()
