#!/usr/bin/env bash
# austin-debian13.sh DIR unpacks Debian 13's austin (3.7) into DIR and prints
# the command that runs it, for tools/record.sh's AUSTIN on Debian 12.
#
# Debian 12's austin 1.0.1 cannot read Python 3.11 (it stops with
# "Interpreter state search timed out"); Debian 13's austin 3.7 can, but is
# built against glibc 2.38, so it runs on Debian 12 through Debian 13's own
# libc6 and dynamic loader, unpacked beside it. apt-get fetches both from
# the Debian archive with a private package list in DIR: nothing is
# installed and the system's apt configuration is left alone.
set -euo pipefail
dir=${1:?usage: austin-debian13.sh DIR}
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/root"
dir=$(cd "$dir" && pwd)
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$dir/apt/sources.list"
apt=(-o "Dir::Etc::sourcelist=$dir/apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/apt/lists"
	-o "Dir::Cache=$dir/apt/cache" -o Dir::State::status=/var/lib/dpkg/status)
apt-get "${apt[@]}" -qq update >&2
cd "$dir/apt"
version() { apt-cache "${apt[@]}" policy "$1" | awk '/Candidate:/ {print $2}'; }
apt-get "${apt[@]}" -qq download "austin=$(version austin)" "libc6=$(version libc6)" 2>&1 | grep -v unsandboxed >&2 || true
for deb in austin_*.deb libc6_*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
lib=$dir/root/usr/lib/x86_64-linux-gnu
echo "$lib/ld-linux-x86-64.so.2 --library-path $lib $dir/root/usr/bin/austin"
