"""Schemathesis hooks for Deploy/local/contract-check.sh (loaded by schemathesis.toml)."""

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    """A list's `cursor` is opaque: only a `next_cursor` the API gave is one, which no schema can
    describe, so a generated cursor is rightly refused (400, rule `format`) whatever its shape. A
    case meant to be valid goes without it; a case meant to be invalid keeps it."""
    query = case.query
    if query and "cursor" in query and case.meta is not None and case.meta.generation.mode.is_positive:
        del query["cursor"]


# A recipient upload in JSON lines is text on the wire, as `text/csv` is (Schemathesis sends
# other `text/*` types as text already): a generated string goes as its UTF-8 bytes.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
