"""ansible-test's pip bootstrap, for machines that cannot reach the address it downloads get-pip.py from: installs
the pip this Python bundles (ensurepip), then lets that pip install what ansible-test asked for (e.g. pip==24.2)
from the package index. scripts/sanity.sh puts it where ansible-test looks for its cached copy; its venvs are
built by scripts/setup.sh (--prime-venvs), outside the cluster's namespace."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
