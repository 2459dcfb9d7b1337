# SPDX-License-Identifier: Apache-2.0
#
#   make demo   install what is needed, build everything, boot a 6.1 VM and show a virtual service at work
#   make test   the whole suite: Go checks and unit tests (with -race), a short fuzz run, the modules, the VM tests on 6.1 and 6.12,
#               and the demo checked for what it shows
#   make bench  the benchmarks (control plane against C ipvsadm, data path against stock IPVS) on 6.1 and 6.12;
#               they print ratios and are not part of `make test`
#   make test-7 the 7.x lane: the VM suites on Debian trixie-backports' newest 7.x cloud kernel (7.3) with our
#               modules (the kernel-side suites) and with both module sets (ipvs, cmd/ipvsadm); not part of `make test`
#   make vmtest KERNELS=7.3  any kernel line the rig knows, every VM suite
#   make kmod-pointreleases  does patches/<line>/series apply to every linux-source-<line> the mirror lists?
#               (kmod/scripts/pointreleases.sh; downloads, no VM; not part of `make test`)
#   make deb    Debian packages into out/deb/ (pkg/deb.sh); make test-packages installs them in Debian 12 and 13
#               rootfses and boots them (pkg/test-packages.sh; not part of `make test`); make test-takeover
#               installs fullnat-ipvsadm over Debian 12's and 13's ipvsadm in chroots (part of `make test`)
#   make test-debug  the sanitizer lane: Debian's 6.12 built with KASAN, KFENCE, lockdep, UBSAN (rig/debug-kernel.sh,
#               cached), our modules built for it with W=1, and the kernel-side suites run on it
#
# Both targets install their own dependencies (rig/fetch.sh: apt packages and Debian's kernels; Go modules
# through the go command). Downloads and builds are cached in $(RIG_CACHE) and Go's caches.

SHELL := /bin/bash
GO ?= go
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: go1.26's fuzz coordinator can fail a clean run with "context deadline exceeded"
# when a -fuzztime duration ends (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 300000x
KERNELS ?= 6.1 6.12
export CGO_ENABLED ?= 0

# Module sets for the VM tests: ours too once kmod/ can build them.
ifneq ($(wildcard kmod/Makefile),)
MODSETS ?= stock ours
else
MODSETS ?= stock
endif

.PHONY: all bench checkpatch kmod-modlist kmod-pointreleases deb test-packages test-takeover demo demo-cluster demo-check test test-7 test-debug debug-kernel kmod-debug fetch build kmod keepalived check unit race fuzz vmtest clean

all: build

fetch:
	rig/fetch.sh >/dev/null

# Every build of the commands (here, rig/vmtest.sh, rig/demo.sh, pkg/) sets urfave_cli_no_docs: it
# leaves out urfave/cli's man and markdown generators, whose markdown parser's init was 40% of
# ipvsadm's package initialisation, paid by every run.
build:
	mkdir -p out/bin
	$(GO) build -trimpath -tags urfave_cli_no_docs -o out/bin/ ./cmd/...

kmod: fetch
ifneq ($(wildcard kmod/Makefile),)
	$(MAKE) -C kmod W=1
endif

# Debian's keepalived with our patch series (patches/keepalived/<version>/), into out/keepalived/<version>/
# (rig/keepalived.sh; cached in $(RIG_CACHE)/keepalived/, so a second run only copies the binary).
KEEPALIVED_VERSIONS ?= 2.2.7 2.3.3

keepalived:
	@for v in $(KEEPALIVED_VERSIONS); do rig/keepalived.sh $$v >/dev/null || exit 1; done

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags vmtest ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags vmtest ./...

unit:
	$(GO) test -count=1 ./...

# The unit tests under the race detector, which needs cgo (for this target only: the binaries
# the VM runs stay static). `make test` runs these instead of `unit`.
race:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# Every FuzzXxx target for $(FUZZTIME) inputs, on top of its seed corpus (which `unit` already runs).
fuzz:
	@set -e; for f in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		pkg=./$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

vmtest: fetch kmod keepalived
	rig/vmtest.sh --kernels "$(KERNELS)" --modules "$(MODSETS)"

test: fetch check race fuzz kmod keepalived checkpatch test-takeover vmtest demo-check

# The benchmarks (vmtest.conf lane=bench): the control plane against Debian's C ipvsadm
# (ipvs/internal/bench) and the data path, stock NAT against our NAT, FULLNAT and
# FULLNAT+SYNPROXY: throughput, connections, small packets and memory per connection at a million
# connections (test/dataplane), on each of $(KERNELS). They print numbers and ratios and fail only
# when something does not work, never on a time; not part of `make test`. The rig's log goes to
# out/bench/log, and internal/benchreport makes out/bench/report.md and out/bench/chart.svg of it
# (the issue's targets, met or not, per kernel). `RIG_BENCH_QUICK=1 make bench` runs them at a small
# scale (16 MB transfers, 20,000 connections), to try them out.
bench: fetch kmod
	mkdir -p out/bench
	set -o pipefail; rig/vmtest.sh --lane bench --kernels "$(KERNELS)" --modules "$(MODSETS)" 2>&1 | tee out/bench/log
	$(GO) run ./internal/benchreport -o out/bench out/bench/log

