"""`kubectl taskrun`: start a task, follow its log, get its result, cancel it, run it again.

kubectl finds this program on the PATH by its name, ``kubectl-taskrun`` (docs/cli.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from taskrun.api import (
    AIRFLOW_DAG_LABEL,
    AIRFLOW_RUN_LABEL,
    AIRFLOW_TASK_LABEL,
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    Phase,
)
from taskrun.cli import render
from taskrun.cli.client import ApiError, Client
from taskrun.cli.follow import (
    Follower,
    WaitTimeout,
    default_container,
    log_annotations,
    utcnow,
)
from taskrun.cli.kubeconfig import ConfigError, load

Obj = dict[str, Any]


def _yaml() -> Any:
    # Imported when a command reads or writes YAML: `--help` and `-o json` need none of it.
    import yaml

    return yaml


RESOURCE = f"{PLURAL}.{GROUP}"
PHASES = [p.value for p in Phase]
OUTPUTS = ["json", "yaml", "name", "wide"]
# Annotations of one run that a rerun must not inherit: its log reader's are its own.
RUN_ANNOTATIONS = (
    ANNOTATION_HOLD_POD,
    ANNOTATION_LOGS_ACKED,
    ANNOTATION_LOGS_FROM_STATUS,
    "kubectl.kubernetes.io/last-applied-configuration",
)


class Failure(Exception):
    """A message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: the flags work before and after the command without one hiding the other.
    group = parser.add_argument_group("connection (as kubectl)")
    group.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file")
    group.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context")
    group.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace")


