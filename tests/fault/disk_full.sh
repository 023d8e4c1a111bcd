# disk_full.sh: the data directory (SQLite queue) fills up under a running
# `visiond serve`: enqueues past the full point fail with a clear error (507, code
# storage_full, saying the disk is full), the server keeps running and answering reads,
# no accepted job is lost, and once space returns (the tmpfs is grown in
# place) enqueues succeed again and every earlier job is still there.
# Needs root to mount a 2 MiB tmpfs; skipped (77) otherwise.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
command -v curl >/dev/null || skip "curl is not installed"
D="$T/data"
mkdir -p "$D"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$D" 2>/dev/null || skip "cannot mount a tmpfs (needs root)"
disk_cleanup() {
  if [ -n "${API_PID:-}" ]; then kill -9 "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true; fi
  umount -l "$D" 2>/dev/null || true
  _vd_cleanup
}
trap disk_cleanup EXIT

api_start --data "$D" --threads 2 --model-server none
J=(-H 'Content-Type: application/json')
fill_queue disk.fill 200
accepted=$ACCEPTED
grep -qi "full" <<<"$BODY" || fail "the error does not say the disk is full: $BODY"
df -h "$D" | tail -1

# Still running, reads still work, nothing accepted is lost.
kill -0 "$API_PID" || fail "serve died on a full disk"
req GET /healthz
echo "healthz on a full disk: $STATUS"
req GET "/jobs?type=disk.fill&limit=1000"
[ "$STATUS" = 200 ] && [ "$(jget count)" = "$accepted" ] || fail "listing on a full disk: $STATUS count=$(jget count 2>/dev/null), want $accepted"
# More failures do not corrupt anything.
for _ in 1 2 3; do req POST /jobs "${J[@]}" --data-binary @"$BIG_JOB"; done
[ "$STATUS" != 201 ] || echo "(a small write still fit)"

# Space returns.
mount -o remount,size=32m "$D" || fail "cannot grow the tmpfs"
ok=0
for _ in $(seq 1 50); do
  req POST /jobs "${J[@]}" -d '{"any_type":true,"type":"disk.after"}'
  [ "$STATUS" = 201 ] && { ok=1; break; }
  sleep 0.2
done
[ "$ok" = 1 ] || fail "enqueue after space returned: $STATUS $BODY"
req GET "/jobs?type=disk.fill&limit=1000"
before=$(jget count)
for _ in 1 2 3; do req POST /jobs "${J[@]}" --data-binary @"$BIG_JOB"; [ "$STATUS" = 201 ] || fail "big enqueue after recovery: $STATUS $BODY"; done
req GET "/jobs?type=disk.fill&limit=1000"
[ "$(jget count)" -ge $((accepted + 3)) ] || fail "jobs lost across the full disk: $(jget count), want >= $((accepted + 3)) (saw $before after recovery)"
api_stop
# The database is intact.
command -v sqlite3 >/dev/null && { r=$(sqlite3 "$D/visiond.db" 'PRAGMA integrity_check;'); [ "$r" = ok ] || fail "integrity_check: $r"; }
echo "PASS disk_full"
