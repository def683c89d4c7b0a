"""``peapod-kubelet --node-name`` is refused at start unless it is a DNS label."""

from __future__ import annotations

import pytest

from peapod.kubelet.main import main


@pytest.mark.parametrize("name", ["pi.x", "Pi", "pi_x", "a" * 64, ""])
def test_a_node_name_that_is_not_a_dns_label_stops_the_kubelet_at_start(name, capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["--creds", str(tmp_path / "none.json"), "--node-name", name,
              "--state-dir", str(tmp_path / "state")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f'peapod-kubelet: error: argument --node-name: Invalid value: "{name}": '
                            "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                            "characters or '-'"), error
    assert not (tmp_path / "state").exists()  # nothing was done


@pytest.mark.parametrize(("value", "words"), [
    ("dongle=1", "\"dongle\": doesn't follow extended resource name standard"),
    ("example.com/dongle=1.5", '"1.5": must be an integer'),
    ("example.com/dongle", "expected NAME=COUNT"),
])
def test_extended_resources_that_kubernetes_would_refuse_stop_the_kubelet_at_start(
        value, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["--creds", str(tmp_path / "none.json"), "--extended-resources", value,
              "--state-dir", str(tmp_path / "state")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("peapod-kubelet: error: argument --extended-resources: ") and \
        words in error, error
    assert not (tmp_path / "state").exists()
