"""What every interop script shares: checks that report one line each, the
expected-error helper, and the closing "N passed, M failed" line the Rust
driver reads."""

import sys
import traceback

RESULTS = []


def check(label):
    """Runs the decorated function now as one check, reporting ok or FAIL."""

    def wrap(fn):
        try:
            fn()
            RESULTS.append((label, None))
            print(f"ok   {label}")
        except Exception as e:  # noqa: BLE001 - every failure is reported
            RESULTS.append((label, e))
            print(f"FAIL {label}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
        return fn

    return wrap


def expect_error(code, fn):
    """Calls fn, which must fail with the SDK error `code`; returns the error."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        got = getattr(e, "code", None)
        assert got == code, f"expected error code {code}, got {got!r} ({e})"
        return e
    raise AssertionError(f"expected error code {code}, but the call succeeded")


def finish():
    """Prints the summary line and exits 1 if any check failed."""
    passed = sum(1 for _, e in RESULTS if e is None)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
