"""tests/unit mirrors plugins/module_utils: each module_utils/<package>/<name>.py has its
tests/unit/<package>/test_<name>.py, and module_utils holds nothing outside its domain packages but the shared
pieces every package uses."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "plugins" / "module_utils"
PACKAGES = {"render", "k8s", "day2", "fabric", "benchmark"}
SHARED = {"errors", "runner", "progress", "checklist", "yamlout", "versions"}


def test_every_module_util_has_its_unit_test():
    missing = [str(p.relative_to(UTILS)) for p in UTILS.rglob("*.py") if p.name != "__init__.py"
               and not (ROOT / "tests" / "unit" / p.parent.relative_to(UTILS) / ("test_" + p.name)).exists()]
    assert missing == []


def test_module_utils_is_its_domain_packages_and_the_shared_pieces():
    assert {p.name for p in UTILS.iterdir() if p.is_dir() and p.name != "__pycache__"} == PACKAGES
    assert {p.stem for p in UTILS.glob("*.py")} == SHARED
