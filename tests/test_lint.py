"""Lint rules (squawk's core set): each fires on the risky form, and stays quiet on the safe form or a new table."""

from __future__ import annotations

import pytest

from pgshift.tools.migrations.lint import LintRule, lint
from pgshift.tools.migrations.parse import split_statements
from pgshift.tools.plan.statement import HazardKind

EXISTING = {"public.account", "public.post"}


def _rules(sql: str, existing: set[str] | None = EXISTING) -> set[LintRule]:
    return {f.rule for f in lint(split_statements(sql), existing_tables=existing)} - {LintRule.REQUIRE_LOCK_TIMEOUT}


@pytest.mark.parametrize(
    ("risky", "rule", "safe"),
    [
        (
            "ALTER TABLE account ADD COLUMN name text NOT NULL",
            LintRule.ADDING_REQUIRED_FIELD,
            "ALTER TABLE account ADD COLUMN name text NOT NULL DEFAULT ''",
        ),
        (
            "ALTER TABLE account ADD COLUMN token uuid DEFAULT gen_random_uuid()",
            LintRule.ADDING_FIELD_WITH_VOLATILE_DEFAULT,
            "ALTER TABLE account ADD COLUMN created timestamptz DEFAULT now()",
        ),
        (
            "ALTER TABLE account ADD COLUMN seq bigserial",
            LintRule.ADDING_FIELD_WITH_VOLATILE_DEFAULT,
            "ALTER TABLE account ADD COLUMN seq bigint",
        ),
        (
            'ALTER TABLE account ALTER COLUMN "createdOn" SET DATA TYPE TIMESTAMPTZ(3)',
            LintRule.CHANGING_COLUMN_TYPE,
            "ALTER TABLE account ALTER COLUMN email SET DEFAULT ''",
        ),
        (
            "ALTER TABLE account ALTER email TYPE varchar(300)",
            LintRule.CHANGING_COLUMN_TYPE,
            "ALTER TABLE account ALTER email DROP DEFAULT",
        ),
        (
            "ALTER TABLE account ALTER COLUMN email SET NOT NULL",
            LintRule.ADDING_NOT_NULLABLE_FIELD,
            "ALTER TABLE account ALTER COLUMN email DROP NOT NULL",
        ),
        ("ALTER TABLE account DROP COLUMN email", LintRule.BAN_DROP_COLUMN, "ALTER TABLE account DROP CONSTRAINT c"),
        ("DROP TABLE post", LintRule.BAN_DROP_TABLE, "CREATE TABLE other (id int); DROP TABLE other"),
        ("TRUNCATE account", LintRule.BAN_TRUNCATE, "DELETE FROM account WHERE id = 1"),
        (
            "CREATE INDEX account_email ON account (email)",
            LintRule.REQUIRE_CONCURRENT_INDEX_CREATION,
            "CREATE INDEX CONCURRENTLY account_email ON account (email)",
        ),
        (
            "DROP INDEX account_email",
            LintRule.REQUIRE_CONCURRENT_INDEX_DELETION,
            "DROP INDEX CONCURRENTLY account_email",
        ),
        (
            "ALTER TABLE post ADD CONSTRAINT post_author_fkey FOREIGN KEY (author) REFERENCES account (id)",
            LintRule.CONSTRAINT_MISSING_NOT_VALID,
            "ALTER TABLE post ADD CONSTRAINT post_author_fkey FOREIGN KEY (author) REFERENCES account (id) NOT VALID",
        ),
        (
            "ALTER TABLE post ADD CONSTRAINT positive CHECK (id > 0)",
            LintRule.CONSTRAINT_MISSING_NOT_VALID,
            "ALTER TABLE post ADD CONSTRAINT positive CHECK (id > 0) NOT VALID",
        ),
        (
            "ALTER TABLE post ADD CONSTRAINT post_title_key UNIQUE (title)",
            LintRule.DISALLOWED_UNIQUE_CONSTRAINT,
            "ALTER TABLE post ADD CONSTRAINT post_title_key UNIQUE USING INDEX post_title_idx",
        ),
        (
            "ALTER TABLE post ADD COLUMN author_id int REFERENCES account (id)",
            LintRule.ADDING_FOREIGN_KEY_CONSTRAINT,
            "ALTER TABLE post ADD COLUMN author_id int",
        ),
        (
            "ALTER TABLE account RENAME COLUMN email TO mail",
            LintRule.RENAMING_COLUMN,
            "ALTER TABLE account RENAME CONSTRAINT a TO b",
        ),
        ("ALTER TABLE account RENAME TO accounts", LintRule.RENAMING_TABLE, "ALTER TABLE account OWNER TO postgres"),
        (
            "BEGIN; CREATE INDEX CONCURRENTLY i ON account (email); COMMIT",
            LintRule.CONCURRENT_INDEX_IN_TRANSACTION,
            "CREATE INDEX CONCURRENTLY i ON account (email)",
        ),
    ],
)
def test_each_rule_flags_the_risky_form_and_not_the_safe_one(risky: str, rule: LintRule, safe: str) -> None:
    assert rule in _rules(risky)
    assert rule not in _rules(safe)


def test_statements_on_a_table_the_script_creates_are_not_flagged() -> None:
    script = """
    CREATE TABLE "Fresh" (id int);
    ALTER TABLE "Fresh" ADD COLUMN name text NOT NULL;
    ALTER TABLE "Fresh" ALTER COLUMN id TYPE bigint;
    CREATE INDEX fresh_name ON "Fresh" (name);
    ALTER TABLE "Fresh" ADD CONSTRAINT fresh_pk PRIMARY KEY (id);
    """
    assert lint(split_statements(script), existing_tables=EXISTING) == []


