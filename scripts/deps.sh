#!/bin/sh
# Install the Debian packages berth needs. Usage: scripts/deps.sh build|test|bench
# Installs only what is missing; as root it runs apt-get, otherwise it prints
# the one command to run.
set -e
BUILD="gcc make pkg-config libjansson-dev libsqlite3-dev libyaml-dev libssl-dev libcurl4-openssl-dev libarchive-dev libgnutls28-dev"
TEST="$BUILD libcmocka-dev python3 python3-pytest curl openssl skopeo podman docker.io uidmap fuse-overlayfs iproute2 procps docker-registry util-linux"
BENCH="$TEST wrk hyperfine"
case "${1:-build}" in
build) want="$BUILD" ;;
test) want="$TEST" ;;
bench) want="$BENCH" ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "berth: missing Debian packages:$missing" >&2
    echo "berth: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "berth: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing
}
