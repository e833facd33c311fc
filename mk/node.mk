# The test environment's worker node (internal/testenv node.go, docs/node.md):
# kubelet, kube-scheduler, kube-proxy and CoreDNS built from their Go modules by
# hack/tools (the ingress and the volume provisioner are the test process's own),
# containerd/runc/CNI plugins from Debian, images built from Debian packages by
# images/build.sh. All cached per machine.

NODE_TOOLS := kubernetes-node coredns
# Debian packages: the container runtime, the CNI plugins, iptables for
# kube-proxy, conntrack (kube-proxy clears stale UDP entries with it), and the
# root file system builders the images use.
NODE_PACKAGES := containerd runc containernetworking-plugins iptables conntrack mmdebstrap debootstrap
NODE_IMAGES := pause busybox probe
# The shops' images (the woocommerce and medusa charts on the node).
SHOP_IMAGES := mariadb wordpress postgresql redis node medusa

.PHONY: node-deps node-tools node-images node-test

## node-deps: install the node's Debian packages (part of `make deps`).
node-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "node-deps: not root, skipped (the node tests skip too)"; exit 0; fi; \
	  missing=; for p in $(NODE_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	  command -v npm >/dev/null || missing="$$missing npm"; \
	  if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

## node-tools: build the node's binaries once per machine (~2.5 min for
## kubelet/scheduler/proxy with the control plane's build cache warm; see docs/node.md).
node-tools:
	@for t in $(NODE_TOOLS); do nice -n 19 hack/tools/install.sh $$t >/dev/null || exit 1; done

## node-images: build the node's own images and the shops' once per machine (cold:
## ~10 min, Medusa's npm install + build ~5 of them; docs/node.md). Root only
## (mmdebstrap, chroot): elsewhere the node tests skip, and so does this.
node-images:
	@if [ "$$(id -u)" != 0 ]; then echo "node-images: not root, skipped (the node tests skip too)"; exit 0; fi; \
	  for i in $(NODE_IMAGES) $(SHOP_IMAGES); do nice -n 19 images/build.sh $$i >/dev/null || exit 1; done

## node-test: the node's tests — Pods, Service, DNS, volume, logs, clean tear-down;
## the woocommerce and medusa charts serving on the Debian/npm images.
node-test: node-tools node-images
	$(GO) test -count=1 -timeout 40m -v ./internal/testenv/nodetest/

DEPS_TARGETS += node-deps
TEST_PREREQS += node-tools node-images
