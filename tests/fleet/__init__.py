"""The fleet test's harness: simulated Debian hosts (``hosts.py``) that Ansible reaches over SSH."""
