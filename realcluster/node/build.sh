#!/bin/sh
# Build the real node from Go modules into realcluster/bin/ and its images into
# realcluster/bin/images/: kubelet (same k8s.io/kubernetes module as the control plane),
# containerd + ctr + containerd-shim-runc-v2 (v2.4.2), runc (v1.5.3, cgo + libseccomp),
# the CNI plugins bridge, host-local, loopback (v1.10.0), the pause binary, and the
# busybox and pause OCI archives (images.py). Each tool has its own go.mod under
# realcluster/node/ because their dependency versions differ from Kubernetes'.
#
#   sh realcluster/node/build.sh [kubelet|containerd|runc|cni|pause|images]...  (default: all)
#
# Needs: Go 1.26, gcc and libseccomp-dev (runc), busybox-static (images).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
bin="$top/bin"
mkdir -p "$bin/cni" "$bin/images"
steps=${*:-"runc cni pause images containerd kubelet"}

timed() {
	name=$1; shift
	start=$(date +%s)
	"$@"
	echo "built $name in $(($(date +%s) - start)) s"
}

for step in $steps; do
	case $step in
	kubelet)
		# Same stamp as the control plane so /version and the Node's kubeletVersion say 1.37.2.
		v=v1.37.2
		cd "$top" && timed kubelet go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=2026-12-01T00:00:00Z -s -w" -o "$bin/" k8s.io/kubernetes/cmd/kubelet
		;;
	containerd)
		# no_btrfs: its snapshotter needs btrfs headers through cgo; the node uses
		# overlayfs or native. The shim is static, as upstream's Makefile builds it.
		v=v2.4.2
		ld="-X github.com/containerd/containerd/v2/version.Version=$v -s -w"
		cd "$here/containerd" && timed containerd go build -trimpath -tags no_btrfs -ldflags "$ld" -o "$bin/" \
			github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr
		cd "$here/containerd" && CGO_ENABLED=0 timed containerd-shim-runc-v2 go build -trimpath -ldflags "$ld" -o "$bin/" \
			github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
		;;
	runc)
		cd "$here/runc" && timed runc go build -trimpath -tags seccomp -ldflags "-X main.version=1.5.3 -s -w" -o "$bin/runc" github.com/opencontainers/runc
		;;
	cni)
		cd "$here/cni" && CGO_ENABLED=0 timed cni go build -trimpath -ldflags "-s -w" -o "$bin/cni/" \
			github.com/containernetworking/plugins/plugins/main/bridge \
			github.com/containernetworking/plugins/plugins/main/loopback \
			github.com/containernetworking/plugins/plugins/ipam/host-local
		;;
	pause)
		cd "$here/pause" && CGO_ENABLED=0 timed pause go build -trimpath -ldflags "-s -w" -o "$bin/pause" .
		;;
	images)
		python3 "$here/images.py" "$bin/images" --pause "$bin/pause"
		;;
	*)
		echo "build.sh: unknown step $step (want kubelet, containerd, runc, cni, pause, images)" >&2
		exit 2
		;;
	esac
done
