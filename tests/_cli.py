"""Running the ``actlab`` command inside the test process (no subprocess per example)."""

from __future__ import annotations

from actlab.cli import main


def cli(capsys, *argv):
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
