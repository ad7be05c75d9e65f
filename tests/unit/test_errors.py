"""The collection's error root (module_utils/errors.py): a domain error carries what the task result shows."""
from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput, WideEPError


def test_extra_fields_travel_with_the_message():
    err = InvalidInput("wide_ep_x: bad", problems=["a", "b"])
    assert isinstance(err, WideEPError) and str(err) == "wide_ep_x: bad" and err.extra == {"problems": ["a", "b"]}
    assert WideEPError("plain").extra == {}
