#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Boot one of Debian's kernels under QEMU with an initramfs made of
#   base:    busybox-static, iproute2 (ip, tc), ethtool, Debian's ipvsadm 1.31 and keepalived, FRR's
#            zebra, bgpd and vtysh (Debian's frr) with their shared libraries, and the kernel's own
#            modules (the closure of what IPVS tests need),
#   modules: with --modules ours, our modules from kmod/out/<release>/ over the stock ip_vs*,
#   keepalived: our patched keepalived (out/keepalived/<version>/, make keepalived) at /opt/fullnat/bin/,
#   perf:    with --perf, Linux's profiler (the host's linux-perf) with its shared libraries,
#   payload: a directory given with --payload, unpacked at / (our binaries, tests, scripts),
# run /opt/fullnat/run/<NAME> inside (--run NAME), and exit with its status.
# The run fails when the kernel log shows an oops, WARN, BUG, lockdep, KASAN, KFENCE, UBSAN,
# refcount or slab splat, or when ip_vs cannot be unloaded at the end.
#
# --kernel 6.12-debug boots the sanitizer kernel of rig/debug-kernel.sh (built and cached on
# first use) with its own modules; our modules then come from kmod/out/<its release>/.
# --tcg single runs QEMU's TCG single-threaded (-accel tcg,thread=single): the vCPUs take turns,
# so one never runs a stale translation of kernel text another one is patching (static keys,
# kprobes, text_poke), and a test may use every vCPU. Default: multi-threaded.
#
# Every VM boots with ignore_loglevel and an 8 MiB log buffer; PID 1 dumps all tasks (sysrq t,
# l, w) into the console 30 s before the timeout kills the VM, so a hang shows where it hangs.
#
# --root DIR --release REL boots DIR/boot/vmlinuz-REL with the modules of DIR/lib/modules/REL,
# including those dkms installed under updates/ (make test-packages: a Debian rootfs with our
# packages installed); --kernel then only names the line for RIG_KERNEL, and --modules only sets
# RIG_MODULES (nothing from kmod/out is added).
#
# usage: rig/vm.sh --kernel 6.1|6.12|7.3|6.12-debug [--modules stock|ours] [--payload DIR] --run NAME
#                  [--timeout SECONDS] [--mem MiB] [--cpus N] [--tcg multi|single] [--log FILE] [--perf]
#                  [--root DIR --release REL]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}

kernel=6.1 modules=stock payload= run= timeout=900 mem=2048 cpus=2 log= tcg=multi root= release= perf=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--modules) modules=$2; shift 2 ;;
	--payload) payload=$2; shift 2 ;;
	--run) run=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--tcg) tcg=$2; shift 2 ;;
	--perf) perf=1; shift ;;
	--root) root=$2; shift 2 ;;
	--release) release=$2; shift 2 ;;
	*) echo "rig/vm.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$run" ] || { echo "rig/vm.sh: --run NAME is required" >&2; exit 2; }
case "$modules" in stock|ours) ;; *) echo "rig/vm.sh: --modules must be stock or ours" >&2; exit 2 ;; esac
case "$tcg" in multi|single) ;; *) echo "rig/vm.sh: --tcg must be multi or single" >&2; exit 2 ;; esac

command -v qemu-system-x86_64 >/dev/null || { echo "rig/vm.sh: qemu-system-x86_64 missing: run rig/fetch.sh" >&2; exit 1; }
debug=0
if [ -n "$root" ]; then
	[ -n "$release" ] && [ -f "$root/boot/vmlinuz-$release" ] && [ -d "$root/lib/modules/$release" ] ||
		{ echo "rig/vm.sh: --root needs --release REL with $root/boot/vmlinuz-REL and $root/lib/modules/REL" >&2; exit 1; }
	rel=$release kroot=$root
else
case "$kernel" in
*-debug)
	debug=1
	[ "$kernel" = 6.12-debug ] || { echo "rig/vm.sh: the only sanitizer kernel is 6.12-debug" >&2; exit 1; }
	read -r rel kroot _ < <("$here/debug-kernel.sh" | tail -n 1)
	[ -n "$rel" ] || { echo "rig/vm.sh: rig/debug-kernel.sh failed" >&2; exit 1; }
	# KASAN's shadow takes an eighth of memory, slub_debug and lockdep more.
	[ "$mem" -ge 3072 ] || mem=3072
	;;
*)
	rel=$("$here/fetch.sh" | awk -v k="$kernel" '$1 == k {print $2}')
	[ -n "$rel" ] || { echo "rig/vm.sh: unknown kernel line $kernel" >&2; exit 1; }
	kroot=$RIG_CACHE/kernels/$rel
	;;
esac
fi