def _output(parser: argparse.ArgumentParser, choices: Sequence[str] = OUTPUTS) -> None:
    parser.add_argument("-o", "--output", choices=choices, help="output format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl taskrun",
        description="Run one task as one pod and see what happened (taskrun.dev TaskRuns).",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p)
        return p

    p = command(
        "run",
        "Create a TaskRun, stream its log, print its result, exit with its exit code: "
        "run NAME --image IMG [flags] -- CMD ARGS..., or run -f FILE",
    )
    p.add_argument("name", nargs="?", help="TaskRun name (or its prefix with --generate-name)")
    p.add_argument("--image", help="container image")
    p.add_argument("-f", "--filename", help="a TaskRun manifest (YAML or JSON; - for stdin)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="environment")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="TaskRun label")
    p.add_argument(
        "--pod-annotation", action="append", default=[], metavar="K=V", help="pod annotation"
    )
    p.add_argument("--xcom", action="store_true", help="capture /airflow/xcom/return.json")
    p.add_argument("--timeout", help="task deadline (activeDeadlineSeconds), e.g. 10m")
    p.add_argument("--retries", type=int, help="extra attempts after a failure")
    p.add_argument("--generate-name", action="store_true", help="NAME is a prefix")
    p.add_argument("--rm", action="store_true", help="delete the TaskRun after it finished")
    p.add_argument("--no-wait", action="store_true", help="create it and return")
    p.add_argument("-q", "--quiet", action="store_true", help="no log, no progress: the result")
    _output(p, ["json", "yaml", "name"])

    p = command("logs", "Print the log of a TaskRun's pod, or the tail kept in its status")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the run ends")
    p.add_argument("-c", "--container", help="container (default: the base container)")
    p.add_argument("--attempt", type=int, help="attempt number (default: the last)")

    p = command("result", "Print the result (xcom return.json) as stored, for jq")
    p.add_argument("name")

    p = command("list", "List TaskRuns")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", help="label selector")
    p.add_argument("--dag", help="Airflow dag_id")
    p.add_argument("--task", help="Airflow task_id")
    p.add_argument("--run", help="Airflow run_id")
    _output(p)

    p = command("describe", "Phase, reason, attempts, warnings, events and where the log is")
    p.add_argument("name")

    p = command("cancel", "Stop a TaskRun's pod; it ends Cancelled")
    p.add_argument("name")
    _output(p, ["json", "yaml", "name"])

    p = command("rerun", "Run a TaskRun's spec again as a new TaskRun")
    p.add_argument("name")
    p.add_argument("--name", dest="new_name", help="name of the new TaskRun")
    p.add_argument("--follow", action="store_true", help="stream it and exit as `run` does")
    _output(p, ["json", "yaml", "name"])

    p = command("wait", "Wait until a TaskRun finishes, or reaches --for PHASE")
    p.add_argument("name")
    p.add_argument("--for", dest="for_", choices=PHASES, help="phase to wait for")
    p.add_argument("--timeout", default="30s", help="give up after this long (default 30s)")

    p = command("delete", "Delete TaskRuns (their pods go with them)")
    p.add_argument("names", nargs="+", metavar="name")
    p.add_argument("--wait", action="store_true", help="wait until they are gone")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the task's command, never the plugin's flags.
    command_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command_args = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.task_command = command_args
    try:
        return COMMANDS[args.command](args)
    except Failure as failure:
        sys.stderr.write(f"error: {failure}\n")
        return failure.code
    except ConfigError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    except ApiError as err:
        sys.stderr.write(f"error: {explain(err, args)}\n")
        return 1
    except KeyboardInterrupt:
        name = getattr(args, "name", None)
        if name and args.command in ("run", "logs", "wait", "rerun"):
            sys.stderr.write(
                f"\ninterrupted; taskrun/{name} goes on: kubectl taskrun cancel {name}\n"
            )
        return render.EXIT_CANCELLED


def explain(err: ApiError, args: argparse.Namespace) -> str:
    """The API's message plus what to do about it."""
    name = getattr(args, "name", None)
    if err.code == 404 and "could not find the requested resource" in err.message:
        return (
            f"the cluster does not serve {RESOURCE}: install the CRD "
            "(kubectl apply -f crds/, or kubectl apply -k deploy/base)"
        )
    if err.code == 404 and name:
        return (
            f'{RESOURCE} "{name}" not found in namespace "{namespace(args)}"'
            " (kubectl taskrun list -A shows every namespace)"
        )
    if err.code == 409 and name:
        return (
            f"{err.message}: pick another name, run it again with "
            f"`kubectl taskrun rerun {name}`, or delete it first"
        )
    if err.code == 403:
        return f"{err.message} (ask for RBAC on {RESOURCE} in this namespace)"
    return err.message


_conn_cache: dict[str, Any] = {}


def client(args: argparse.Namespace) -> Client:
    conn = load(
        getattr(args, "kubeconfig", None),
        getattr(args, "context", None),
        getattr(args, "namespace", None),
    )
    _conn_cache["namespace"] = conn.namespace
    return Client(conn)


def namespace(args: argparse.Namespace) -> str:
    return str(getattr(args, "namespace", None) or _conn_cache.get("namespace") or "default")


def key_values(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Failure(f"{flag} {item!r}: expected KEY=VALUE", render.EXIT_USAGE)
        out[key] = value
    return out


def seconds(text: str, flag: str) -> float:
    try:
        return render.parse_duration(text)
    except ValueError as err:
        raise Failure(f"{flag}: {err}", render.EXIT_USAGE) from None


def print_objects(objs: list[Obj], output: str | None) -> None:
    if output == "name":
        for obj in objs:
            print(f"{RESOURCE}/{obj['metadata']['name']}")
        return
    doc: Obj = objs[0] if len(objs) == 1 else {"apiVersion": "v1", "kind": "List", "items": objs}
    if output == "json":
        print(json.dumps(doc, indent=4))
    elif output == "yaml":
        sys.stdout.write(_yaml().safe_dump(doc, sort_keys=False))


# -- commands ----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    api = client(args)
    body = manifest(args)
    ns = body["metadata"].get("namespace") or namespace(args)
    body["metadata"]["namespace"] = ns
    args.name = body["metadata"].get("name") or body["metadata"].get("generateName")
    waiting = not args.no_wait
    if waiting and not args.quiet:
        # Keep the pod until its whole log is read, or take a short one from the status
        # (the logs hand-over, docs/architecture.md).
        annotations = body["metadata"].setdefault("annotations", {})
        annotations.pop(ANNOTATION_LOGS_FROM_STATUS, None)  # a manifest's is not this reader's
        annotations.update(log_annotations(body.get("spec") or {}))
    created = api.create(ns, body)
    name = created["metadata"]["name"]
    if not waiting:
        if args.output:
            print_objects([created], args.output)
        else:
            print(f"{RESOURCE}/{name} created")
        return 0
    return finish(api, ns, created, quiet=args.quiet, remove=args.rm, output=args.output)


def finish(
    api: Client, ns: str, taskrun: Obj, *, quiet: bool, remove: bool, output: str | None = None
) -> int:
    """Stream a created run to its end, print its result, exit as it did."""
    follower = Follower(api, ns, quiet=quiet)
    name = taskrun["metadata"]["name"]
    if not quiet:
        sys.stderr.write(f"{RESOURCE}/{name} created\n")
    try:
        final = follower.until(taskrun, lambda s: s.get("phase") in render.FINISHED, logs=not quiet)
    except KeyboardInterrupt:
        if remove:
            api.delete(ns, name)
            sys.stderr.write(f"\ninterrupted; taskrun/{name} deleted\n")
            return render.EXIT_CANCELLED
        raise
    if quiet:
        follower.ack_logs(final)
    else:
        follower.end_logs(final)
    status = final.get("status") or {}
    if output:
        print_objects([final], output)
    elif status.get("result") is not None:
        if not quiet:
            sys.stderr.write("result:\n")
        sys.stdout.write(status["result"])
        if not status["result"].endswith("\n"):
            sys.stdout.write("\n")
    sys.stdout.flush()
    if not quiet:
        sys.stderr.write(render.summary(name, status) + "\n")
    if remove:
        api.delete(ns, name)
        if not quiet:
            sys.stderr.write(f'{RESOURCE} "{name}" deleted\n')
    return render.exit_code(status)


def manifest(args: argparse.Namespace) -> Obj:
    """The TaskRun to create, from -f or from the flags."""
    if args.filename:
        if args.image or args.task_command:
            raise Failure("run: give either -f FILE or --image and a command, not both", 2)
        text = sys.stdin.read() if args.filename == "-" else _read(args.filename)
        yaml = _yaml()
        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise Failure(f"{args.filename}: not YAML: {err}", 2) from None
        if not isinstance(body, dict) or body.get("kind") != KIND:
            raise Failure(f"{args.filename}: expected one {KIND} (apiVersion {API_VERSION})", 2)
        meta = body.setdefault("metadata", {})
        if args.name:
            meta.pop("generateName", None)
            meta["name"] = args.name
        if not meta.get("name") and not meta.get("generateName"):
            raise Failure(f"{args.filename}: metadata.name or generateName is required", 2)
        body.pop("status", None)
        return body
    if not args.name:
        raise Failure("run: NAME is required (or -f FILE)", render.EXIT_USAGE)
    if not args.image:
        raise Failure(f"run {args.name}: --image is required (or -f FILE)", render.EXIT_USAGE)
    spec: Obj = {"image": args.image}
    if args.task_command:
        spec["cmds"] = args.task_command[:1]
        if args.task_command[1:]:
            spec["arguments"] = args.task_command[1:]
    env = key_values(args.env, "--env")
    if env:
        spec["envVars"] = [{"name": k, "value": v} for k, v in env.items()]
    if args.xcom:
        spec["doXcomPush"] = True
    if args.timeout:
        spec["activeDeadlineSeconds"] = max(1, int(seconds(args.timeout, "--timeout")))
    if args.retries is not None:
        spec["retries"] = args.retries
    annotations = key_values(args.pod_annotation, "--pod-annotation")
    if annotations:
        spec["annotations"] = annotations
    new: Obj = {"generateName" if args.generate_name else "name": args.name}
    if args.generate_name and not args.name.endswith("-"):
        new["generateName"] += "-"
    labels = key_values(args.label, "--label")
    if labels:
        new["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": new, "spec": spec}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise Failure(f"{path}: {err.strerror}", render.EXIT_USAGE) from None


def cmd_logs(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    taskrun = api.get(ns, args.name)
    status = taskrun.get("status") or {}
    follower = Follower(api, ns)
    container = args.container or None
    if args.follow and args.attempt is None:
        final = follower.until(
            taskrun,
            lambda s: s.get("phase") in render.FINISHED,
            logs=True,
            container=container,
        )
        return 0 if final else 1
    pod = pod_of(taskrun, args.attempt)
    if pod is None:
        raise Failure(
            f"taskrun/{args.name} has no pod yet (phase {status.get('phase') or 'not reported'}):"
            f" kubectl taskrun logs -f {args.name} waits for it"
        )
    name = container or default_container(taskrun)
    outcome = follower.stream_log(pod, name, follow=args.follow)
    if outcome == "done":
        return 0
    if outcome == "waiting":
        raise Failure(f"pod {pod} of taskrun/{args.name}: container {name} has not started yet")
    if not follower.print_tail(taskrun, pod):
        return 1
    return 0


def pod_of(taskrun: Obj, attempt: int | None) -> str | None:
    status = taskrun.get("status") or {}
    if attempt is None or attempt == status.get("attempts"):
        return status.get("podName") or (status.get("logs") or {}).get("pod")
    for record in status.get("history") or []:
        if record.get("attempt") == attempt:
            return record.get("podName")
    raise Failure(
        f"taskrun/{taskrun['metadata']['name']} has no attempt {attempt}"
        f" (attempts so far: {status.get('attempts') or 0})"
    )


def cmd_result(args: argparse.Namespace) -> int:
    api = client(args)
    taskrun = api.get(namespace(args), args.name)
    status, spec = taskrun.get("status") or {}, taskrun.get("spec") or {}
    if status.get("result") is not None:
        sys.stdout.write(status["result"])
        return 0
    phase = status.get("phase")
    if not spec.get("doXcomPush"):
        why = "it does not capture one (spec.doXcomPush is not true; kubectl taskrun run --xcom)"
    elif phase not in render.FINISHED:
        why = f"it is {phase or 'not started'}: kubectl taskrun wait {args.name}, then ask again"
    else:
        why = f"it ended {phase} ({status.get('reason')}) and wrote no result"
    raise Failure(f"taskrun/{args.name} has no result: {why}")


def cmd_list(args: argparse.Namespace) -> int:
    api = client(args)
    selectors = [args.selector] if args.selector else []
    for flag, label in (
        (args.dag, AIRFLOW_DAG_LABEL),
        (args.task, AIRFLOW_TASK_LABEL),
        (args.run, AIRFLOW_RUN_LABEL),
    ):
        if flag:
            selectors.append(f"{label}={render.safe_label_value(flag)}")
    ns = None if args.all_namespaces else namespace(args)
    items = api.list_taskruns(ns, ",".join(selectors) or None).get("items") or []
    items.sort(key=lambda i: (i["metadata"].get("namespace", ""), i["metadata"]["name"]))
    if args.output in ("json", "yaml"):
        for item in items:
            item.setdefault("apiVersion", API_VERSION)
            item.setdefault("kind", KIND)
        doc = {"apiVersion": "v1", "kind": "List", "items": items}
        print(json.dumps(doc, indent=4)) if args.output == "json" else sys.stdout.write(
            _yaml().safe_dump(doc, sort_keys=False)
        )
        return 0
    if args.output == "name":
        print_objects(items, "name") if items else None
        return 0
    if not items:
        where = "any namespace" if ns is None else f"namespace {ns}"
        sys.stderr.write(f"No TaskRuns found in {where}.\n")
        return 0
    sys.stdout.write(
        render.table(
            items, utcnow(), wide=args.output == "wide", all_namespaces=args.all_namespaces
        )
    )
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    taskrun = api.get(ns, args.name)
    events = api.events(ns, taskrun["metadata"]["uid"])
    sys.stdout.write(render.describe(taskrun, events, utcnow()))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    taskrun = api.get(ns, args.name)
    phase = (taskrun.get("status") or {}).get("phase")
    if phase in render.FINISHED:
        sys.stderr.write(f"taskrun/{args.name} already finished ({phase}): nothing to cancel\n")
        return 0
    patched = api.patch(ns, args.name, {"spec": {"cancel": True}})
    if args.output:
        print_objects([patched], args.output)
    else:
        print(f"{RESOURCE}/{args.name} cancel requested")
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    old = api.get(ns, args.name)
    meta = old["metadata"]
    spec = {k: v for k, v in (old.get("spec") or {}).items() if k != "cancel"}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in RUN_ANNOTATIONS
    }
    new_meta: Obj = {"namespace": ns}
    if args.new_name:
        new_meta["name"] = args.new_name
    else:
        new_meta["generateName"] = f"{meta['name'][:52]}-"
    if meta.get("labels"):
        new_meta["labels"] = meta["labels"]
    if annotations:
        new_meta["annotations"] = annotations
    if args.follow:
        new_meta.setdefault("annotations", {}).update(log_annotations(spec))
    body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": new_meta, "spec": spec}
    created = api.create(ns, body)
    if args.follow:
        return finish(api, ns, created, quiet=False, remove=False, output=args.output)
    if args.output:
        print_objects([created], args.output)
    else:
        print(f"{RESOURCE}/{created['metadata']['name']} created (a rerun of {args.name})")
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    timeout = seconds(args.timeout, "--timeout")
    taskrun = api.get(ns, args.name)
    wanted: Callable[[Obj], bool]
    if args.for_:
        wanted = lambda s: s.get("phase") == args.for_ or s.get("phase") in render.FINISHED  # noqa: E731
    else:
        wanted = lambda s: s.get("phase") in render.FINISHED  # noqa: E731
    try:
        final = Follower(api, ns).until(taskrun, wanted, deadline=time.monotonic() + timeout)
    except WaitTimeout:
        current = api.get(ns, args.name).get("status") or {}
        goal = args.for_ or "finished"
        raise Failure(
            f"timed out after {args.timeout} waiting for taskrun/{args.name} to be {goal};"
            f" it is {current.get('phase') or 'not started'}"
            f" ({current.get('reason') or 'no status yet'}): kubectl taskrun describe"
            f" {args.name}",
            render.EXIT_TIMEOUT,
        ) from None
    status = final.get("status") or {}
    phase = status.get("phase")
    if args.for_:
        if phase != args.for_:
            raise Failure(
                f"taskrun/{args.name} ended {phase} ({status.get('reason')}: "
                f"{status.get('message')}), not {args.for_}"
            )
        print(f"{RESOURCE}/{args.name} {phase}")
        return 0
    print(render.summary(args.name, status))
    return render.exit_code(status)


def cmd_delete(args: argparse.Namespace) -> int:
    api = client(args)
    ns = namespace(args)
    code = 0
    for name in args.names:
        try:
            api.delete(ns, name)
        except ApiError as err:
            sys.stderr.write(
                f"error: {explain(err, argparse.Namespace(**{**vars(args), 'name': name}))}\n"
            )
            code = 1
            continue
        print(f'{RESOURCE} "{name}" deleted')
        if args.wait:
            _wait_gone(api, ns, name)
    return code


def _wait_gone(api: Client, ns: str, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get(ns, name)
        except ApiError as err:
            if err.code == 404:
                return
            raise
        time.sleep(0.2)
    raise Failure(f"taskrun/{name} still exists {timeout:.0f}s after delete (a finalizer?)")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "logs": cmd_logs,
    "result": cmd_result,
    "list": cmd_list,
    "describe": cmd_describe,
    "cancel": cmd_cancel,
    "rerun": cmd_rerun,
    "wait": cmd_wait,
    "delete": cmd_delete,
}


def entry() -> NoReturn:
    """Console script `kubectl-taskrun`."""
    sys.exit(main())
