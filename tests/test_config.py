"""Where environments come from, and the Supabase connection specifics, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgshift.server.config import load_environments
from pgshift.tools.databases import Environment, connect_kwargs
from pgshift.tools.errors import ConfigError
from pgshift.tools.redact import redact_url, scrub, url_secrets


def test_without_a_file_local_and_production_come_from_database_url_and_supabase_db_url(tmp_path: Path) -> None:
    envs = load_environments(
        tmp_path, {"DATABASE_URL": "postgresql://a@h/l", "SUPABASE_DB_URL": "postgresql://b:pw@h/p"}
    )
    assert [(e.name, e.protected) for e in envs] == [("local", False), ("production", True)]


def test_database_url_is_read_from_dotenv_like_prisma_does(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('# comment\nexport DATABASE_URL="postgresql://u:p@localhost:5432/app"\n')
    envs = load_environments(tmp_path, {})
    assert [(e.name, e.url) for e in envs] == [("local", "postgresql://u:p@localhost:5432/app")]


def test_pgshift_toml_wins_and_sets_protected_and_read_only(tmp_path: Path) -> None:
    (tmp_path / "pgshift.toml").write_text(
        "[environments.local]\nurl_env = 'MY_URL'\nread_only = true\n"
        "[environments.production]\nurl = 'postgresql://x@y/z'\n"
        "[environments.staging]\nurl = 'postgresql://x@y/s'\nprotected = true\n"
    )
    envs = {e.name: e for e in load_environments(tmp_path, {"MY_URL": "postgresql://m@n/o"})}
    assert envs["local"].read_only and not envs["local"].protected
    assert envs["production"].protected and envs["staging"].protected


def test_tool_pgshift_in_pyproject_is_used_when_there_is_no_pgshift_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pgshift.environments.dev]\nurl = 'postgresql://d@e/f'\n")
    assert [e.name for e in load_environments(tmp_path, {})] == ["dev"]


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[environments.local]\nurl = 'mysql://x'\n", "needs url"),
        ("[environments.local]\nurl_env = 'UNSET_VAR'\n", "UNSET_VAR is not set"),
        ("[environments.local]\nurl = 'postgresql://x'\npassword = 'x'\n", "unknown keys: password"),
        ("[environments\n", "invalid TOML"),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pgshift.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_environments(tmp_path, {})


def test_only_the_transaction_pooler_disables_the_statement_cache_not_supabases_session_pooler() -> None:
    by_port = Environment(name="p", url="postgresql://u:pw@aws-0-eu.example.com:6543/postgres")
    by_flag = Environment(
        name="p", url="postgresql://u:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres?pgbouncer=true"
    )
    session = Environment(name="p", url="postgresql://u:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres")
    direct = Environment(name="p", url="postgresql://u:pw@db.abc.supabase.co:5432/postgres")
    assert connect_kwargs(by_port)["statement_cache_size"] == 0 and by_port.uses_transaction_pooler
    assert connect_kwargs(by_flag)["statement_cache_size"] == 0 and by_flag.uses_transaction_pooler
    assert "statement_cache_size" not in connect_kwargs(session) and not session.uses_transaction_pooler
    assert "statement_cache_size" not in connect_kwargs(direct) and not direct.uses_transaction_pooler


def test_sslmode_in_the_url_is_honoured() -> None:
    env = Environment(name="p", url="postgresql://u:pw@db.abc.supabase.co:5432/postgres?sslmode=require&x=1")
    kwargs = connect_kwargs(env)
    assert "sslmode" not in kwargs["dsn"] and "x=1" in kwargs["dsn"]
    assert kwargs["ssl"].verify_mode.name == "CERT_NONE"
    assert connect_kwargs(Environment(name="p", url=env.url.replace("require", "verify-full")))["ssl"] == "verify-full"


def test_passwords_are_masked_in_urls_and_free_text() -> None:
    assert redact_url("postgresql://user:p%40ss@h:5432/db?password=x&a=b") == (
        "postgresql://user:****@h:5432/db?password=****&a=b"
    )
    text = "failed for postgresql://user:topsecret@h/db with password=topsecret and raw topsecret"
    assert "topsecret" not in scrub(text, ["topsecret"])


def test_libpq_tools_get_the_url_without_prisma_parameters() -> None:
    env = Environment(
        name="p", url="postgresql://u:pw@h:5432/db?schema=app&pgbouncer=true&sslmode=require&connect_timeout=5"
    )
    assert env.libpq_url == "postgresql://u:pw@h:5432/db?sslmode=require&connect_timeout=5"


def test_a_password_with_url_characters_is_masked_whole() -> None:
    for password in ["Qz1#Qz2", "Qz1/Qz2", "Qz1?Qz2", "Qz1@Qz2", "Qz1%Qz2", "Qz1 Qz2", "123/Qz2"]:
        url = f"postgresql://user:{password}@h:5432/db"
        assert redact_url(url) == "postgresql://user:****@h:5432/db"
        assert "Qz" not in scrub(f"failed: {url} and more", url_secrets(url))
        if " " not in password:  # without knowing the secret, a URL in free text is masked up to its last '@'
            assert "Qz" not in scrub(f"failed: {url} and more")


def test_load_configuration_never_raises_it_turns_a_broken_file_into_a_problem_with_the_next_step(
    tmp_path: Path,
) -> None:
    from pgshift.server.config import load_configuration

    (tmp_path / "pgshift.toml").write_text("[environments.local]\nurl_env = 'UNSET_VAR'\n")
    broken = load_configuration(tmp_path, {})
    assert broken.environments == [] and broken.problem is not None
    assert "UNSET_VAR is not set" in broken.problem and "Next step: fix it, then restart the server" in broken.problem
    fine = load_configuration(tmp_path, {"UNSET_VAR": "postgresql://u@h/db"})
    assert fine.problem is None and [e.name for e in fine.environments] == ["local"]