# copy_libs BIN ROOT: the shared libraries BIN loads (ldd), the dynamic loader included, copied
# under ROOT at their own paths.
copy_libs() {
	ldd "$1" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
		mkdir -p "$2$(dirname "$lib")"
		cp -L "$lib" "$2$lib"
	done
}

# --- base image (cached per release, rebuilt when this script or init changes) ---------------
base_key=$(cat "$here/vm.sh" "$here/init" "$here/modules.list" | sha256sum | cut -c1-16)
base=$RIG_CACHE/initramfs/$rel-base-$base_key.cpio
stage=$RIG_CACHE/stage/$rel
if [ -n "$root" ]; then
	# a root's modules change as packages come and go: never the rig's cached base
	base_key=$( (echo "$root"; cat "$here/vm.sh" "$here/init" "$here/modules.list" "$root/lib/modules/$rel/modules.dep") |
		sha256sum | cut -c1-16)
	base=$RIG_CACHE/initramfs/root-$rel-base-$base_key.cpio
	stage=$RIG_CACHE/stage/root-$rel
fi
# One builder at a time: rig/vmtest.sh runs VMs side by side (RIG_VM_JOBS).
mkdir -p "$RIG_CACHE/initramfs"
exec 9>"$RIG_CACHE/initramfs/.lock"
flock 9
if [ ! -s "$base" ]; then
	echo "rig/vm.sh: building base initramfs for $rel" >&2
	rm -rf "$stage"
	if [ -n "$root" ]; then
		rm -f "$RIG_CACHE/initramfs/root-$rel-base-"*.cpio
	else
		rm -f "$RIG_CACHE/initramfs/$rel-base-"*.cpio
	fi
	mkdir -p "$stage" "$RIG_CACHE/initramfs"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,root,opt/fullnat/bin,opt/fullnat/run}
	cp /bin/busybox "$stage/bin/busybox"
	cp "$here/init" "$stage/init"
	chmod 755 "$stage/init"
	# iptables (nft backend, Debian's default) with its match and target plugins, which it
	# dlopen()s: `iptables -m ipvs` must keep working with our ip_vs.
	xt=/usr/lib/x86_64-linux-gnu/xtables
	for b in /usr/sbin/ip /usr/sbin/tc /usr/sbin/ethtool /usr/sbin/ipvsadm /usr/sbin/keepalived /usr/bin/genhash \
		/usr/sbin/nginx /usr/sbin/haproxy \
		/usr/lib/frr/zebra /usr/lib/frr/bgpd /usr/bin/vtysh \
		/usr/sbin/xtables-nft-multi "$xt"/*.so; do
		[ -e "$b" ] || continue
		mkdir -p "$stage$(dirname "$b")"
		cp "$b" "$stage$b"
		copy_libs "$b" "$stage"
	done
	for b in iptables ip6tables iptables-save ip6tables-save; do
		ln -sf xtables-nft-multi "$stage/usr/sbin/$b"
	done
	mkdir -p "$stage/lib64"
	cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
	# Name resolution as the C tools do it: files only.
	cp /etc/services /etc/protocols "$stage/etc/"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
	printf 'hosts: files\nnetworks: files\nservices: files\nprotocols: files\npasswd: files\ngroup: files\n' >"$stage/etc/nsswitch.conf"
	# FRR's daemons drop their privileges to user frr and give their vty sockets to group frrvty
	# (both must exist: "privs_init: could not lookup user frr"), and make their run directory
	# /var/run/frr/<pathspace> in /var/run/frr, which must exist. They need nothing else: no
	# /etc/frr, no YANG files (libfrr and the daemons embed theirs; an empty /usr/share/yang
	# spares a warning per start), no module directory.
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nfrr:x:100:101:Frr routing suite:/nonexistent:/usr/sbin/nologin\n' >"$stage/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\nfrr:x:101:\nfrrvty:x:102:frr\n' >"$stage/etc/group"
	mkdir -p "$stage/var/run/frr" "$stage/usr/share/yang"

	# Kernel modules: the closure of what the tests use, decompressed so busybox can load them.
	mdir=$kroot/lib/modules/$rel
	[ -s "$mdir/modules.dep" ] || depmod -b "$kroot" "$rel"
	# (updates/ and extra/: what dkms installed in a --root)
	roots=$(cd "$mdir" && find kernel/net/netfilter/ipvs -name '*.ko*';
		[ -z "$root" ] || find updates extra -name '*.ko*' 2>/dev/null;
		grep -Ev '^(#|$)' "$here/modules.list" | while read -r m; do
			find kernel -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst"
		done)
	want=$(for r in $roots; do
		echo "$r"
		awk -v m="$r" -F': *' '$1 == m {print $2}' "$mdir/modules.dep" | tr ' ' '\n'
	done | sort -u | grep .)
	smod=$stage/lib/modules/$rel
	mkdir -p "$smod"
	for m in $want; do
		mkdir -p "$smod/$(dirname "$m")"
		case "$m" in
		*.xz) xz -dc "$mdir/$m" >"$smod/${m%.xz}" ;;
		*.zst) zstd -qdc "$mdir/$m" >"$smod/${m%.zst}" ;;
		*) cp "$mdir/$m" "$smod/$m" ;;
		esac
	done
	cp "$mdir/modules.builtin" "$mdir/modules.order" "$smod/" 2>/dev/null || true
	[ -e "$mdir/modules.builtin.modinfo" ] && cp "$mdir/modules.builtin.modinfo" "$smod/"
	depmod -b "$stage" "$rel"
	(cd "$stage" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >"$base.tmp"
	mv "$base.tmp" "$base"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rig.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$base" "$work/initrd"

# --- our modules over the stock ones ---------------------------------------------------------
if [ "$modules" = ours ] && [ -z "$root" ]; then
	out=$top/kmod/out/$rel
	ls "$out"/ip_vs.ko >/dev/null 2>&1 || { echo "rig/vm.sh: no modules in $out: run make -C kmod KVER=$rel" >&2; exit 1; }
	ov=$work/ours
	mkdir -p "$ov"
	cp -al "$stage/." "$ov/" 2>/dev/null || cp -a "$stage/." "$ov/"
	smod=$ov/lib/modules/$rel
	# The stock IPVS modules stay at /opt/fullnat/stock (for insmod) so a benchmark can set
	# them against ours in the same VM.
	mkdir -p "$ov/opt/fullnat/stock"
	cp "$smod"/kernel/net/netfilter/ipvs/*.ko "$ov/opt/fullnat/stock/"
	printf 'opt\nopt/fullnat\nopt/fullnat/stock\n' >>"$work/ours.list"
	(cd "$ov" && ls opt/fullnat/stock/*.ko) >>"$work/ours.list"
	for ko in "$out"/*.ko; do
		name=$(basename "$ko")
		dest=$(cd "$smod" && find kernel -name "$name" | head -n 1)
		[ -n "$dest" ] || dest=extra/$name
		mkdir -p "$smod/$(dirname "$dest")"
		rm -f "$smod/$dest"
		cp "$ko" "$smod/$dest"
		# The kernel's cpio unpacker creates no missing parents: list the directory too.
		echo "lib/modules/$rel/$(dirname "$dest")" >>"$work/ours.list"
		echo "lib/modules/$rel/$dest" >>"$work/ours.list"
	done
	depmod -b "$ov" "$rel"
	(cd "$smod" && ls modules.*) | sed "s|^|lib/modules/$rel/|" >>"$work/ours.list"
	(cd "$ov" && cpio -o -H newc -R 0:0 --quiet <"$work/ours.list") >>"$work/initrd"
fi
# The base and its stage are read: let the next VM build or read them.
exec 9>&-

# --- our keepalived (make keepalived) with its shared libraries -------------------------------
# out/keepalived/2.2.7/keepalived goes to /opt/fullnat/bin/keepalived, any other version to
# /opt/fullnat/bin/keepalived-VERSION. None built: none there (the tests that need it fail).
ka=$work/keepalived
for b in "$top"/out/keepalived/*/keepalived; do
	[ -x "$b" ] || continue
	v=$(basename "$(dirname "$b")")
	name=keepalived
	[ "$v" = 2.2.7 ] || name=keepalived-$v
	mkdir -p "$ka/opt/fullnat/bin"
	cp "$b" "$ka/opt/fullnat/bin/$name"
	copy_libs "$b" "$ka"
