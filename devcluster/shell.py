"""The few commands a simulated container runs for pods/exec.

Enough of ``sh`` for what is exec'd into TaskRun pods (KPO's sidecar contract) and for a
person poking at a pod with ``kubectl exec``: ``cat``, ``echo``, ``ls``, ``wc -c``,
``sha256sum``, ``test``/``[`` (``-s``, ``-f``, ``-e``, ``-r``: every file is readable),
``true``, ``false``, ``exit``, ``kill`` of PID 1, and ``sh -c`` scripts of those joined by
``;``, ``&&``, ``||`` and ``if ...; then ...; else ...; fi``.
Anything else fails as a shell would: ``sh: NAME: not found``, exit code 127.

Pure: files are read and signals sent through the callables given to ``run``.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NOT_FOUND = 127
SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "TERM": 15}


@dataclass
class Outcome:
    """What a command printed and how it ended."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    code: int = 0


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


ReadFile = Callable[[str], bytes | None]
ListDir = Callable[[str], list[str] | None]
Signal = Callable[[int], None]


def run(argv: list[str], read: ReadFile, listdir: ListDir, signal: Signal) -> Outcome:
    """Run ``argv`` (an exec's ``command``) in a container whose files ``read`` returns."""
    out = Outcome()
    shell = _Shell(read, listdir, signal, out)
    try:
        if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and argv[1] == "-c":
            out.code = shell.script(argv[2])
        else:
            out.code = shell.command(argv)
    except _Exit as exit_:
        out.code = exit_.code
    return out


