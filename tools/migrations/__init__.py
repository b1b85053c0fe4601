"""Migrations: read, prepare, apply.

Prepare (check_migration): `parse` splits a script into statements (author's text, kind, transactional, line),
`rewrite` makes it safe and re-runnable on the target, `lint` says what each statement risks on live tables,
`dryrun` runs it where nothing can last, `check` puts them together. Apply: `folder`, `steps`, `runner`.
"""
