"""`kubectl_complete-taskrun`: shell completion through kubectl's plugin completion (1.26+).

kubectl runs this program with the words after ``kubectl taskrun``, the last one being the
word under the cursor, and reads Cobra's answer: one candidate a line, then ``:<directive>``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from taskrun.cli.client import ApiError, Client
from taskrun.cli.kubeconfig import ConfigError, load
from taskrun.cli.main import OUTPUTS, PHASES, build_parser

# Cobra's ShellCompDirective values.
DEFAULT = 0
NO_SPACE = 2
NO_FILE = 4

VALUE_FLAGS = {"--kubeconfig", "--context", "-n", "--namespace"}
NAME_COMMANDS = {"logs", "result", "describe", "cancel", "rerun", "wait", "delete"}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(opt for a in parser._actions for opt in a.option_strings if opt.startswith("--"))


def complete(words: Sequence[str]) -> tuple[list[str], int]:
    """Candidates for the last word of ``words`` and Cobra's directive."""
    *before, current = list(words) or [""]
    commands = subcommands()
    previous = before[-1] if before else ""
    if previous in ("-o", "--output"):
        return [o for o in OUTPUTS if o.startswith(current)], NO_FILE
    if previous == "--for":
        return [p for p in PHASES if p.startswith(current)], NO_FILE
    if previous in ("-f", "--filename", "--kubeconfig"):
        return [], DEFAULT
    if previous in ("-n", "--namespace"):
        return _names("/api/v1/namespaces", before, current), NO_FILE
    positionals = [
        w
        for i, w in enumerate(before)
        if not w.startswith("-") and (i == 0 or before[i - 1] not in VALUE_FLAGS)
    ]
    if not positionals:
        if current.startswith("-"):
            return [f for f in flags(build_parser()) if f.startswith(current)], NO_FILE
        return [c for c in commands if c.startswith(current)], NO_FILE
    command = positionals[0]
    if command not in commands:
        return [], NO_FILE
    if current.startswith("-"):
        return [f for f in flags(commands[command]) if f.startswith(current)], NO_FILE
    takes_many = command == "delete"
    if command in NAME_COMMANDS and (len(positionals) == 1 or takes_many):
        done = set(positionals[1:])
        names = _names(None, before, current)
        return [n for n in names if n not in done], NO_FILE
    return [], NO_FILE


def _names(path: str | None, before: Sequence[str], current: str) -> list[str]:
    """Names from the cluster, honouring --kubeconfig/--context/-n typed so far."""
    given: dict[str, str] = {}
    for i, word in enumerate(before[:-1]):
        if word in VALUE_FLAGS:
            key = {"-n": "namespace"}.get(word, word.lstrip("-"))
            given[key] = before[i + 1]
    try:
        conn = load(given.get("kubeconfig"), given.get("context"), given.get("namespace"))
        api = Client(conn)
        if path is None:
            items = api.list_taskruns(conn.namespace).get("items") or []
        else:
            items = api.request("GET", path).get("items") or []
    except (ApiError, ConfigError, OSError):
        return []
    names = sorted(i["metadata"]["name"] for i in items)
    return [n for n in names if n.startswith(current)]


def entry() -> NoReturn:
    """Console script `kubectl_complete-taskrun`."""
    candidates, directive = complete(sys.argv[1:])
    for candidate in candidates:
        print(candidate)
    print(f":{directive}")
    sys.exit(0)
