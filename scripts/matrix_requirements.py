"""What each leg of the test matrix installs (scripts/setup.sh, matrix_venvs), printed as pip requirement lines.

  matrix_requirements.py pinned ANSIBLE_CORE   requirements-dev.txt's pins, ansible-core at that version
  matrix_requirements.py oldest                every requirement of requirements.txt at its lower bound
  matrix_requirements.py newest                requirements.txt as written: pip resolves it on the day
Each adds the test runner's pins (pytest, hypothesis) from requirements-dev.txt; nothing else of the dev tools.
"""
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TEST_RUNNER = ("pytest", "hypothesis")
DEV_ONLY = ("ansible-core", "molecule", "ansible-lint", "yamllint", "ruff")


def lines(path):
    for raw in (ROOT / path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            yield Requirement(line)


def lowest(req):
    bounds = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
    if len(bounds) != 1:
        sys.exit("requirements.txt: %s declares no single lower bound (>=); the oldest leg cannot install it" % req)
    return "%s==%s" % (req.name, bounds[0])


def main(kind, ansible_core=None):
    dev = {r.name: r for r in lines("requirements-dev.txt")}
    out = ["%s" % dev[name] for name in TEST_RUNNER]
    if kind == "pinned":
        out += [str(r) for name, r in dev.items() if name not in DEV_ONLY + TEST_RUNNER]
        out.append("ansible-core==%s" % ansible_core)
    elif kind == "oldest":
        out += [lowest(r) for r in lines("requirements.txt")]
    elif kind == "newest":
        out += [str(r) for r in lines("requirements.txt")]
    else:
        sys.exit("matrix_requirements.py: unknown leg %r (pinned VERSION, oldest, newest)" % kind)
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
