# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""The deployment as data: the topology model, the release profiles, provider and gateway records, the launchers and
the renderer, and the plan everything downstream reads."""
