"""Native decoders write to the process's stderr: keep that off the terminal when they fail.

A Rust decoder (``databento_dbn``) that panics on damaged input prints the panic and, with
``RUST_BACKTRACE`` set, a backtrace straight to file descriptor 2 before Python sees the
exception. :func:`quiet_native_stderr` holds fd 2 aside while the call runs: if the call
raises, its exception (which carries the panic message) is all the user sees, as one line;
if it returns, whatever it wrote is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Capture what native code writes to fd 2; replay it only if the block succeeds."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    os.write(2, text)
