"""What the kubelet process keeps out of its memory; ``main.py`` imports this first.

structlog's console renderer (``structlog.dev``, loaded with structlog itself)
imports ``rich`` whenever it is installed, and ``rich`` brings ``attrs`` and
``pygments``: about 4 MiB that a kubelet logging JSON (no terminal: systemd,
``peapod up --detach``) never uses. A node installed from the wheelhouse has
none of them; a development venv has them (import-linter needs ``rich``), and
so did the kubelets ``make bench`` measured. On a terminal the console
renderer keeps them. Other modules the kubelet needs only on some paths load
where they are used: HTTP/2 for a grpc probe (``probes.py``), YAML for static
pod manifests (``manifests.py``), every other kind's models with the manifest
reader (``peapod.api``).
"""

import sys

if "structlog" not in sys.modules and not sys.stderr.isatty():
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` fails: structlog goes without
