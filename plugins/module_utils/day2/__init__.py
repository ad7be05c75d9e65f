# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""Day-2 operations on a live deployment: rollouts behind gates, their lease and revision record, and the LWS
controller's upgrade rules."""