done
[ ! -d "$ka" ] || (cd "$ka" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >>"$work/initrd"

# --- perf (--perf: a package's vmtest.conf says perf=1) ----------------------------------------
# The host's perf reads any of the rig's kernels; under TCG only its software events count.
if [ "$perf" = 1 ]; then
	[ -x /usr/bin/perf ] || { echo "rig/vm.sh: --perf needs /usr/bin/perf (linux-perf, rig/fetch.sh)" >&2; exit 1; }
	pf=$work/perf
	mkdir -p "$pf/usr/bin"
	cp /usr/bin/perf "$pf/usr/bin/perf"
	copy_libs /usr/bin/perf "$pf"
	(cd "$pf" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >>"$work/initrd"
fi

# --- payload ---------------------------------------------------------------------------------
pl=$work/payload
mkdir -p "$pl/opt/fullnat"
[ -z "$payload" ] || cp -a "$payload/." "$pl/"
cat >"$pl/opt/fullnat/env" <<EOF
export RIG_KERNEL=${kernel%-debug} RIG_RELEASE=$rel RIG_MODULES=$modules RIG_DEBUG=$debug
export RIG_DEBUG_FLOOD_DIVISOR=${RIG_DEBUG_FLOOD_DIVISOR:-}
export RIG_BENCH_QUICK=${RIG_BENCH_QUICK:-}
EOF
(cd "$pl" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) >>"$work/initrd"

# --- boot ------------------------------------------------------------------------------------
accel=(-accel "tcg,thread=$tcg")
# KVM is opt-in: on nested hosts /dev/kvm can exist and still abort QEMU.
if [ -n "${RIG_KVM:-}" ]; then accel=(-accel kvm "${accel[@]}"); fi
# no_timer_check: on a loaded host TCG can be too slow for the boot-time IO-APIC timer check,
# which then panics ("IO-APIC + timer doesn't work!").
cmdline="console=ttyS0 panic=-1 oops=panic loglevel=4 ignore_loglevel log_buf_len=8M no_timer_check rig.run=$run rig.timeout=$timeout"
# The sanitizer kernel: slab red zones, poisoning and owner tracking too; report every KFENCE
# and KASAN finding, not just the first. no5lvl: with 5-level paging (-cpu max has LA57) KASAN
# reports wild accesses in the first interrupts at boot (handle_edge_irq, 6.12.117).
[ "$debug" = 0 ] || cmdline="$cmdline slub_debug=FZPU kasan.fault=report kasan_multi_shot no5lvl"
console=$work/console
[ -n "$log" ] || log=$console
start=$(date +%s.%N)
set +e
timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
	-machine pc "${accel[@]}" -cpu max -smp "$cpus" -m "$mem" \
	-kernel "$kroot/boot/vmlinuz-$rel" -initrd "$work/initrd" \
	-append "$cmdline" \
	-nographic -no-reboot -nic none -monitor none -serial stdio </dev/null 2>&1 |
	stdbuf -oL tr -d '\r' | tee "$log" | sed -n '/RIG-BEGIN/,$p' | sed -n '/^RIG-DMESG-BEGIN/,/^RIG-DMESG-END/!p'
qrc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
echo "rig: $kernel ($rel, $modules modules, tcg $tcg) $run: $(echo "$end - $start" | bc) s in the VM (qemu exit $qrc)" >&2

rc=$(awk '/^RIG-EXIT / {print $2}' "$log" | tail -n 1)
fail=0
if [ -z "$rc" ]; then
	if grep -q '^RIG-WATCHDOG' "$log"; then
		echo "rig: FAIL: the VM did not finish in $timeout s; before the task dump:" >&2
		sed -n '/^RIG-WATCHDOG/q;p' "$log" | tail -n 60 >&2
		echo "rig: blocked tasks (sysrq w):" >&2
		sed -n '/sysrq: Show Blocked State/,$p' "$log" | head -n 120 >&2
	else
		echo "rig: FAIL: the VM did not finish (timeout, panic or hang); the end of its console:" >&2
		tail -n 60 "$log" >&2
	fi
	fail=1
elif [ "$rc" != 0 ]; then
	echo "rig: FAIL: $run exited $rc" >&2
	fail=1
fi
if ! grep -q '^RIG-UNLOAD ok' "$log"; then
	echo "rig: FAIL: IPVS modules could not be unloaded after the run (leaked reference?)" >&2
	fail=1
fi
# BUG: covers KASAN, KFENCE ("BUG: KFENCE:"), "sleeping function called from invalid context",
# scheduling while atomic and lockdep's held-lock checks; WARNING: covers WARN and lockdep's
# "possible ..." reports and debug objects (ODEBUG, a WARN); slub_debug reports as
# "BUG <cache> (...): <what>".
splat='(Oops|BUG:|WARNING:|------------\[ cut here \]|Kernel panic|general protection fault|refcount_t:|possible recursive locking|circular locking dependency|inconsistent lock state|suspicious RCU usage|kernel BUG at|UBSAN:|KASAN:|KFENCE:|sleeping function called from invalid context|DEBUG_LOCKS_WARN_ON|kmemleak:|ref_tracker:|BUG [^ ]+ \([^)]*\): |Redzone overwritten|Poison overwritten|Object already free|Slab cache still has objects|still has objects when called from|unregister_netdevice: waiting for|soft lockup|hung_task|blocked for more than|rcu_sched self-detected stall|rcu: INFO: rcu_(pre)?empt)'
if grep -Eq "$splat" "$log"; then
	echo "rig: FAIL: kernel splat in the VM log:" >&2
	grep -En -B2 -A30 "$splat" "$log" | head -n 200 >&2
	fail=1
fi
if [ "$fail" = 1 ] && [ "$log" = "$console" ]; then
	# Keep the whole console of a failed run.
	logs=${RIG_LOGDIR:-$RIG_CACHE/logs}
	mkdir -p "$logs"
	keep=$logs/$(date +%Y%m%d-%H%M%S)-$kernel-$modules-$run.console
	cp "$console" "$keep"
	echo "rig: the whole console: $keep" >&2
fi
exit $fail
