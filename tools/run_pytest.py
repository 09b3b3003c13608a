"""Run pytest and turn "no tests ran" (exit 5) into a failure with a clear message.

CI must never pass on an empty run: a collection filter or a moved folder would otherwise
hide the whole suite.
"""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5


def main(argv: list[str]) -> int:
    code = int(pytest.main(argv))
    if code == NO_TESTS_COLLECTED:
        print(f"error: pytest ran no tests for {' '.join(argv) or 'tests'}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