# The 7.x lane (rig/fetch.sh's third line; `make -C kmod` builds it with the others). Not in `make test`'s
# KERNELS: CI's budget has room for two lines of every suite. The kernel-side suites run with our modules
# (their stock runs are the upstream behaviour the 6.x lines pin), ipvs and cmd/ipvsadm with both sets.
KERNEL7 ?= $(shell rig/fetch.sh 2>/dev/null | awk '$$1 ~ /^7\./ {print $$1; exit}')
SUITES7_OURS ?= ./test/fullnat ./test/synproxy ./test/toa ./test/packets ./test/proxyproto ./test/dataplane ./test/compat ./test/cluster ./test/keepalived ./cmd/lvsctl
SUITES7_BOTH ?= ./ipvs ./ipvs/ipvstest ./cmd/ipvsadm

test-7: fetch kmod keepalived
	rig/vmtest.sh --kernels "$(KERNEL7)" --modules ours $(SUITES7_OURS)
	rig/vmtest.sh --kernels "$(KERNEL7)" --modules "$(MODSETS)" $(SUITES7_BOTH)

# The sanitizer lane. The kernel build takes long the first time (see README.md), then nothing.
DEBUG_SUITES ?= ./ipvs ./test/fullnat ./test/synproxy ./test/toa ./test/packets ./test/proxyproto ./test/compat ./test/cluster

debug-kernel: fetch
	rig/debug-kernel.sh

kmod-debug: debug-kernel
	@read -r rel root build < <(rig/debug-kernel.sh | tail -n 1) && \
		$(MAKE) -C kmod KVER="$$rel" KDIR="$$build" W=1

test-debug: kmod-debug
	rig/vmtest.sh --kernels 6.12-debug --modules ours $(DEBUG_SUITES)

demo: fetch build kmod
	rig/demo.sh

# The cluster's failover in a 6.1 VM: long FULLNAT transfers through director A, A dies, B
# carries them, A rejoins and takes them back; the counters of both directors (test/cluster).
demo-cluster: fetch build kmod
	rig/vmtest.sh --kernels 6.1 --modules ours --run 'TestFailover$$/^FULLNAT$$' ./test/cluster

# The kernel's checkpatch.pl --strict over kmod/ and patches/.
checkpatch: fetch
	$(MAKE) -C kmod checkpatch

# Debian packages into out/deb/ (pkg/deb.sh: dpkg-buildpackage with pkg/debian/, then lintian):
# fullnat-ipvs-dkms, toa-dkms, fullnat-ipvsadm, and Debian's keepalived with our series for the host's
# release (pkg/keepalived-deb.sh; KEEPALIVED_DEB=all: bookworm's and trixie's, the other release's in an
# mmdebstrap chroot; KEEPALIVED_DEB=0: none). Installs its build tools (pkg/deps.sh).
deb:
	KEEPALIVED_DEB="$(KEEPALIVED_DEB)" pkg/deb.sh

# The packages on a Debian 12 rootfs made by mmdebstrap (cached in $(RIG_CACHE)/pkgtest), booted in the
# VM: dkms builds for the installed kernel, FULLNAT, iptables -m ipvs and toa.ko work, a kernel update
# (6.12) gets our modules without --force, removal brings the stock modules back (pkg/test-packages.sh).
# PKGTEST_SUITES=trixie: Debian 13, its 6.12 kernel, then trixie-backports' 7.3. Not part of `make test`
# (about 12 minutes per suite).
PKGTEST_SUITES ?= bookworm trixie

# fullnat-ipvsadm over Debian 12's and 13's own ipvsadm, with dpkg -i and apt, and an upgrade from
# the /sbin layout: no file lost on a merged /usr (pkg/test-takeover.sh; chroots, no VM; part of
# `make test`, about 4 minutes the first time).
test-takeover:
	pkg/test-takeover.sh

test-packages: fetch
	@for s in $(PKGTEST_SUITES); do pkg/test-packages.sh $$s || exit 1; done

# dkms.conf's module list and BUILD_EXCLUSIVE_KERNEL against the modules that import ip_vs symbols
# and patches/, for every kernel the rig knows (kmod/scripts/modlist.sh; about 2 minutes: 7.3's
# modules are xz-compressed).
kmod-modlist: fetch
	kmod/scripts/modlist.sh

# patches/<line>/series against every Debian point release of each line the mirror offers (the host's
# bookworm and bookworm-security lists, the rig's trixie and trixie-backports view): the linux-source
# .debs are cached in $(RIG_CACHE)/pointreleases/debs, build.sh --apply-only applies the series to each
# (no fuzz, as a build does) and a table says which apply. Not part of `make test`.
kmod-pointreleases: fetch
	kmod/scripts/pointreleases.sh

# The demo, run and checked for what it shows (see rig/demo-check.sh).
demo-check: fetch kmod
	rig/demo-check.sh

clean:
	rm -rf out
ifneq ($(wildcard kmod/Makefile),)
	$(MAKE) -C kmod clean
endif
