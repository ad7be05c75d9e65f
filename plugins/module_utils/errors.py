# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The root of the collection's domain errors: what a user can act on (a refused setting, a failed API call, a
rollout that rolled back). The module runner reports one as a clean message with its `extra` in the result;
anything else is a bug and keeps its traceback."""
from __future__ import annotations


class WideEPError(Exception):
    """A domain error. `extra`: what the task result carries besides `msg`."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.extra = extra


class InvalidInput(WideEPError):
    """A module argument or input file that cannot be used, said with what would be valid."""
