"""Reading migration folders the way Prisma and the Supabase CLI do."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import corpus_root

from pgshift.tools.errors import ConfigError
from pgshift.tools.migrations.folder import (
    checksum_matches,
    find_migrations_dir,
    read_migration,
    read_migrations,
)


def _prisma_project(root: Path, folders: dict[str, str]) -> Path:
    migrations = root / "prisma" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in folders.items():
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(sql)
    return migrations


def test_prisma_folders_are_ordered_by_name_whatever_the_name(tmp_path: Path) -> None:
    names = ["20240102_b", "2024-01-01 first one", "20240101120000_init.sql", "20231231 spaced name", "20240102_a"]
    _prisma_project(tmp_path, {n: f"-- {n}\nSELECT 1;\n" for n in names})
    folder = read_migrations(tmp_path)
    assert folder.kind == "prisma"
    assert [m.prisma_name for m in folder.migrations] == sorted(names, key=str.encode)


def test_prisma_version_is_the_folder_timestamp_and_shared_dates_fall_back_to_the_folder_name(tmp_path: Path) -> None:
    _prisma_project(
        tmp_path,
        {
            "20230406064219_init": "SELECT 1;",
            "20240102_a": "SELECT 2;",
            "20240102_b": "SELECT 3;",
            "odd-name": "",
            "20240103-hyphen-name": "",
            "20240104 spaced name": "",
        },
    )
    by_name = {m.prisma_name: m for m in read_migrations(tmp_path).migrations}
    assert (by_name["20230406064219_init"].version, by_name["20230406064219_init"].name) == ("20230406064219", "init")
    assert by_name["20240102_a"].version == "20240102_a"
    assert by_name["20240102_b"].version == "20240102_b"
    assert by_name["odd-name"].version == "odd-name"
    assert (by_name["20240103-hyphen-name"].version, by_name["20240103-hyphen-name"].name) == (
        "20240103",
        "hyphen-name",
    )
    assert (by_name["20240104 spaced name"].version, by_name["20240104 spaced name"].name) == (
        "20240104",
        "spaced name",
    )


def test_prisma_checksum_is_sha256_of_the_script_bytes(tmp_path: Path) -> None:
    script = '-- CreateTable\r\nCREATE TABLE "A" (id int);\r\n'
    migrations = _prisma_project(tmp_path, {"20240101000000_crlf": ""})
    (migrations / "20240101000000_crlf" / "migration.sql").write_bytes(script.encode())
    (migration,) = read_migrations(migrations).migrations
    assert migration.checksum == hashlib.sha256(script.encode()).hexdigest()
    assert checksum_matches(script.replace("\r\n", "\n"), migration.checksum)
    assert not checksum_matches(script + "-- edited\n", migration.checksum)


def test_a_folder_without_migration_sql_is_skipped_with_a_warning(tmp_path: Path) -> None:
    migrations = _prisma_project(tmp_path, {"20240101000000_ok": "SELECT 1;"})
    (migrations / "20240102000000_empty").mkdir()
    folder = read_migrations(migrations)
    assert [m.prisma_name for m in folder.migrations] == ["20240101000000_ok"]
    assert "20240102000000_empty" in folder.warnings[0]


def test_supabase_files_are_ordered_by_version_and_named_after_it(tmp_path: Path) -> None:
    migrations = tmp_path / "supabase" / "migrations"
    migrations.mkdir(parents=True)
    for name in ["20240108234541_add_profiles.sql", "20240108234540_setup.sql", "README.md", "notes.sql"]:
        (migrations / name).write_text("SELECT 1;")
    folder = read_migrations(tmp_path)
    assert folder.kind == "supabase"
    assert [(m.version, m.name) for m in folder.migrations] == [
        ("20240108234540", "setup"),
        ("20240108234541", "add_profiles"),
    ]
    assert any("notes.sql" in w for w in folder.warnings)


def test_two_supabase_files_with_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("SELECT 1;")
    (tmp_path / "1_b.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError, match="share version 1"):
        read_migrations(tmp_path)


def test_the_migrations_folder_is_found_in_the_working_directory_and_never_in_its_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = _prisma_project(tmp_path, {"20240101000000_init": "SELECT 1;"})
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    with pytest.raises(ConfigError, match="no migrations folder found in"):
        find_migrations_dir()
    monkeypatch.chdir(tmp_path)
    assert find_migrations_dir() == migrations.resolve()
    assert find_migrations_dir(tmp_path) == migrations.resolve()


def test_no_migrations_folder_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no migrations folder"):
        find_migrations_dir(tmp_path)


def test_a_misspelt_directory_is_an_error_not_a_search_of_its_parents(tmp_path: Path) -> None:
    _prisma_project(tmp_path, {"20240101000000_init": "SELECT 1;"})
    with pytest.raises(ConfigError, match="does not exist"):
        read_migrations(tmp_path / "prsma")


def test_one_migration_is_found_by_folder_path_file_path_or_version(tmp_path: Path) -> None:
    migrations = _prisma_project(tmp_path, {"20240101000000_init": "SELECT 1;", "20240201000000_next": "SELECT 2;"})
    by_folder = read_migration(str(migrations / "20240201000000_next"))
    by_file = read_migration(str(migrations / "20240201000000_next" / "migration.sql"))
    by_version = read_migration("20240201000000", directory=tmp_path)
    assert by_folder == by_file == by_version
    assert by_folder.sql == "SELECT 2;"


@pytest.mark.parametrize(
    ("relative", "kind", "count"),
    [("prisma/hoppscotch/migrations", "prisma", 21), ("supabase/chatbot-ui/supabase/migrations", "supabase", 25)],
)
def test_corpus_chains_are_read_in_order_with_file_checksums(relative: str, kind: str, count: int) -> None:
    folder = read_migrations(corpus_root() / relative)
    assert folder.kind == kind
    assert len(folder.migrations) == count
    versions = [m.version for m in folder.migrations]
    assert versions == sorted(versions) and len(set(versions)) == count
    for m in folder.migrations:
        assert m.path is not None
        assert m.checksum == hashlib.sha256(Path(m.path).read_bytes()).hexdigest()