def test_a_table_the_target_does_not_have_is_new_when_the_target_is_known() -> None:
    assert _rules("ALTER TABLE elsewhere ADD COLUMN x int NOT NULL", existing=EXISTING) == set()
    assert _rules("ALTER TABLE elsewhere ADD COLUMN x int NOT NULL", existing=None) == {LintRule.ADDING_REQUIRED_FIELD}


def test_a_missing_lock_timeout_is_one_finding_for_the_script_and_setting_it_silences_it() -> None:
    risky = "ALTER TABLE account ADD COLUMN a int;\nCREATE INDEX i ON post (id);\n"
    findings = [f for f in lint(split_statements(risky), existing_tables=EXISTING)]
    timeouts = [f for f in findings if f.rule is LintRule.REQUIRE_LOCK_TIMEOUT]
    assert len(timeouts) == 1 and timeouts[0].line == 1 and "2 statement(s)" in timeouts[0].message
    safe = "SET lock_timeout = '5s';\n" + risky
    assert LintRule.REQUIRE_LOCK_TIMEOUT not in {f.rule for f in lint(split_statements(safe), existing_tables=EXISTING)}


def test_findings_carry_the_line_the_object_and_a_hazard() -> None:
    script = "-- a comment\n\nALTER TABLE account DROP COLUMN email;\n"
    (finding,) = [f for f in lint(split_statements(script)) if f.rule is LintRule.BAN_DROP_COLUMN]
    assert (finding.line, finding.statement, finding.severity) == (3, 1, "error")
    assert finding.object == "public.account.email"
    assert finding.hazard is HazardKind.DELETES_DATA
    assert finding.help


def test_quoted_names_and_schemas_resolve_to_the_existing_table() -> None:
    existing = {"app.Account"}
    assert LintRule.BAN_DROP_COLUMN in _rules('ALTER TABLE app."Account" DROP COLUMN x', existing)
    assert _rules("ALTER TABLE app.account DROP COLUMN x", existing) == set()


def test_a_new_enum_label_used_later_in_the_same_script_is_an_error() -> None:
    risky = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE account SET mood = 'meh' WHERE id = 1;\n"
    (finding,) = [f for f in lint(split_statements(risky)) if f.rule is LintRule.NEW_ENUM_VALUE_USED_IN_TRANSACTION]
    assert (finding.line, finding.object, finding.severity) == (2, "mood", "error")
    safe = "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE account SET mood = 'sad' WHERE id = 1;\n"
    assert LintRule.NEW_ENUM_VALUE_USED_IN_TRANSACTION not in _rules(safe)


def _fk_findings(sql: str, existing: set[str] | None = EXISTING) -> list[tuple[str, int]]:
    findings = lint(split_statements(sql), existing_tables=existing)
    return [(f.object, f.line) for f in findings if f.rule is LintRule.FOREIGN_KEY_LOCKS_REFERENCED_TABLE]


def test_a_new_table_with_a_foreign_key_to_an_existing_table_warns_that_it_locks_the_existing_one() -> None:
    script = "CREATE TABLE note (id int, account_id int REFERENCES account (id));\n"
    assert _fk_findings(script) == [("public.account", 1)]
    (finding,) = [f for f in lint(split_statements(script), existing_tables=EXISTING) if f.rule.value.startswith("fo")]
    assert "SHARE ROW EXCLUSIVE" in finding.message and finding.hazard is HazardKind.SHARE_LOCK
    timeouts = [
        f for f in lint(split_statements(script), existing_tables=EXISTING) if f.rule is LintRule.REQUIRE_LOCK_TIMEOUT
    ]
    assert [f.object for f in timeouts] == ["public.account"]


def test_a_table_level_foreign_key_and_a_prisma_style_alter_on_a_new_table_are_flagged_too() -> None:
    script = (
        'CREATE TABLE "Note" (id int, a int, p int, CONSTRAINT n_a FOREIGN KEY (a) REFERENCES account (id));\n'
        'ALTER TABLE "Note" ADD CONSTRAINT "Note_p_fkey" FOREIGN KEY ("p") REFERENCES "post"("id");\n'
    )
    assert _fk_findings(script) == [("public.account", 1), ("public.post", 2)]


def test_a_foreign_key_lock_is_not_flagged_once_the_script_sets_a_lock_timeout() -> None:
    script = "SET lock_timeout = '5s';\nCREATE TABLE note (id int, account_id int REFERENCES account (id));\n"
    assert _fk_findings(script) == []
    assert LintRule.REQUIRE_LOCK_TIMEOUT not in {
        f.rule for f in lint(split_statements(script), existing_tables=EXISTING)
    }


def test_a_foreign_key_to_a_table_the_script_creates_or_to_itself_is_not_flagged() -> None:
    script = (
        "CREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent, up int REFERENCES child);\n"
    )
    assert _fk_findings(script) == []


def test_adding_a_foreign_key_to_an_existing_table_without_not_valid_flags_the_referenced_table() -> None:
    risky = "SET lock_timeout = '5s';\nALTER TABLE post ADD FOREIGN KEY (author) REFERENCES account (id);\n"
    assert _fk_findings(risky) == [("public.account", 2)]
    safe = risky.replace(");\n", ") NOT VALID;\n")
    assert _fk_findings(safe) == []
    column = "SET lock_timeout = '5s';\nALTER TABLE post ADD COLUMN owner int REFERENCES account;\n"
    assert _fk_findings(column) == [("public.account", 2)]
