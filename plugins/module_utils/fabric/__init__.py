# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""GPU hosts and their fabric: GPU facts and checks, RDMA devices, the NIC mesh plan and its probe."""