class _Shell:
    def __init__(self, read: ReadFile, listdir: ListDir, signal: Signal, out: Outcome) -> None:
        self.read, self.listdir, self.signal, self.out = read, listdir, signal, out

    def script(self, text: str) -> int:
        try:
            lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError as err:
            self.out.stderr += f"sh: syntax error: {err}\n".encode()
            return 2
        code, rest = self._list(tokens, stop=())
        if rest:
            self.out.stderr += f"sh: syntax error: unexpected {rest[0]!r}\n".encode()
            return 2
        return code

    def _list(self, tokens: list[str], stop: tuple[str, ...]) -> tuple[int, list[str]]:
        """Commands joined by ; && || until a word in ``stop``; the code and what is left."""
        code = 0
        run_next = True
        while tokens and tokens[0] not in stop:
            if tokens[0] == ";":
                tokens = tokens[1:]
                run_next = True
                continue
            if tokens[0] == "if":
                result, tokens = self._if(tokens[1:], run_next)
            else:
                end = next(
                    (i for i, t in enumerate(tokens) if t in (";", "&&", "||", *stop)),
                    len(tokens),
                )
                words, tokens = tokens[:end], tokens[end:]
                result = self.command(words) if run_next else code
            code = result if run_next else code
            if tokens and tokens[0] in ("&&", "||"):
                run_next = (code == 0) == (tokens[0] == "&&")
                tokens = tokens[1:]
            else:
                run_next = True
        return code, tokens

    def _if(self, tokens: list[str], active: bool) -> tuple[int, list[str]]:
        if not active:  # skipped by && or ||: parsed, not run
            _, tokens = self._maybe(tokens, ("fi",), False)
            return 0, self._expect(tokens, "fi")
        condition, tokens = self._list(tokens, stop=("then",))
        tokens = self._expect(tokens, "then")
        then_code, tokens = self._maybe(tokens, ("else", "fi"), condition == 0)
        else_code = 0
        if tokens and tokens[0] == "else":
            else_code, tokens = self._maybe(tokens[1:], ("fi",), condition != 0)
        tokens = self._expect(tokens, "fi")
        return (then_code if condition == 0 else else_code), tokens

    def _maybe(
        self, tokens: list[str], stop: tuple[str, ...], active: bool
    ) -> tuple[int, list[str]]:
        if active:
            return self._list(tokens, stop)
        depth = 0
        for i, token in enumerate(tokens):
            if token == "if":
                depth += 1
            elif token == "fi" and depth:
                depth -= 1
            elif token in stop and not depth:
                return 0, tokens[i:]
        return 0, []

    def _expect(self, tokens: list[str], word: str) -> list[str]:
        while tokens and tokens[0] == ";":
            tokens = tokens[1:]
        if not tokens or tokens[0] != word:
            self.out.stderr += f"sh: syntax error: expected {word!r}\n".encode()
            raise _Exit(2)
        return tokens[1:]

    def command(self, words: list[str]) -> int:
        if not words:
            return 0
        name, args = words[0].rsplit("/", 1)[-1], words[1:]
        if name == "true" or name == ":":
            return 0
        if name == "false":
            return 1
        if name == "exit":
            raise _Exit(int(args[0]) if args and args[0].isdigit() else 0)
        if name == "echo":
            newline = not (args and args[0] == "-n")
            text = " ".join(args[1:] if not newline else args)
            self.out.stdout += (text + ("\n" if newline else "")).encode()
            return 0
        if name == "cat":
            return self._cat(args)
        if name == "ls":
            return self._ls(args)
        if name == "wc" and args[:1] == ["-c"]:
            return self._per_file("wc", args[1:], lambda data, path: f"{len(data)} {path}\n")
        if name == "sha256sum":
            return self._per_file(
                name, args, lambda data, path: f"{hashlib.sha256(data).hexdigest()}  {path}\n"
            )
        if name in ("test", "["):
            if name == "[":
                if not args or args[-1] != "]":
                    self.out.stderr += b"sh: [: missing ]\n"
                    return 2
                args = args[:-1]
            return self._test(args)
        if name == "kill":
            return self._kill(args)
        if name == "sh" and len(args) >= 2 and args[0] == "-c":
            return self.script(args[1])
        self.out.stderr += f"sh: {words[0]}: not found\n".encode()
        return NOT_FOUND

    def _cat(self, paths: list[str]) -> int:
        code = 0
        for path in paths:
            data = self.read(path)
            if data is None:
                self.out.stderr += f"cat: can't open '{path}': No such file or directory\n".encode()
                code = 1
            else:
                self.out.stdout += data
        return code

    def _per_file(self, name: str, paths: list[str], line: Callable[[bytes, str], str]) -> int:
        code = 0
        for path in paths:
            data = self.read(path)
            if data is None:
                self.out.stderr += f"{name}: {path}: No such file or directory\n".encode()
                code = 1
            else:
                self.out.stdout += line(data, path).encode()
        return code

    def _ls(self, paths: list[str]) -> int:
        code = 0
        for path in paths or ["/"]:
            names = self.listdir(path)
            if names is None:
                self.out.stderr += f"ls: {path}: No such file or directory\n".encode()
                code = 1
            else:
                self.out.stdout += "".join(f"{n}\n" for n in names).encode()
        return code

    def _test(self, args: list[str]) -> int:
        if len(args) == 2 and args[0] in ("-s", "-f", "-e", "-r"):
            data = self.read(args[1])
            if data is None:
                return 1
            return 0 if args[0] != "-s" or data else 1
        if len(args) == 1:
            return 0 if args[0] else 1
        self.out.stderr += f"sh: test: unsupported expression: {' '.join(args)}\n".encode()
        return 2

    def _kill(self, args: list[str]) -> int:
        number: int | None = SIGNALS["TERM"]
        rest = list(args)
        if rest and rest[0] == "-s" and len(rest) >= 2:
            number = _signal_number(rest[1])
            rest = rest[2:]
        elif rest and rest[0].startswith("-"):
            number = _signal_number(rest[0][1:])
            rest = rest[1:]
        if number is None or not rest:
            self.out.stderr += b"sh: kill: usage: kill [-s SIGNAL] PID\n"
            return 2
        if rest != ["1"]:
            self.out.stderr += f"sh: kill: ({' '.join(rest)}) - No such process\n".encode()
            return 1
        self.signal(number)
        return 0


def _signal_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    name = text.upper().removeprefix("SIG")
    return SIGNALS.get(name)


def quote(argv: list[str]) -> str:
    """``argv`` as one shell line, for messages."""
    return shlex.join(argv)


def exec_status(command: list[str], code: int) -> dict[str, Any]:
    """The v1 Status an exec ends with on the error channel, as the kubelet writes it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"{command}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
