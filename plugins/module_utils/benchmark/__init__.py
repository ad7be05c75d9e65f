# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The inference-perf benchmark: its configuration, the Job that runs it, and the report."""
