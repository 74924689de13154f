"""What every SDK check shares: named checks that are counted, and the fake's settings."""

import os
import sys
import traceback

_passed = 0
_failed = []


def env(name):
    """A setting the fake's binary printed (run.sh exports them)."""
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run this through tests/sdk-check/run.sh")
    return value


def check(what, ok, detail=""):
    global _passed
    if ok:
        _passed += 1
        print(f"  ok   {what}")
    else:
        _failed.append(what)
        print(f"  FAIL {what} {detail}")


def step(what, fn):
    """Runs fn; an exception is a failed check (the SDK refused the fake's answer)."""
    try:
        value = fn()
        check(what, True)
        return value
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        check(what, False, f"{type(e).__name__}: {e}")
        traceback.print_exc(limit=3)
        return None


def raises(what, exc_type, fn, pred=lambda e: True):
    """fn must raise the SDK's typed error exc_type, and pred(error) must hold."""
    try:
        fn()
    except exc_type as e:
        check(what, pred(e), f"{type(e).__name__}: {e}")
        return e
    except Exception as e:  # noqa: BLE001
        check(what, False, f"raised {type(e).__name__} instead of {exc_type.__name__}: {e}")
        return None
    check(what, False, f"did not raise {exc_type.__name__}")
    return None


def done(name):
    print(f"{name}: {_passed} passed, {len(_failed)} failed")
    for f in _failed:
        print(f"  failed: {f}")
    sys.exit(1 if _failed else 0)
