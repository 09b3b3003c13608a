"""The suite's layout: `make test` collects every test folder in one pytest run.

Test folders have no ``__init__.py`` (pytest's rootdir import mode), so two test modules
with the same file name in different folders stop the whole run at collection — a mistake
that running `tests/unit` and `tests/integration` apart never shows.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_file_name() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        if "__pycache__" in path.parts or (path.parent / "__init__.py").exists():
            continue  # a module inside a package is imported by its dotted name
        where[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not clashes, f"test modules sharing a file name (pytest cannot collect both): {clashes}"
