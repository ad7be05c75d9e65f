"""What a user reads about the shared settings: the defaults role's comments, its argument spec, the README."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS_TEXT = (ROOT / "roles/wide_ep_defaults/defaults/main.yml").read_text()
SETTINGS = yaml.safe_load((ROOT / "roles/wide_ep_defaults/meta/argument_specs.yml").read_text())[
    "argument_specs"]["settings"]["options"]
README = (ROOT / "README.md").read_text()


def comment_of(name):
    """The comment after `name:` in roles/wide_ep_defaults/defaults/main.yml."""
    line = next(line for line in DEFAULTS_TEXT.splitlines() if line.startswith(name + ":"))
    return line.split("#", 1)[1]
