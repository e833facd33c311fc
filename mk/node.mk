# The test environment's worker node (internal/testenv node.go, docs/node.md):
# kubelet, kube-scheduler, kube-proxy, CoreDNS and a volume provisioner built from
# their Go modules by hack/tools, containerd/runc/CNI plugins from Debian, images
# built from Debian packages by images/build.sh. All cached per machine.

NODE_TOOLS := kubernetes-node coredns local-path-provisioner
# Debian packages: the container runtime, the CNI plugins, iptables for
# kube-proxy, conntrack (kube-proxy clears stale UDP entries with it), and the
# root file system builders the images use.
NODE_PACKAGES := containerd runc containernetworking-plugins iptables conntrack mmdebstrap debootstrap
NODE_IMAGES := pause busybox probe

.PHONY: node-deps node-tools node-images node-test

## node-deps: install the node's Debian packages (part of `make deps`).
node-deps:
	@missing=; for p in $(NODE_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

## node-tools: build the node's binaries once per machine (~2.5 min for
## kubelet/scheduler/proxy with the control plane's build cache warm; see docs/node.md).
node-tools:
	@for t in $(NODE_TOOLS); do nice -n 19 hack/tools/install.sh $$t >/dev/null || exit 1; done

## node-images: build the node's own images (pause, busybox, probe) once per machine.
node-images:
	@for i in $(NODE_IMAGES); do nice -n 19 images/build.sh $$i >/dev/null || exit 1; done

## node-test: the node's own test (Pods, Service, DNS, volume, logs, clean tear-down).
node-test: node-tools node-images
	$(GO) test -count=1 -timeout 20m -v ./internal/testenv/nodetest/

DEPS_TARGETS += node-deps
TEST_PREREQS += node-tools node-images
