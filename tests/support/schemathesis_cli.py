"""`python -m tests.support.schemathesis_cli ARGS`: schemathesis's command line, with
`ast.parse` made one thread at a time.

CPython 3.11 keeps the AST constructor's recursion depth in state shared by all threads
(fixed in 3.12, gh-106905), so two of schemathesis's worker threads parsing at once (as
Hypothesis does to describe a strategy's lambdas) can fail with "AST constructor recursion
depth mismatch": a crash of the tool, not a finding about the server.
"""

from __future__ import annotations

import ast
import sys
import threading

_parse = ast.parse
_one_at_a_time = threading.Lock()


def _serialized_parse(*args, **kwargs):
    with _one_at_a_time:
        return _parse(*args, **kwargs)


if __name__ == "__main__":
    if sys.version_info < (3, 12):
        ast.parse = _serialized_parse  # type: ignore[assignment]
    from schemathesis.cli import schemathesis

    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
