"""Approvals: a write to a protected environment runs only after a person approved exactly that write.

One engine for every write (execute_sql, apply_migration, deploy). A write's first call files an
*approval request*: the exact statements, their hazards, the target environment and its redacted URL, and a
binding (SHA-256 over the action, the environment, the statements and, for migrations, the target's schema
fingerprint). The assistant receives only the request's id. A person approves it outside the assistant's MCP
channel (`pgshift approve <id>` at a terminal, or the client's elicitation form, answered by the person), and
the next call with that id consumes the approval atomically: once, within 15 minutes, and only if the statements
and the target still bind to the same digest.

Requests live as files in a directory shared by every pgshift process of the user (the MCP server and the
`pgshift approve` command): `$PGSHIFT_STATE_DIR/approvals`, by default `$XDG_STATE_HOME/pgshift/approvals` or
`~/.local/state/pgshift/approvals`; the directory is created 0700 and every file 0600. A request file holds
statements and names, never a password. `<id>.json` is the request, `<id>.approved` the person's approval;
consuming renames the approval away (atomic: of two concurrent calls only one wins) and deletes both.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pgshift.tools.errors import ConfigError, NotAllowed
from pgshift.tools.files import private_dir

APPROVAL_TTL_S = 15 * 60
Action = Literal["execute_sql", "apply_migration", "deploy", "rollback"]
_ID = re.compile(r"[a-f0-9]{16}")  # always fullmatch: a trailing newline is no id


class ApprovalRequest(BaseModel):
    """What a person is asked to approve, as filed (never a password: the URL is redacted)."""

    model_config = ConfigDict(frozen=True)

    id: str
    action: Action
    environment: str
    url: str = Field(description="The target's URL with the password masked")
    statements: list[str] = Field(description="Exactly what will run, in order")
    hazards: list[str] = Field(default_factory=list)
    target_fingerprint: str | None = None
    project: str | None = Field(None, description="The folder the write was asked from (its project), when known")
    binding: str = Field(description="SHA-256 over the target's URL and what will run there (see `binding_of`)")
    created_at: float
    expires_at: float

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


def binding_of(url: str, parts: Sequence[str]) -> str:
    """The digest an approval is bound to: the target's (redacted) URL, so a reconfigured environment of the same
    name does not match, and the caller's parts (action, environment, statements, schema fingerprint)."""
    return hashlib.sha256("\x1f".join((url, *parts)).encode()).hexdigest()


def default_state_dir() -> Path:
    """`$PGSHIFT_STATE_DIR`, else `$XDG_STATE_HOME/pgshift`, else `~/.local/state/pgshift`."""
    if os.environ.get("PGSHIFT_STATE_DIR"):
        return Path(os.environ["PGSHIFT_STATE_DIR"])
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "pgshift"


