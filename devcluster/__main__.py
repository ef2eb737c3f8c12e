"""``python -m devcluster --kubeconfig PATH``: serve until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from devcluster.cluster import DevCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devcluster", description="A simulated Kubernetes API on loopback, for tests."
    )
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-kubelet", action="store_true", help="serve the API only")
    parser.add_argument("--seed", type=int, default=None, help="fixed random seed")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    cluster = DevCluster(
        host=args.host, port=args.port, kubelet=not args.no_kubelet, seed=args.seed
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready() -> None:
            cluster.write_kubeconfig(args.kubeconfig)
            print(cluster.url, flush=True)

        await cluster.serve(stop, ready)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
