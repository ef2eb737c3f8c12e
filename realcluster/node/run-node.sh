#!/bin/sh
# The real node's processes, run by realcluster/realnode.py inside a private mount
# namespace (`unshare -m --propagation slave`):
#
#   run-node.sh WORKDIR BINDIR CGROUP
#
# WORKDIR holds containerd.toml, kubelet.yaml, kubelet.kubeconfig and the images to import
# (written by realnode.py); BINDIR the binaries of build.sh; CGROUP the v1 cgroup name
# (e.g. taskrun-realnode) under which the daemons (CGROUP/daemons) and the kubelet's pods
# (CGROUP/kubepods, kubelet cgroupRoot) live, so that stopping the node can find and end
# every process it started.
#
# The mount namespace keeps the node's mounts (pod volumes, overlay snapshots, tmpfs over
# /run/containerd) off the machine, and lets the kubelet see the kernel settings it
# insists on (vm.overcommit_memory=1, kernel.panic_on_oops=1, ...) without the machine's
# own settings being changed: each is a file bind-mounted over its /proc/sys entry.
set -eu
work=$1
bin=$2
cg=$3

# The kubelet wants its cgroupRoot present in every v1 hierarchy; a new v1 cpuset starts
# with no CPUs and no memory nodes, so it gets its parent's.
for h in /sys/fs/cgroup/*/; do
	[ -e "$h/cgroup.procs" ] && [ ! -e "$h/cgroup.controllers" ] && mkdir -p "$h$cg"
done
cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$cg/cpuset.cpus"
cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$cg/cpuset.mems"
# Every later process (containerd, its shims, the kubelet) starts in this pids cgroup;
# runc moves the containers to the kubelet's pod cgroups.
mkdir -p "/sys/fs/cgroup/pids/$cg/daemons"
echo $$ >"/sys/fs/cgroup/pids/$cg/daemons/cgroup.procs"

fake="$work/sysctl"
mkdir -p "$fake"
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
	kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
	key=${kv%%=*}
	f="$fake/$(echo "$key" | tr / .)"
	echo "${kv#*=}" >"$f"
	mount --bind "$f" "/proc/sys/$key"
done

# containerd v2 puts shim sockets under the fixed /run/containerd/s.
mkdir -p /run/containerd
mount -t tmpfs -o mode=0711 tmpfs /run/containerd

export PATH="$bin:$PATH"
# The launcher gives this shell a parent-death SIGKILL (realcluster/processes.py), which
# runs no trap: the daemons get their own, tied to this shell.
die_with_us="setpriv --pdeathsig KILL --"
$die_with_us containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
trap 'kill $cpid 2>/dev/null || true' EXIT
sock="$work/containerd/containerd.sock"
i=0
until ctr --address "$sock" version >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 $cpid 2>/dev/null; then
		echo "run-node.sh: containerd did not answer on $sock; see $work/containerd.log" >&2
		exit 1
	fi
	sleep 0.1
done
snapshotter=$(cat "$work/snapshotter")
for img in "$work"/images/*.tar; do
	ctr --address "$sock" -n k8s.io images import --snapshotter "$snapshotter" --all-platforms "$img" >>"$work/import.log" 2>&1
done
echo ready >"$work/containerd.ready"

$die_with_us kubelet --config "$work/kubelet.yaml" --kubeconfig "$work/kubelet.kubeconfig" \
	--hostname-override "$(cat "$work/nodename")" --node-ip "$(cat "$work/nodeip")" \
	--root-dir "$work/kubelet" --cert-dir "$work/kubelet/pki" -v "${KUBELET_V:-2}" \
	>"$work/kubelet.log" 2>&1 &
kpid=$!
trap 'kill $kpid 2>/dev/null; kill $cpid 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT
wait $kpid
