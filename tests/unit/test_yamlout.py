"""YAML for people (module_utils/yamlout.py): scripts as literal blocks, order kept, streams read whole."""
import io

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout


def test_multiline_strings_are_literal_blocks_and_keys_keep_their_order():
    text = yamlout.dump({"z": 1, "args": ["set -e\nexec vllm serve m\n"], "a": "one line"})
    assert text.splitlines()[0] == "z: 1"
    assert "- |\n  set -e\n  exec vllm serve m\n" in text
    assert "a: one line" in text
    assert yamlout.safe_load(text) == {"z": 1, "args": ["set -e\nexec vllm serve m\n"], "a": "one line"}


def test_load_all_skips_empty_documents():
    docs = yamlout.load_all(io.StringIO("---\na: 1\n---\n---\nb: 2\n"))
    assert docs == [{"a": 1}, {"b": 2}]
