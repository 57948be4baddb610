"""`python -m actlab` is the `actlab` command."""

from actlab.cli import run

run()
