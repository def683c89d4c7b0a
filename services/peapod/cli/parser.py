"""The CLI's argument parser, whose mistakes read as kubectl's do.

argparse prints its usage and a message of its own and exits 2; kubectl prints one
line, ``error: unknown flag: --foo``, and exits 1. ``KubectlParser`` (which every
sub-command's parser inherits) words argparse's messages as kubectl's and exits 1:
a typo in a flag, a command or an ``-o`` format is one line, and nothing is sent.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

OUTPUT_FORMATS = "custom-columns,json,jsonpath,name,wide,yaml"

_CHOICE = re.compile(r"argument (?P<arg>\S+): invalid choice: '(?P<value>.*)' "
                     r"\(choose from (?P<choices>.*)\)$")
_TYPED = re.compile(r"argument (?P<arg>\S+): invalid (?P<type>\w+) value: '(?P<value>.*)'$")
_ONE_VALUE = re.compile(r"argument (?P<arg>\S+): expected (one|at least one) argument$")
_OTHER = re.compile(r"argument (?P<arg>\S+): (?P<message>.*)$")


def _flag(arg: str) -> str:
    """``-o/--output`` → ``--output``: the long form names the flag whichever was typed."""
    return arg.split("/")[-1]


def _distance(a: str, b: str) -> int:
    """Levenshtein distance: cobra suggests a command at most 2 edits away (or a prefix's)."""
    row = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (char != other))
    return row[-1]


def kubectl_words(message: str, prog: str) -> str:
    """argparse's ``message`` (from the parser named ``prog``) in kubectl's words."""
    if message.startswith("unrecognized arguments: "):
        extra = message.removeprefix("unrecognized arguments: ").split()
        flags = [word for word in extra if word.startswith("-")]
        if flags:
            return f"unknown flag: {flags[0].split('=')[0]}"
        return f"unexpected arguments for \"{prog}\": {' '.join(extra)}"
    if message.startswith("the following arguments are required: "):
        missing = message.removeprefix("the following arguments are required: ")
        if missing in ("COMMAND", "VERB"):
            return f"\"{prog}\" needs a command: see '{prog} --help'"
        if missing.split(",")[0] == "resource":
            verb = prog.split()[-1]
            return f"You must specify the type of resource to {verb}."
        if missing.startswith("-f/--filename"):
            return "must specify -f"
        return f"required argument missing: {missing} (see '{prog} --help')"
    if found := _CHOICE.match(message):
        arg, value = found["arg"], found["value"]
        if not arg.startswith("-"):  # a sub-command: COMMAND, VERB, rollout's status|history…
            choices = [c.strip(" '") for c in found["choices"].split(",")]
            close = [c for c in choices if _distance(value, c) <= 2 or c.startswith(value)]
            hint = f" (did you mean \"{close[0]}\"?)" if close and value else ""
            return f'unknown command "{value}" for "{prog}"{hint}'
        if _flag(arg) == "--output":
            return (f'unable to match a printer suitable for the output format "{value}", '
                    f"allowed formats are: {OUTPUT_FORMATS}")
        return (f'invalid argument "{value}" for "{_flag(arg)}" flag: must be one of '
                f"{found['choices']}")
    if found := _TYPED.match(message):
        return (f'invalid argument "{found["value"]}" for "{_flag(found["arg"])}" flag: '
                f'parsing "{found["value"]}": invalid syntax')
    if found := _ONE_VALUE.match(message):
        return f"flag needs an argument: {_flag(found['arg'])}"
    if found := _OTHER.match(message):
        return f'invalid argument for "{_flag(found["arg"])}" flag: {found["message"]}'
    return message


class KubectlParser(argparse.ArgumentParser):
    """An ArgumentParser that refuses a mistake in one kubectl-worded line, exit code 1."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {kubectl_words(message, self.prog)}", file=sys.stderr)
        sys.exit(1)