def _write_new(path: Path, text: str) -> None:
    """Create `path` (0600) with `text`; FileExistsError if anything (a link included) is already there: never
    follows a link, never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class ApprovalStore:
    """Approval requests on disk, shared by the server and `pgshift approve` (no in-memory state)."""

    def __init__(self, directory: Path | None = None, ttl_s: int = APPROVAL_TTL_S) -> None:
        self.directory = (directory or default_state_dir()) / "approvals"
        self.ttl_s = ttl_s

    def _path(self, request_id: str, suffix: str) -> Path:
        if not _ID.fullmatch(request_id):
            raise NotAllowed(f"'{request_id[:40]}' is not an approval request id: nothing was run.")
        return self.directory / f"{request_id}{suffix}"

    def _ensure_dir(self) -> None:
        private_dir(self.directory)  # 0700, ours, reached through no link another user owns

    def file(
        self,
        action: Action,
        environment: str,
        url: str,
        statements: Sequence[str],
        binding: Sequence[str],
        hazards: Sequence[str] = (),
        target_fingerprint: str | None = None,
    ) -> ApprovalRequest:
        """File a new pending request for these statements and return it."""
        now = time.time()
        request = ApprovalRequest(
            id=secrets.token_hex(8),
            action=action,
            environment=environment,
            url=url,
            statements=list(statements),
            hazards=list(hazards),
            target_fingerprint=target_fingerprint,
            project=_project(),
            binding=binding_of(url, binding),
            created_at=now,
            expires_at=now + self.ttl_s,
        )
        self._save(request)
        return request

    def _save(self, request: ApprovalRequest) -> None:
        self._ensure_dir()
        self.purge_expired()
        _write_new(self._path(request.id, ".json"), request.model_dump_json())

    def load(self, request_id: str) -> ApprovalRequest:
        """The pending request `request_id`; NotAllowed when unknown, used, withdrawn or expired."""
        try:
            request = ApprovalRequest.model_validate_json(self._path(request_id, ".json").read_text())
        except FileNotFoundError:
            raise NotAllowed(
                f"approval request {request_id} does not exist (already used, withdrawn or expired): nothing was run."
            ) from None
        except (ValidationError, json.JSONDecodeError):
            raise ConfigError(f"approval request {request_id} is unreadable: nothing was run.") from None
        if request.expired:
            self.withdraw(request_id)
            raise NotAllowed(f"approval request {request_id} expired: nothing was run. Start over with a new call.")
        return request

    def pending(self) -> list[ApprovalRequest]:
        """Every pending (unexpired) request, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            try:
                found.append(self.load(path.stem))
            except (NotAllowed, ConfigError):
                continue
        return sorted(found, key=lambda r: r.created_at)

    def listed(self) -> list[ApprovalRequest]:
        """Every pending (unexpired) request, oldest first, read without changing anything: unlike `pending`, an
        expired or unreadable request is skipped, not deleted (for status views that only look)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            try:
                request = ApprovalRequest.model_validate_json(path.read_text())
            except (OSError, ValidationError, json.JSONDecodeError):
                continue
            if _ID.fullmatch(path.stem) and request.id == path.stem and not request.expired:
                found.append(request)
        return sorted(found, key=lambda r: r.created_at)

    def is_approved(self, request_id: str) -> bool:
        return self._path(request_id, ".approved").exists()

    def approve(self, request_id: str, shown: ApprovalRequest | None = None) -> ApprovalRequest:
        """Record a person's approval of the pending request (once), of what they were `shown` when given.

        Call only on a person's behalf: the `pgshift approve` command, or a person's answer to elicitation.
        """
        request = self.load(request_id)
        if shown is not None and shown.binding != request.binding:
            raise NotAllowed(f"approval request {request_id} changed while it was shown: not approved.")
        try:
            _write_new(self._path(request_id, ".approved"), request.binding)
        except FileExistsError:
            raise NotAllowed(f"approval request {request_id} is already approved.") from None
        return request

    def withdraw(self, request_id: str) -> None:
        """Remove a request and any approval of it (a person declined, or it expired)."""
        for suffix in (".approved", ".json"):
            self._path(request_id, suffix).unlink(missing_ok=True)

    def consume(self, request_id: str, url: str, binding: Sequence[str], what: str) -> ApprovalRequest:
        """Use up a person's approval of exactly this write; NotAllowed (nothing runs) otherwise.

        The approval is claimed by an atomic rename before anything is checked, so it serves one call only,
        even one that is then refused because the statements or the target changed.
        """
        claimed = self._path(request_id, f".claimed-{secrets.token_hex(4)}")
        try:
            os.rename(self._path(request_id, ".approved"), claimed)
        except FileNotFoundError:
            request = self.load(request_id)  # raises when unknown, used or expired
            raise NotAllowed(
                f"approval request {request.id} for {what} on '{request.environment}' is not approved yet: nothing "
                f"was run. A person must approve it first ({how_to_approve(request.id)}); then call again with "
                "this approval_id."
            ) from None
        try:
            approved_binding = claimed.read_text()
            request = self.load(request_id)
        finally:
            claimed.unlink(missing_ok=True)
            self._path(request_id, ".json").unlink(missing_ok=True)
        if not (approved_binding == request.binding == binding_of(url, binding)):
            raise NotAllowed(
                f"approval {request_id} does not match {what}: the statements or the target changed since the person "
                "approved it. Nothing was run, and the approval is used up. Call again without approval_id to file a "
                "new request."
            )
        return request

    def purge_expired(self) -> None:
        """Delete requests past their expiry (and leftovers of interrupted claims)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.glob("*.json"):
            try:
                expired = ApprovalRequest.model_validate_json(path.read_text()).expired
            except (OSError, ValidationError, json.JSONDecodeError):
                expired = True
            if expired and _ID.fullmatch(path.stem):
                self.withdraw(path.stem)
            elif expired:
                path.unlink(missing_ok=True)


