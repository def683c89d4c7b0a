"""The config file and ``peapod config VERB``: kubeconfig's shape, kubectl's words.

Every verb runs through ``peapod.cli.main.main`` as a user types it, against a
config file in a temporary PEAPOD_HOME, and its output is asserted exactly.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from peapod.bus.identity import Credentials, new_seed
from peapod.cli.context import Config, config_path, load_context, save_local_context
from peapod.cli.main import main, parse_args
from peapod.errors import Invalid

FLEET = """\
apiVersion: v1
kind: Config
current-context: fleet
preferences: {colors: true}
clusters:
- name: fleet
  cluster:
    server: tls://10.0.0.2:4222,tls://10.0.0.3:4222
    certificate-authority: pki/ca.crt
    x-note: kept as it is
- name: local
  cluster: {server: "nats://127.0.0.1:4222"}
users:
- name: fleet-admin
  user: {credentials: creds/admin.json}
- name: local-admin
  user: {credentials: /var/lib/peapod/creds/admin.json}
contexts:
- name: fleet
  context: {cluster: fleet, user: fleet-admin, namespace: prod}
- name: local
  context: {cluster: local, user: local-admin}
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PEAPOD_HOME", str(tmp_path))
    monkeypatch.delenv("PEAPOD_CONFIG", raising=False)
    monkeypatch.delenv("PEAPOD_CONTEXT", raising=False)
    return tmp_path


@pytest.fixture
def fleet(home: Path) -> Path:
    (home / "config").write_text(FLEET)
    return home / "config"


