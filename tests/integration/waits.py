"""How long the suite waits for something that is going to happen.

A wait ends as soon as its event is seen, so a generous bound costs nothing
on a quiet machine and keeps the suite green on a loaded one (CI runs on two
shared cores, the sanitizer build is several times slower).  Bounds are not
measurements: performance is measured in tests/bench, never here.
SP_TEST_WAIT overrides the bound (seconds)."""
from __future__ import annotations

import os

WAIT = float(os.environ.get("SP_TEST_WAIT", "60"))
