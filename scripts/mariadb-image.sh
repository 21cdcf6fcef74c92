#!/usr/bin/env bash
# Builds the local MariaDB image used by the integration suite, the demo and the bench.
#
# No container registry is reachable here, so the image is made from Debian's own packages:
# debootstrap a minimal bookworm rootfs with mariadb-server, add our entrypoint, docker import.
# The tag carries a hash of this script and the entrypoint, so a change rebuilds and an
# unchanged machine skips the ~5 minute build. Prints the tag on stdout.
#
# The Debian mirror is read from this machine's apt sources at run time (never hard-coded).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
entry="$here/mariadb-entrypoint.sh"
hash=$(cat "${BASH_SOURCE[0]}" "$entry" | sha256sum | cut -c1-12)
tag="${SHARDPROXY_MARIADB_IMAGE:-shardproxy-mariadb:10.11-$hash}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

mirror() {
  # deb822 sources first, then the one-line format; the first bookworm main entry wins.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '
      /^URIs:/ {u=$2}
      /^Suites:/ {for (i=2;i<=NF;i++) if ($i=="bookworm") s=1}
      /^$/ {if (u!="" && s) {print u; exit} u=""; s=0}
      END {if (u!="" && s) print u}' "$f" | head -n1)
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  if [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  fi
  return 1
}

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
fi

url=$(mirror) || { echo "no bookworm mirror found in the apt sources" >&2; exit 1; }
work=$(mktemp -d /tmp/shardproxy-mariadb-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "building $tag with debootstrap (takes a few minutes, once per machine)" >&2
debootstrap --variant=minbase --include=mariadb-server bookworm "$work/root" "$url" >&2

install -m 0755 "$entry" "$work/root/usr/local/bin/shardproxy-entrypoint"
mkdir -p "$work/root/run/mysqld"
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* \
  "$work/root/usr/share/doc" "$work/root/usr/share/man" "$work/root/var/lib/mysql/"*

tar -C "$work/root" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/shardproxy-entrypoint"]' \
  --change 'EXPOSE 3306' \
  --change 'ENV LANG=C.UTF-8' \
  - "$tag" >&2
echo "$tag"
