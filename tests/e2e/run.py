#!/usr/bin/env python3
"""Runs Conveyor's end-to-end tests against the binaries of one build.

    python3 tests/e2e/run.py --build build [-k PATTERN] [--keep]

Every test_*.py here drives the real processes over their real ports. When
a test fails, the tail of every process's log is printed under it. The last
line is `e2e: N passed, N failed`; the exit code is non-zero on failure."""

import argparse
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class Result(unittest.TestResult):
    """Prints one line per test as it ends, with log tails on failure."""

    def __init__(self):
        super().__init__()
        self.passed = []
        self.failed = []
        self.started = {}
        self.tails_shown = set()

    def startTest(self, test):
        super().startTest(test)
        self.started[test.id()] = time.monotonic()
        print("... %s" % short(test), flush=True)

    def elapsed(self, test):
        return time.monotonic() - self.started.get(test.id(),
                                                   time.monotonic())

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())
        print("ok   %s (%.1f s)" % (short(test), self.elapsed(test)),
              flush=True)

    def report(self, test, err, kind):
        self.failed.append(test.id())
        print("FAIL %s (%s, %.1f s)" % (short(test), kind, self.elapsed(test)))
        print("".join(traceback.format_exception(*err)).rstrip())
        cv = getattr(test, "cv", None)
        if cv is not None:
            print(cv.tails())
        sys.stdout.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.report(test, err, "failure")

    def addError(self, test, err):
        super().addError(test, err)
        self.report(test, err, "error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            print("  subtest %s failed:" % subtest._subDescription())
            print("  " + "".join(traceback.format_exception(*err))
                  .rstrip().replace("\n", "\n  "), flush=True)
            cv = getattr(test, "cv", None)
            if cv is not None and test.id() not in self.tails_shown:
                self.tails_shown.add(test.id())
                print(cv.tails(), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.failed.append(test.id())
        print("SKIP %s: %s (counted as failed)" % (short(test), reason))


def short(test):
    return test.id().replace("__main__.", "")


def tests_of(suite):
    """Flattens a suite into its test cases."""
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from tests_of(item)
        else:
            yield item


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build",
                    help="build folder with bin/<service> (default build)")
    ap.add_argument("-k", dest="pattern", action="append", default=[],
                    help="run only tests whose id contains this text")
    ap.add_argument("--keep", action="store_true",
                    help="keep each conveyor's temp dir (logs, databases)")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    os.environ["E2E_BUILD"] = build
    if args.keep:
        os.environ["E2E_KEEP"] = "1"
    sys.path.insert(0, HERE)

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    wanted = [t for t in tests_of(suite)
              if not args.pattern or any(p in t.id() for p in args.pattern)]
    # The crash test is the longest; run it last so quick failures show
    # first.
    wanted.sort(key=lambda t: ("test_crash" in t.id(), t.id()))
    total = len(wanted)
    bin_dir = os.path.join(build, "bin")
    built = sorted(os.listdir(bin_dir)) if os.path.isdir(bin_dir) else []
    print("e2e: %d tests against %s (bin/: %s)"
          % (total, build, ", ".join(built) or "nothing built"), flush=True)

    started = time.monotonic()
    result = Result()
    unittest.TestSuite(wanted).run(result)

    # A failed setUpClass runs none of its class's tests: count them all
    # as failed, not as absent. A failed tearDownClass (a sanitizer report
    # in a process log, say) comes after its tests passed: count it too.
    passed = len(set(result.passed))
    test_ids = set(t.id() for t in wanted)
    class_errors = set(f for f in result.failed if f not in test_ids)
    failed = total - passed + len(class_errors)
    print("e2e: %.0f s" % (time.monotonic() - started))
    print("e2e: %d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and total > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
