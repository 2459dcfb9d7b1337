#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pkg/test-packages.sh [bookworm|trixie]: `make test-packages`. The packages of `make deb` on a
# Debian 12 (bookworm, the default) or 13 (trixie) system made with Debian's own tools, booted in
# the rig's VM. For bookworm (trixie: its 6.12 kernel, then trixie-backports' 7.3):
#   1. mmdebstrap a bookworm rootfs with linux-image-cloud-amd64, its headers, linux-source-6.1,
#      dkms and Debian's ipvsadm (cached in $RIG_CACHE/pkgtest/, keyed by mirror and package list;
#      RIG_REFRESH=1 makes it anew, with the mirror's current kernel);
#   2. apt-get install ./out/deb/*.deb in it (chroot): fullnat-ipvsadm replaces Debian's ipvsadm,
#      dkms builds fullnat-ipvs and toa for the installed kernel; our keepalived package for the
#      suite (2.2.7 for bookworm, 2.3.3 for trixie; KEEPALIVED_DEB=0: none) over Debian's, and
#      `keepalived -t` of an lb_kind FNAT config with local_address_group and syn_proxy, which
#      Debian's keepalived rejects before the upgrade;
#   3. boot that kernel with the rootfs's /lib/modules (rig/vm.sh --root): our ip_vs with our
#      version loads from updates/dkms, FULLNAT traffic (test/fullnat TestFullNATTraffic),
#      iptables -m ipvs (test/compat TestIptablesMatchIPVS, NAT and FULLNAT), toa.ko loads;
#   4. kernel update: install bookworm-backports' 6.12 image, headers and linux-source-6.12 (the
#      rig's cached .debs): dkms builds ours for it from the kernel's postinst hook, no --force;
#      boot it, same checks;
#   5. apt-get remove the dkms packages: the stock modules are back and load (6.1 VM, NAT).
# One VM at a time; each step fails loudly.
set -euo pipefail