class Drafts(ApprovalStore):
    """Files nothing: holds the request a write would file, so a person can be asked before anything is filed.

    Used to ask through elicitation: a person who declines leaves nothing behind that anyone could approve.
    """

    def __init__(self) -> None:
        super().__init__(Path(os.devnull))
        self.drafted: ApprovalRequest | None = None

    def _save(self, request: ApprovalRequest) -> None:
        self.drafted = request


def _project() -> str | None:
    """The folder this process works in (an MCP server runs in its project): names the request beside others."""
    try:
        return str(Path.cwd())
    except OSError:
        return None


MIGRATION_HEADER = "-- migration "


def statements_to_run(request: ApprovalRequest) -> list[tuple[str | None, list[str]]]:
    """The request's statements as they will run, split with PostgreSQL's parser, grouped by migration for a
    deploy (its request holds one script per migration, headed `-- migration <label>`): (label or None, texts).
    A script the parser rejects stays one entry (it is shown as filed; running it will fail the same way)."""
    from pgshift.tools.errors import PgshiftError
    from pgshift.tools.migrations.parse import split_statements

    groups: list[tuple[str | None, list[str]]] = []
    for script in request.statements:
        label = None
        first, _, rest = script.partition("\n")
        if script.startswith(MIGRATION_HEADER):
            label, script = first.removeprefix(MIGRATION_HEADER).strip(), rest
        try:
            texts = [st.text for st in split_statements(script)]
        except PgshiftError:
            texts = [script.strip()] if script.strip() else []
        if label is not None or not groups or groups[-1][0] is not None:
            groups.append((label, texts))
        else:
            groups[-1][1].extend(texts)
    return groups


def statement_count(request: ApprovalRequest) -> int:
    """How many statements will run (counted by the parser, not by script)."""
    return sum(len(texts) for _, texts in statements_to_run(request))


def request_line(request: ApprovalRequest) -> str:
    """One line naming the request: id, what, where, from which project, how many statements."""
    origin = f" from {request.project}" if request.project else ""
    n = statement_count(request)
    return (
        f"{request.id}  {request.action} on '{request.environment}' ({request.url}){origin}: "
        f"{n} statement{'s' if n != 1 else ''}"
    )


def how_to_approve(request_id: str) -> str:
    return f"run `pgshift approve {request_id}` in a terminal"


def instruction(request: ApprovalRequest, what: str) -> str:
    """What the assistant tells the person (it cannot approve itself)."""
    return (
        f"'{request.environment}' is protected: nothing was run. Approval request {request.id} holds {what}. Show "
        f"them to the person and ask them to {how_to_approve(request.id)} (it shows the exact statements and asks "
        "them to type the environment's name). Only after they approved, call again with the same arguments and "
        f"approval_id='{request.id}'. The approval is single-use, expires in 15 minutes, and is refused if the "
        "statements or the target change in between. You cannot approve it yourself."
    )


def describe(request: ApprovalRequest) -> str:
    """What the person approves: action, target, exact statements, hazards (the same text for the same write)."""
    groups = statements_to_run(request)
    n = sum(len(texts) for _, texts in groups)
    migrations = sum(1 for label, _ in groups if label is not None)
    counted = f"{n} statement{'s' if n != 1 else ''}" + (f" in {migrations} migration(s)" if migrations else "")
    lines = [
        f"{request.action} on protected environment '{request.environment}', {counted}",
        f"  target: {request.url}",
    ]
    if request.project:
        lines.append(f"  asked from: {request.project}")
    if request.target_fingerprint:
        lines.append(f"  schema fingerprint: {request.target_fingerprint}")
    lines += ["", "Statements, exactly as they will run:"]
    i = 0
    for label, texts in groups:
        if label is not None:
            lines += ["", f"== migration {label} ({len(texts)} statement{'s' if len(texts) != 1 else ''})"]
        for sql in texts:
            i += 1
            lines += [f"--- {i}", sql.rstrip()]
    if request.hazards:
        lines += ["", "Hazards:"] + [f"  - {h}" for h in request.hazards]
    return "\n".join(lines)


def render_request(request: ApprovalRequest) -> str:
    """The request as a person reads it at a terminal before approving."""
    minutes = max(0, int((request.expires_at - time.time()) // 60))
    return f"Approval request {request.id} (expires in about {minutes} min): {describe(request)}"
