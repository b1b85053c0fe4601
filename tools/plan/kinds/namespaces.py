"""Schemas, extensions and collations."""

from __future__ import annotations

from pgshift.tools.diff import field_changes
from pgshift.tools.model import Collation, Extension, Namespace
from pgshift.tools.plan.context import Context
from pgshift.tools.plan.ddl import comment_on
from pgshift.tools.plan.statement import Hazard, HazardKind, Statement
from pgshift.tools.sql import quote_ident, quote_literal


class SchemaGenerator:
    kind = "schema"

    def create(self, new: Namespace, ctx: Context) -> list[Statement]:
        out = [Statement(sql=f"CREATE SCHEMA {quote_ident(new.name)}", object=f"schema {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"SCHEMA {quote_ident(new.name)}", new.comment)))
        return out

    def drop(self, old: Namespace, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP SCHEMA {quote_ident(old.name)}", object=f"schema {old.key}")]

    def alter(self, old: Namespace, new: Namespace, ctx: Context) -> list[Statement] | None:
        return [Statement(sql=comment_on(f"SCHEMA {quote_ident(new.name)}", new.comment))]


def _version(text: str) -> tuple[tuple[int, str], ...]:
    """An extension version for ordering: numeric parts compare as numbers (`1.10` after `1.9`)."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in text.replace("-", ".").split("."))


class ExtensionGenerator:
    """Extensions go where the source has them, at the source's version when the target can install it (else
    at the target's default version: asking for a version the target lacks would fail)."""

    kind = "extension"

    def create(self, new: Extension, ctx: Context) -> list[Statement]:
        out = []
        if new.schema != "public" and new.schema not in {n.name for n in ctx.source.namespaces}:
            # A schema the model leaves out (Supabase's `extensions`): create it when the target lacks it.
            out.append(Statement(sql=f"CREATE SCHEMA IF NOT EXISTS {quote_ident(new.schema)}"))
        version = f" VERSION {quote_literal(new.version)}" if ctx.target.can_install(new.name, new.version) else ""
        sql = f"CREATE EXTENSION IF NOT EXISTS {quote_ident(new.name)} WITH SCHEMA {quote_ident(new.schema)}{version}"
        out.append(Statement(sql=sql, object=f"extension {new.key}"))
        return out

    def drop(self, old: Extension, ctx: Context) -> list[Statement]:
        hazard = Hazard.of(HazardKind.DELETES_DATA, f"dropping extension {old.name} drops the objects it created")
        return [
            Statement(sql=f"DROP EXTENSION {quote_ident(old.name)}", hazards=(hazard,), object=f"extension {old.key}")
        ]

    def alter(self, old: Extension, new: Extension, ctx: Context) -> list[Statement] | None:
        changed = {f.field for f in field_changes(self.kind, old, new, ctx.equivalences, new.key)}
        if "version" in changed and _version(new.version) < _version(old.version):
            return None  # extensions ship update scripts forward only: a downgrade is drop and create
        out = []
        name = quote_ident(new.name)
        if "schema" in changed:
            out.append(Statement(sql=f"ALTER EXTENSION {name} SET SCHEMA {quote_ident(new.schema)}"))
        if "version" in changed:
            out.append(Statement(sql=f"ALTER EXTENSION {name} UPDATE TO {quote_literal(new.version)}"))
        if "comment" in changed:
            out.append(Statement(sql=comment_on(f"EXTENSION {name}", new.comment)))
        return out


class CollationGenerator:
    kind = "collation"

    def create(self, new: Collation, ctx: Context) -> list[Statement]:
        opts: list[str] = []
        if new.provider == "i":
            opts += ["provider = icu", f"locale = {quote_literal(new.locale or '')}"]
        elif new.provider == "b":
            opts += ["provider = builtin", f"locale = {quote_literal(new.locale or '')}"]
        else:
            opts += [f"lc_collate = {quote_literal(new.locale or '')}", f"lc_ctype = {quote_literal(new.ctype or '')}"]
        if not new.deterministic:
            opts.append("deterministic = false")
        out = [Statement(sql=f"CREATE COLLATION {new.key} ({', '.join(opts)})", object=f"collation {new.key}")]
        if new.comment is not None:
            out.append(Statement(sql=comment_on(f"COLLATION {new.key}", new.comment)))
        return out

    def drop(self, old: Collation, ctx: Context) -> list[Statement]:
        return [Statement(sql=f"DROP COLLATION {old.key}", object=f"collation {old.key}")]

    def alter(self, old: Collation, new: Collation, ctx: Context) -> list[Statement] | None:
        if (old.provider, old.locale, old.ctype, old.deterministic) != (
            new.provider,
            new.locale,
            new.ctype,
            new.deterministic,
        ):
            return None
        return [Statement(sql=comment_on(f"COLLATION {new.key}", new.comment))]
