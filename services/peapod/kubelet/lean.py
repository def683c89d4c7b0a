"""What the kubelet process keeps out of its memory; ``main.py`` imports this first.

structlog's console renderer (``structlog.dev``, loaded with structlog itself)
imports ``rich`` whenever it is installed, and ``rich`` brings ``attrs`` and
``pygments``: about 4 MiB that a kubelet logging JSON (no terminal: systemd,
``peapod up --detach``) never uses. A node installed from the wheelhouse has
none of them; a development venv has them (import-linter needs ``rich``), and
so did the kubelets ``make bench`` measured. On a terminal the console
renderer keeps them.

requests (under podman-py) imports ``charset_normalizer`` to guess the
encoding of a text body that names none: 2.6 MiB, on every node. podman's REST
API answers JSON, which requests decodes as UTF-8 without guessing (its
``json()``, and ``text`` for ``application/json``); without the guesser,
requests' own fallback for other bodies is UTF-8, which podman writes. So the
kubelet goes without it, and without the warning requests prints about it.

Other modules the kubelet needs only on some paths load where they are used:
HTTP/2 for a grpc probe (``probes.py``), YAML for static pod manifests
(``manifests.py``), every other kind's models with the manifest reader
(``peapod.api``). The models themselves build their validators on first use
(``defer_build`` in ``peapod.api.base``): a kubelet validates Pods, Nodes and
Events, never most of the models it imports.
"""

import sys
import warnings

if "structlog" not in sys.modules and not sys.stderr.isatty():
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` fails: structlog goes without
if "requests" not in sys.modules:
    for _guesser in ("charset_normalizer", "chardet"):
        sys.modules.setdefault(_guesser, None)  # type: ignore[arg-type]  # requests goes without
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")