suite=${1:-bookworm}
case "$suite" in
bookworm) line1=6.1 line2=6.12 names2=names ;;
trixie) line1=6.12 line2=7.3 names2=names-7 ;;
*) echo "test-packages: the suites are bookworm and trixie, not $suite" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
RIG_CACHE=${RIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvs-rig}
export RIG_CACHE
pt=$RIG_CACHE/pkgtest
log() { echo "test-packages[$suite]: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

"$top/pkg/deps.sh" --test
"$top/rig/fetch.sh" >/dev/null
# Both releases' keepalived packages (the other release's is built in a chroot), so that each
# suite installs its own over Debian's.
KEEPALIVED_DEB=${KEEPALIVED_DEB:-all} "$top/pkg/deb.sh"
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/kmod/dkms.conf")

# --- 1. the rootfs --------- --------------------------------------------------------------------
. "$top/pkg/mirror.sh"
include=linux-image-cloud-amd64,linux-headers-cloud-amd64,linux-source-$line1,dkms,ipvsadm,keepalived,iptables,kmod,patch,xz-utils,man-db
key=$(echo "$mirror $include" | sha256sum | cut -c1-16)
base=$pt/$suite-$key.tar
mkdir -p "$pt"
if [ ! -s "$base" ] || [ -n "${RIG_REFRESH:-}" ]; then
	log "mmdebstrap $suite ($mirror)"
	rm -f "$pt/$suite"-*.tar
	nice -n 10 mmdebstrap --variant=apt --components=main --format=tar --include="$include" "$suite" "$base.tmp" \
		"deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main" \
		"deb $mirror $suite-backports main" >"$pt/mmdebstrap-$suite.log" 2>&1 ||
		{ tail -n 30 "$pt/mmdebstrap-$suite.log" >&2; fail "mmdebstrap (log: $pt/mmdebstrap-$suite.log)"; }
	mv "$base.tmp" "$base"
fi
root=$pt/root-$suite
umount_root() {
	for m in dev/pts dev proc sys; do
		! mountpoint -q "$root/$m" || umount -l "$root/$m"
	done
}
umount_root
rm -rf "$root"
mkdir -p "$root"
tar -xf "$base" -C "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
payload=$(mktemp -d "${TMPDIR:-/tmp}/pkgtest-payload.XXXXXX")
trap 'umount_root; rm -rf "$payload"' EXIT
cp /etc/resolv.conf "$root/etc/resolv.conf"
# no daemons started in the chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
kernels() { ls "$root/lib/modules"; }
rel1=$(kernels | awk -v l="$line1." 'index($0, l) == 1' | head -n 1)
[ -n "$rel1" ] || fail "no $line1 kernel in the rootfs"
log "rootfs: kernel $rel1, $(in_root dpkg-query -W -f='${Version}' "linux-source-$line1") linux-source-$line1, Debian's ipvsadm $(in_root dpkg-query -W -f='${Version}' ipvsadm)"

# mmdebstrap leaves no package lists
in_root apt-get update -q >"$pt/lists-$suite.log" 2>&1 ||
	{ tail -n 20 "$pt/lists-$suite.log" >&2; fail "apt-get update in the rootfs"; }

# --- 2. our packages with apt --------------------------------------------------------------------
mkdir -p "$root/tmp/debs"
cp "$top"/out/deb/*.deb "$root/tmp/debs/"
echo "-A -t 192.0.2.1:80 -s rr" >"$root/etc/ipvsadm.rules.test"
cp "$root/etc/ipvsadm.rules" "$root/etc/ipvsadm.rules.before"
log "apt-get install ./fullnat-ipvs-dkms ./toa-dkms ./fullnat-ipvsadm"
in_root apt-get install -y -q /tmp/debs/fullnat-ipvs-dkms_"$ver"_all.deb /tmp/debs/toa-dkms_"$ver"_all.deb \
	/tmp/debs/fullnat-ipvsadm_"$ver"_amd64.deb >"$pt/install-$suite.log" 2>&1 ||
	{ tail -n 40 "$pt/install-$suite.log" >&2; fail "apt-get install (log: $pt/install-$suite.log)"; }
grep -E 'dkms|Building|Installing|Error|error' "$pt/install-$suite.log" | tail -n 20 >&2 || true
in_root dkms status >&2

# what the package installed, checked in the rootfs
check_dkms() { # check_dkms RELEASE: our modules under updates/dkms with our version
	local rel=$1 m f v
	for m in ip_vs ip_vs_rr ip_vs_wlc ip_vs_ftp ip_vs_pe_sip xt_ipvs toa; do
		f=$(in_root modinfo -k "$rel" -F filename "$m") || fail "$rel: modinfo $m"
		v=$(in_root modinfo -k "$rel" -F version "$m")
		case "$f" in */updates/dkms/*) ;; *) fail "$rel: modinfo names $f for $m, not dkms's copy" ;; esac
		[ "$v" = "$ver" ] || fail "$rel: $m has version '$v', want $ver"
	done
	log "$rel: modinfo names updates/dkms/ for ip_vs, schedulers, ftp, pe_sip, xt_ipvs, toa, version $ver"
}
check_dkms "$rel1"
! in_root dpkg-query -W -f='${Status}\n' ipvsadm 2>/dev/null | grep -q 'install ok installed' ||
	fail "Debian's ipvsadm is still installed"
for f in /usr/sbin/ipvsadm /usr/sbin/ipvsadm-save /usr/sbin/ipvsadm-restore /etc/init.d/ipvsadm /etc/default/ipvsadm /etc/ipvsadm.rules \
	/usr/lib/modules-load.d/toa.conf /usr/share/bash-completion/completions/ipvsadm; do
	[ -e "$root$f" ] || fail "$f missing after the install"
done
cmp -s "$root/etc/ipvsadm.rules" "$root/etc/ipvsadm.rules.before" || fail "/etc/ipvsadm.rules changed by the install"
in_root man -P cat 8 ipvsadm 2>/dev/null | grep -q -- '--fullnat' || fail "man ipvsadm does not document --fullnat"
log "fullnat-ipvsadm replaced ipvsadm: /usr/sbin paths, rules file kept, man ipvsadm documents --fullnat"

# keepalived: ours over Debian's, with apt, when make deb built it for this suite.
# make deb with KEEPALIVED_DEB=all leaves both releases' packages: take this suite's.
kadeb=
for d in "$top"/out/deb/keepalived_*+fullnat*_amd64.deb; do
	[ -f "$d" ] || continue
	kadist=$(dpkg-deb -f "$d" Version 2>/dev/null | sed -n 's/^1:2\.2\..*/bookworm/p; s/^1:2\.3\..*/trixie/p' || true)
	if [ "$kadist" = "$suite" ]; then kadeb=$d; fi
done
if [ -n "$kadeb" ]; then
	cat >"$root/etc/keepalived/pkgtest.conf" <<'EOF'
global_defs {
    router_id pkgtest
}
local_address_group laddr_g1 {
    192.0.2.100
    192.0.2.101-102
}
virtual_server 203.0.113.10 80 {
    delay_loop 6
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    syn_proxy
    real_server 192.0.2.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
EOF
	debka=$(in_root dpkg-query -W -f='${Version}' keepalived)
	# Debian's: unknown keywords and an unknown forwarding method, exit status non-zero
	if in_root keepalived -t -f /etc/keepalived/pkgtest.conf >"$pt/keepalived-t-debian-$suite.log" 2>&1; then
		fail "Debian's keepalived $debka accepts the FNAT config: the check below would prove nothing"
	fi
	log "apt-get install ./$(basename "$kadeb") over Debian's keepalived $debka"
	in_root apt-get install -y -q "/tmp/debs/$(basename "$kadeb")" >"$pt/install-keepalived-$suite.log" 2>&1 ||
		{ tail -n 40 "$pt/install-keepalived-$suite.log" >&2; fail "apt-get install keepalived (log: $pt/install-keepalived-$suite.log)"; }
	kaver=$(in_root dpkg-query -W -f='${Version}' keepalived)
	[ "$kaver" = "$(dpkg-deb -f "$kadeb" Version)" ] || fail "keepalived $kaver installed, not ours"
	# apt keeps ours: nothing to upgrade from the suite's own keepalived
	in_root apt-get -s install keepalived 2>&1 | grep -q 'keepalived is already the newest version' ||
		fail "apt-get would replace keepalived $kaver: $(in_root apt-get -s install keepalived 2>&1 | tail -n 3)"
	in_root keepalived -t -f /etc/keepalived/pkgtest.conf >"$pt/keepalived-t-$suite.log" 2>&1 ||
		{ cat "$pt/keepalived-t-$suite.log" >&2; fail "keepalived $kaver -t rejects the FNAT config"; }
	! grep -qi 'unknown\|error' "$pt/keepalived-t-$suite.log" ||
		{ cat "$pt/keepalived-t-$suite.log" >&2; fail "keepalived $kaver -t complains about the FNAT config"; }
	log "keepalived $kaver replaced Debian's $debka; keepalived -t accepts lb_kind FNAT, local_address_group, syn_proxy (Debian's: exit status non-zero)"
elif [ "${KEEPALIVED_DEB:-all}" = 0 ]; then
	log "KEEPALIVED_DEB=0: no keepalived package tested"
else
	fail "no keepalived package for $suite in out/deb (pkg/deb.sh with KEEPALIVED_DEB=all builds 2.2.7 and 2.3.3)"
fi

# --- 3. boot it ----------------------------------------------------------------------------------
export CGO_ENABLED=0
mkdir -p "$payload/opt/fullnat/bin" "$payload/opt/fullnat/tests" "$payload/opt/fullnat/run" "$payload/opt/fullnat/src"
(cd "$top" && go build -trimpath -tags urfave_cli_no_docs -o "$payload/opt/fullnat/bin/" ./cmd/...)
# the packaged ipvsadm, ipvsadm-save and ipvsadm-restore, from the rootfs
cp "$root/usr/sbin/ipvsadm" "$payload/opt/fullnat/bin/ipvsadm"
mkdir -p "$payload/usr/sbin"
cp "$root/usr/sbin/ipvsadm" "$root/usr/sbin/ipvsadm-save" "$root/usr/sbin/ipvsadm-restore" "$payload/usr/sbin/"
(cd "$top" && git ls-files -z --cached | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$payload/opt/fullnat/src"
for p in fullnat compat; do
	(cd "$top" && go test -c -tags vmtest -trimpath -o "$payload/opt/fullnat/tests/$p.test" "./test/$p")
done
cat >"$payload/opt/fullnat/run/ours" <<EOF
#!/bin/sh
# our modules, as dkms installed them, with the packaged ipvsadm
set -e
modprobe ip_vs
v=\$(cat /sys/module/ip_vs/version 2>/dev/null || true)
[ "\$v" = "$ver" ] || { echo "pkgcheck: ip_vs loaded with version '\$v', want $ver"; exit 1; }
grep -q 'updates/dkms/ip_vs.ko' /lib/modules/\$(uname -r)/modules.dep || { echo "pkgcheck: modules.dep has no updates/dkms/ip_vs.ko"; exit 1; }
[ -e /proc/net/ip_vs_ext_stats ] || { echo "pkgcheck: no /proc/net/ip_vs_ext_stats"; exit 1; }
echo "pkgcheck: ip_vs \$v from updates/dkms on \$(uname -r)"
# ipvsadm-restore / ipvsadm-save of the package
printf '# saved\n-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 192.0.2.11:80 -m -w 1\n' | /usr/sbin/ipvsadm-restore
/usr/sbin/ipvsadm-save -n | grep -q -- '-A -t 192.0.2.1:80 -s rr' || { echo "pkgcheck: ipvsadm-save lacks the restored service"; /usr/sbin/ipvsadm-save -n; exit 1; }
/usr/sbin/ipvsadm -C
echo "pkgcheck: ipvsadm-restore and ipvsadm-save work"
cd /opt/fullnat/src/test/fullnat && /opt/fullnat/tests/fullnat.test -test.v -test.timeout 600s -test.run '^TestFullNATTraffic\$'
cd /opt/fullnat/src/test/compat && /opt/fullnat/tests/compat.test -test.v -test.timeout 600s -test.run '^TestIptablesMatchIPVS\$'
modprobe toa
v=\$(cat /sys/module/toa/version 2>/dev/null || true)
[ "\$v" = "$ver" ] || { echo "pkgcheck: toa loaded with version '\$v', want $ver"; exit 1; }
echo "pkgcheck: toa \$v loads"
rmmod toa
echo "pkgcheck: ok"
EOF
cat >"$payload/opt/fullnat/run/stock" <<'EOF'
#!/bin/sh
# after the packages are removed: Debian's own modules
set -e
modprobe ip_vs
if [ -e /sys/module/ip_vs/version ] || [ -e /proc/net/ip_vs_ext_stats ]; then
	echo "pkgcheck: ip_vs is still ours ($(cat /sys/module/ip_vs/version))"; exit 1
fi
grep -q '^kernel/net/netfilter/ipvs/ip_vs.ko' /lib/modules/$(uname -r)/modules.dep || { echo "pkgcheck: modules.dep has no stock ip_vs"; exit 1; }
echo "pkgcheck: the stock ip_vs loads on $(uname -r)"
cd /opt/fullnat/src/test/compat && /opt/fullnat/tests/compat.test -test.v -test.timeout 600s -test.run '^TestIptablesMatchIPVS$'
echo "pkgcheck: ok"
EOF
chmod +x "$payload/opt/fullnat/run/"*

boot() { # boot LINE RELEASE MODULES RUN
	log "booting $2 (rootfs modules, RIG_MODULES=$3): $4"
	"$top/rig/vm.sh" --kernel "$1" --modules "$3" --root "$root" --release "$2" --payload "$payload" \
		--run "$4" --timeout 1500 || fail "$2: the $4 checks failed"
	log "$2: $4 checks passed"
}
boot "$line1" "$rel1" ours ours

# --- 4. kernel update: the next line from backports (the rig's cached .debs) ---------------------
rel2=$(awk -v l="$line2" '$1 == l {print $2}' "$RIG_CACHE/kernels/$names2")
[ -n "$rel2" ] || fail "no $line2 kernel in $RIG_CACHE/kernels/$names2 (rig/fetch.sh)"
common=${rel2%-cloud-amd64}
case "$line2" in
6.*) image=("linux-image-$rel2-unsigned") ;;
*) image=("linux-binary-unsigned-$rel2" "linux-modules-$rel2" "linux-base-$rel2") ;;
esac
debs=()
for p in "${image[@]}" "linux-headers-$rel2" "linux-headers-$common-common" \
	"linux-kbuild-$common" "linux-source-$line2"; do
	d=$(ls "$RIG_CACHE/debs/${p}_"*.deb 2>/dev/null | head -n 1)
	[ -n "$d" ] || fail "no $p in $RIG_CACHE/debs (rig/fetch.sh)"
	cp "$d" "$root/tmp/debs/"
	debs+=("/tmp/debs/$(basename "$d")")
done
# from backports as an operator installs it there (-t: bookworm's 6.12 kbuild needs backports' pahole)
log "kernel update: apt-get install -t $suite-backports $rel2 image, headers, linux-source-$line2"
in_root apt-get install -y -q -t "$suite-backports" "${debs[@]}" >"$pt/update-$suite.log" 2>&1 ||
	{ tail -n 40 "$pt/update-$suite.log" >&2; fail "apt-get install of $rel2 (log: $pt/update-$suite.log)"; }
! grep -q -- '--force' "$pt/update-$suite.log" || fail "the kernel update ran dkms with --force"
grep -E 'dkms|DKMS' "$pt/update-$suite.log" | tail -n 10 >&2 || true
in_root dkms status >&2
check_dkms "$rel2"
# 7.x keeps vmlinuz in /usr/lib/modules/REL/ (vmlinuz.unsigned from linux-binary-unsigned)
if [ ! -e "$root/boot/vmlinuz-$rel2" ]; then
	v=$(cd "$root/usr/lib/modules/$rel2" && ls vmlinuz* 2>/dev/null | head -n 1)
	[ -n "$v" ] || fail "no vmlinuz for $rel2 in the rootfs"
	ln -sfn "../usr/lib/modules/$rel2/$v" "$root/boot/vmlinuz-$rel2"
fi
boot "$line2" "$rel2" ours ours

# --- 5. remove the packages ----------------------------------------------------------------------
log "apt-get remove fullnat-ipvs-dkms toa-dkms"
in_root apt-get remove -y -q fullnat-ipvs-dkms toa-dkms >"$pt/remove-$suite.log" 2>&1 ||
	{ tail -n 40 "$pt/remove-$suite.log" >&2; fail "apt-get remove (log: $pt/remove-$suite.log)"; }
for rel in "$rel1" "$rel2"; do
	f=$(in_root modinfo -k "$rel" -F filename ip_vs)
	case "$f" in */kernel/net/netfilter/ipvs/ip_vs.ko*) ;; *) fail "$rel: after the removal modinfo names $f" ;; esac
	[ -z "$(in_root modinfo -k "$rel" -F version ip_vs)" ] || fail "$rel: ip_vs still has a version after the removal"
done
log "after the removal modinfo names the kernel's own ip_vs for $rel1 and $rel2"
boot "$line1" "$rel1" stock stock
log "PASS"