def peapod(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``peapod ARGV`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def fingerprint(path: Path) -> tuple[int, int]:
    """A replaced file has a new inode: the same fingerprint means it was not written."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


# -- the file ------------------------------------------------------------------------------

def test_the_file_is_peapod_config_else_peapod_home_config(home: Path, monkeypatch) -> None:
    assert config_path() == home / "config"
    monkeypatch.setenv("PEAPOD_CONFIG", str(home / "elsewhere.yaml"))
    assert config_path() == home / "elsewhere.yaml"


def test_a_context_resolves_to_server_credentials_ca_and_namespace(fleet: Path) -> None:
    seed = new_seed()
    Credentials(url="ignored", user="admin", seed=seed).save(fleet.parent / "creds" / "admin.json")
    context = Config.load().resolve()
    assert (context.name, context.server, context.namespace) == (
        "fleet", "tls://10.0.0.2:4222,tls://10.0.0.3:4222", "prod")
    # relative paths are relative to the config file
    assert context.ca_file == str(fleet.parent / "pki" / "ca.crt")
    assert context.creds_file == str(fleet.parent / "creds" / "admin.json")
    assert context.credentials() == Credentials(url="tls://10.0.0.2:4222,tls://10.0.0.3:4222",
                                                user="admin", seed=seed,
                                                ca_file=str(fleet.parent / "pki" / "ca.crt"))
    local = Config.load().resolve("local")
    assert (local.server, local.ca_file, local.namespace) == ("nats://127.0.0.1:4222", None, "default")


def test_the_context_is_the_flag_else_peapod_context_else_the_current_one(fleet: Path,
                                                                           monkeypatch) -> None:
    assert load_context().name == "fleet"
    monkeypatch.setenv("PEAPOD_CONTEXT", "local")
    assert load_context().name == "local"
    assert load_context("fleet").name == "fleet"
    args = parse_args(["get", "pods", "--context", "local", "-n", "kube-system"])
    assert (args.selected_context, args.sub_namespace) == ("local", "kube-system")
    assert parse_args(["--context", "fleet", "get", "pods"]).selected_context == "fleet"


def test_no_config_or_no_current_context_is_one_line_error(home: Path, capsys) -> None:
    code, out, err = peapod(capsys, "get", "pods")
    assert (code, out) == (1, "")
    assert err == (f"error: no context is set in {home / 'config'}: run \"peapod up\" or select "
                   "one with \"peapod config use-context NAME\"\n")


@pytest.mark.parametrize(("text", "problem"), [
    ("kind: Config\ncurrent-context: a: b\n",
     "is not valid YAML (line 2): mapping values are not allowed here"),
    ("apiVersion: v1\nkind: Pod\n", "is not a peapod config file (expected kind: Config)"),
    ("- a\n- b\n", "is not a peapod config file (expected kind: Config)"),
    ("apiVersion: v2\nkind: Config\n", ": apiVersion 'v2' is not supported (expected v1)"),
    ("kind: Config\nclusters: {local: x}\n", ": clusters must be a list"),
    ("kind: Config\nusers: [{user: {}}]\n", ": users[0] has no name"),
    ("kind: Config\ncontexts: [{name: a, context: [x]}]\n", ": contexts[0].context must be a mapping"),
])
def test_a_malformed_file_is_one_line_naming_it(home: Path, capsys, text: str, problem: str) -> None:
    (home / "config").write_text(text)
    code, _, err = peapod(capsys, "config", "get-contexts")
    assert code == 1
    assert err.startswith(f"error: {home / 'config'}") or err.startswith(
        f"error: config file {home / 'config'}"), err
    assert err.endswith(problem + "\n") and err.count("\n") == 1, err


@pytest.mark.parametrize(("edit", "message"), [
    ({"current-context": "gone"}, 'context "gone" does not exist in {path}'),
    ({"contexts": [{"name": "fleet", "context": {"cluster": "fleet"}}]},
     'context "fleet" has no user: peapod config set-context fleet --cluster CLUSTER --user USER'),
    ({"contexts": [{"name": "fleet", "context": {"cluster": "nope", "user": "fleet-admin"}}]},
     'cluster "nope" of context "fleet" does not exist in {path}'),
    ({"contexts": [{"name": "fleet", "context": {"cluster": "fleet", "user": "nope"}}]},
     'user "nope" of context "fleet" does not exist in {path}'),
    ({"clusters": [{"name": "fleet", "cluster": {}}]},
     'cluster "fleet" has no server: peapod config set-cluster fleet --server URL'),
    ({"users": [{"name": "fleet-admin", "user": None}]},
     'user "fleet-admin" has no credentials file: peapod config set-credentials fleet-admin '
     "--credentials FILE"),
])
def test_an_incomplete_context_says_what_is_missing(fleet: Path, edit: dict, message: str) -> None:
    doc = {**yaml.safe_load(FLEET), **edit}
    fleet.write_text(yaml.safe_dump(doc))
    with pytest.raises(Invalid) as caught:
        load_context()
    assert caught.value.message == message.format(path=fleet)


def test_missing_credentials_file_names_the_user(fleet: Path) -> None:
    with pytest.raises(Invalid, match=r'^user "fleet-admin": credentials file .*/creds/admin.json '
                                      "does not exist$"):
        load_context().credentials()


# -- get-contexts, current-context, use-context, view --------------------------------------------

def test_get_contexts_is_kubectls_table(fleet: Path, capsys) -> None:
    assert peapod(capsys, "config", "get-contexts") == (0, (
        "CURRENT   NAME    CLUSTER   AUTHINFO      NAMESPACE\n"
        "*         fleet   fleet     fleet-admin   prod\n"
        "          local   local     local-admin\n"), "")
    assert peapod(capsys, "config", "get-contexts", "local") == (0, (
        "CURRENT   NAME    CLUSTER   AUTHINFO      NAMESPACE\n"
        "          local   local     local-admin\n"), "")
    assert peapod(capsys, "config", "get-contexts", "-o", "name") == (0, "fleet\nlocal\n", "")
    # as kubectl's tabwriter: without the header the columns are as wide as their cells (min 6)
    assert peapod(capsys, "config", "get-contexts", "--no-headers", "fleet") == (
        0, "*     fleet   fleet   fleet-admin   prod\n", "")


def test_get_contexts_of_unknown_names_prints_the_rest_then_fails(fleet: Path, capsys) -> None:
    code, out, err = peapod(capsys, "config", "get-contexts", "local", "nope")
    assert (code, err) == (1, "error: context nope not found\n")
    assert out.splitlines()[1] == "          local   local     local-admin"
    code, out, err = peapod(capsys, "config", "get-contexts", "a", "b")
    assert (code, out, err) == (1, "CURRENT   NAME   CLUSTER   AUTHINFO   NAMESPACE\n",
                                "error: [context a not found, context b not found]\n")


def test_get_contexts_without_a_file_prints_the_header(home: Path, capsys) -> None:
    assert peapod(capsys, "config", "get-contexts") == (
        0, "CURRENT   NAME   CLUSTER   AUTHINFO   NAMESPACE\n", "")
    assert not (home / "config").exists()  # reading never creates the file


def test_current_context(fleet: Path, home: Path, capsys) -> None:
    assert peapod(capsys, "config", "current-context") == (0, "fleet\n", "")
    fleet.unlink()
    assert peapod(capsys, "config", "current-context") == (1, "", "error: current-context is not set\n")


def test_use_context_switches_and_writes_only_a_change(fleet: Path, capsys) -> None:
    assert peapod(capsys, "config", "use-context", "local") == (0, 'Switched to context "local".\n', "")
    assert Config.load().current_context == "local"
    before = fingerprint(fleet)
    assert peapod(capsys, "config", "use-context", "local") == (0, 'Switched to context "local".\n', "")
    assert fingerprint(fleet) == before
    assert peapod(capsys, "config", "use-context", "nope") == (
        1, "", 'error: no context exists with the name: "nope"\n')
    assert Config.load().current_context == "local"


def test_view_prints_the_file_as_kubectl_does(home: Path, capsys) -> None:
    peapod(capsys, "config", "set-cluster", "local", "--server", "nats://127.0.0.1:4222")
    peapod(capsys, "config", "set-credentials", "local-admin", "--credentials", "/c/admin.json")
    peapod(capsys, "config", "set-context", "local", "--cluster", "local", "--user", "local-admin",
           "--namespace", "default")
    peapod(capsys, "config", "use-context", "local")
    view = (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        "    server: nats://127.0.0.1:4222\n"
        "  name: local\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: local\n"
        "    namespace: default\n"
        "    user: local-admin\n"
        "  name: local\n"
        "current-context: local\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: local-admin\n"
        "  user:\n"
        "    credentials: /c/admin.json\n")
    assert peapod(capsys, "config", "view") == (0, view, "")
    assert (home / "config").read_text() == view  # the file is what view shows


def test_view_minify_and_json(fleet: Path, capsys) -> None:
    code, out, _ = peapod(capsys, "config", "view", "--minify", "--context", "local")
    doc = yaml.safe_load(out)
    assert code == 0 and doc["current-context"] == "local"
    assert [e["name"] for e in doc["clusters"]] == ["local"]
    assert [e["name"] for e in doc["users"]] == ["local-admin"]
    assert [e["name"] for e in doc["contexts"]] == ["local"]
    code, out, _ = peapod(capsys, "config", "view", "-o", "json")
    assert out.startswith('{\n    "apiVersion": "v1",\n    "clusters": [\n')
    assert peapod(capsys, "config", "view", "--minify", "--context", "nope") == (
        1, "", 'error: context "nope" does not exist\n')


# -- set-cluster, set-credentials, set-context: "unchanged" when nothing changes --------------

def test_set_cluster_then_unchanged_without_writing(home: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(home)
    args = ("config", "set-cluster", "fleet", "--server", "tls://10.0.0.2:4222",
            "--certificate-authority", "pki/ca.crt")
    assert peapod(capsys, *args) == (0, 'Cluster "fleet" set.\n', "")
    config = home / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert Config.load().entry("clusters", "fleet") == {
        "server": "tls://10.0.0.2:4222", "certificate-authority": str(home / "pki" / "ca.crt")}
    before = fingerprint(config)
    assert peapod(capsys, *args) == (0, 'Cluster "fleet" unchanged.\n', "")
    assert fingerprint(config) == before
    assert peapod(capsys, "config", "set-cluster", "fleet", "--server", "tls://10.0.0.9:4222") == (
        0, 'Cluster "fleet" set.\n', "")  # a merge: the CA stays
    assert Config.load().entry("clusters", "fleet") == {
        "server": "tls://10.0.0.9:4222", "certificate-authority": str(home / "pki" / "ca.crt")}
    peapod(capsys, "config", "set-cluster", "fleet", "--certificate-authority", "")
    assert Config.load().entry("clusters", "fleet") == {"server": "tls://10.0.0.9:4222"}


def test_set_credentials_stores_an_absolute_path(home: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(home)
    assert peapod(capsys, "config", "set-credentials", "admin", "--credentials", "admin.json") == (
        0, 'User "admin" set.\n', "")
    assert Config.load().entry("users", "admin") == {"credentials": str(home / "admin.json")}
    before = fingerprint(home / "config")
    assert peapod(capsys, "config", "set-credentials", "admin", "--credentials",
                  str(home / "admin.json")) == (0, 'User "admin" unchanged.\n', "")
    assert fingerprint(home / "config") == before


def test_set_context_created_modified_unchanged(home: Path, capsys) -> None:
    base = ("config", "set-context", "fleet", "--cluster", "fleet", "--user", "admin")
    assert peapod(capsys, *base) == (0, 'Context "fleet" created.\n', "")
    before = fingerprint(home / "config")
    assert peapod(capsys, *base) == (0, 'Context "fleet" unchanged.\n', "")
    assert fingerprint(home / "config") == before
    assert peapod(capsys, "config", "set-context", "fleet", "--namespace", "prod") == (
        0, 'Context "fleet" modified.\n', "")
    assert Config.load().entry("contexts", "fleet") == {"cluster": "fleet", "user": "admin",
                                                        "namespace": "prod"}
    assert peapod(capsys, "config", "set-context", "--current", "--namespace", "x") == (
        1, "", "error: no current context is set\n")
    peapod(capsys, "config", "use-context", "fleet")
    assert peapod(capsys, "config", "set-context", "--current", "--namespace", "dev") == (
        0, 'Context "fleet" modified.\n', "")
    assert peapod(capsys, "config", "set-context", "fleet", "--current") == (
        1, "", "error: you cannot specify both a context name and --current\n")
    assert peapod(capsys, "config", "set-context") == (
        1, "", "error: you must specify a non-empty context name or --current\n")


def test_writes_keep_other_entries_and_unknown_fields(fleet: Path, capsys) -> None:
    peapod(capsys, "config", "set-context", "fleet", "--namespace", "staging")
    doc = yaml.safe_load(fleet.read_text())
    assert doc["preferences"] == {"colors": True}
    assert [c["name"] for c in doc["clusters"]] == ["fleet", "local"]
    assert doc["clusters"][0]["cluster"]["x-note"] == "kept as it is"
    assert doc["clusters"][0]["cluster"]["certificate-authority"] == "pki/ca.crt"  # not rewritten
    assert [c["name"] for c in doc["contexts"]] == ["fleet", "local"]
    assert stat.S_IMODE(fleet.stat().st_mode) == 0o600
    assert sorted(os.listdir(fleet.parent)) == ["config"]  # no temporary file left behind


# -- delete-* ----------------------------------------------------------------------------------

def test_delete_verbs_say_what_kubectl_says(fleet: Path, capsys) -> None:
    assert peapod(capsys, "config", "delete-context", "local") == (
        0, f"deleted context local from {fleet}\n", "")
    assert peapod(capsys, "config", "delete-context", "local") == (
        1, "", f"error: cannot delete context local, not in {fleet}\n")
    assert peapod(capsys, "config", "delete-cluster", "local") == (
        0, f"deleted cluster local from {fleet}\n", "")
    assert peapod(capsys, "config", "delete-cluster", "local") == (
        1, "", f"error: cannot delete cluster local, not in {fleet}\n")
    assert peapod(capsys, "config", "delete-user", "local-admin") == (
        0, f"deleted user local-admin from {fleet}\n", "")
    assert peapod(capsys, "config", "delete-user", "local-admin") == (
        1, "", f"error: cannot delete user local-admin, not in {fleet}\n")


def test_deleting_the_current_context_warns_and_keeps_current_context(fleet: Path, capsys) -> None:
    assert peapod(capsys, "config", "delete-context", "fleet") == (
        0, f"deleted context fleet from {fleet}\n",
        'warning: this removed your active context, use "peapod config use-context" to select '
        "a different one\n")
    assert peapod(capsys, "config", "current-context") == (0, "fleet\n", "")  # as kubectl
    assert peapod(capsys, "get", "pods") == (1, "", f'error: context "fleet" does not exist in {fleet}\n')


# -- what `peapod up` writes -----------------------------------------------------------------

def test_up_writes_local_and_makes_it_current_keeping_the_rest(fleet: Path, capsys) -> None:
    peapod(capsys, "config", "set-context", "local", "--namespace", "dev")
    save_local_context(server="nats://127.0.0.1:4333", credentials=Path("/h/creds/admin.json"))
    config = Config.load()
    assert config.current_context == "local"
    assert config.entry("clusters", "local") == {"server": "nats://127.0.0.1:4333"}
    assert config.entry("users", "local-admin") == {"credentials": "/h/creds/admin.json"}
    assert config.entry("contexts", "local") == {"cluster": "local", "user": "local-admin",
                                                 "namespace": "dev"}  # the user's choice stays
    assert config.entry("contexts", "fleet") is not None
    before = fingerprint(fleet)
    save_local_context(server="nats://127.0.0.1:4333", credentials=Path("/h/creds/admin.json"))
    assert fingerprint(fleet) == before


def test_up_on_a_fresh_home_writes_the_whole_local_context(home: Path, capsys) -> None:
    save_local_context(server="nats://127.0.0.1:4222", credentials=home / "creds" / "admin.json")
    assert peapod(capsys, "config", "get-contexts") == (0, (
        "CURRENT   NAME    CLUSTER   AUTHINFO      NAMESPACE\n"
        "*         local   local     local-admin   default\n"), "")


# -- local file problems are "error:" lines, not connection failures ---------------------------

def test_an_unreadable_or_unwritable_config_file_is_one_line(home: Path, capsys, monkeypatch) -> None:
    (home / "file").write_text("")
    monkeypatch.setenv("PEAPOD_CONFIG", str(home / "file" / "config"))
    assert peapod(capsys, "config", "view") == (
        1, "", f"error: cannot read config file {home / 'file' / 'config'}: Not a directory\n")
    monkeypatch.setenv("PEAPOD_CONFIG", "/proc/self/peapod-config")  # absent, and not creatable
    assert peapod(capsys, "config", "set-cluster", "x", "--server", "nats://h:4222") == (
        1, "", "error: cannot write config file /proc/self/peapod-config: No such file or directory\n")


async def test_a_missing_ca_file_is_named_before_connecting(home: Path) -> None:
    from peapod.cli.client import connect_cli
    from peapod.cli.context import Context

    Credentials(url="x", user="admin", seed=new_seed()).save(home / "admin.json")
    context = Context(name="fleet", server="tls://10.0.0.2:4222", creds_file=str(home / "admin.json"),
                      ca_file=str(home / "ca.crt"), user="admin")
    with pytest.raises(Invalid, match=f'^cluster of context "fleet": cannot load the cluster CA '
                                      f"{home / 'ca.crt'}: "):
        await connect_cli(context)
