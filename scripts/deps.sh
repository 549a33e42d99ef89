#!/bin/bash
# Installs the Debian 12 packages tokensign builds and tests with.
# Idempotent: apt-get skips what is already there.
set -euo pipefail
pkgs=(
	build-essential cmake pkg-config git clang clang-format libclang-rt-14-dev
	libssl-dev libpcsclite-dev libcurl4-openssl-dev libjansson-dev
	libcmocka-dev libp11-kit-dev
	openssl softhsm2 opensc docker-registry skopeo
	pcscd vsmartcard-vpcd vsmartcard-vpicc python3 python3-pycryptodome
	haproxy openssh-client openssh-server apache2-utils git systemd
	util-linux procps iproute2 curl ca-certificates gnutls-bin udev nodejs jq
	groff-base p11-kit p11-kit-modules
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
	    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages: ${missing[*]} (run as root)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Package post-install scripts must not start daemons we start ourselves.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.tokensign
	[ -e /usr/sbin/policy-rc.d ] || { cp /usr/sbin/policy-rc.d.tokensign /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }
	rm -f /usr/sbin/policy-rc.d.tokensign
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: all packages present"
