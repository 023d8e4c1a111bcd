#!/usr/bin/env bash
# packaged_config.sh: the Debian package's /etc/visiond/visiond.conf (packaging/visiond.conf)
# is read by `visiond up` without error, every key it sets is taken from it, and it names
# (set or commented out, with its annotation) every key `up` knows, so a key added to
# core/config.c without a line in the shipped config fails here.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
conf=$VISIOND_SOURCE_DIR/packaging/visiond.conf
out=$(env -u VISIOND_DATA -u VISIOND_QUEUE -u VISIOND_LOG_LEVEL \
  "$VISIOND" up --config "$conf" --print-config) || fail "visiond up does not take $conf"
keys=$(sed -n 's/^\([a-z_]*\) *= .*/\1/p' <<<"$out")
[ -n "$keys" ] || fail "no keys in --print-config: $out"
for k in $keys; do
  grep -Eq "^#?$k = " "$conf" || fail "$conf does not mention the key $k"
done
for k in $(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$conf"); do
  grep -Eq "^$k +=.*# from file" <<<"$out" || fail "$k is set in $conf but not taken from it: $out"
done
grep -q '^data *= /var/lib/visiond .*# from file' <<<"$out" || fail "data is not /var/lib/visiond"
echo "packaged_config: ok ($(wc -w <<<"$keys") keys named)"
