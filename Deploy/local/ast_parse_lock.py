"""Lets one thread at a time run `ast.parse` on CPython releases that share the AST
constructor's recursion counter between threads (before 3.11.8, and 3.12.0-3.12.1: gh-106905).
There, two threads parsing at once can fail with "SystemError: AST constructor recursion depth
mismatch"; Schemathesis's worker threads do, through Hypothesis reading source files for
constants. python-tools.sh loads this module at start-up through a .pth file in the virtual
environment."""
import sys

if sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 2):
    import ast
    import threading

    _lock = threading.RLock()
    _parse = ast.parse

    def parse(*args, **kwargs):
        with _lock:
            return _parse(*args, **kwargs)

    parse.__doc__ = _parse.__doc__
    ast.parse = parse
