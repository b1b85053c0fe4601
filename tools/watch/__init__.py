"""Watch: read-only health of a live database — who holds and waits for locks (`locks`), and Supabase-style
advisors (`advisors`, one catalog query per lint in `lints/`)."""
