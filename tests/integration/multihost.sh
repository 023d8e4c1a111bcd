#!/usr/bin/env bash
# multihost.sh: visiond on several hosts (docs/deploy.md), the store on PostgreSQL, the queue
# on Redis ($MH_QUEUE=redis, the default) or PostgreSQL (multihost_pg.sh). Hosts are network
# namespaces with veth links (tests/lib/netns.sh, tests/lib/multihost.sh), each with its own
# address and --data directory, talking over TCP only:
#   db   PostgreSQL 15 on its address (tests/lib/pg.sh) and redis-server
#   api  visiond serve (token, media root)       ms  visiond model-server (shared secret)
#   w1   visiond worker                          w2  visiond worker
#   cl   the client: every request goes from here to the api's address
# Two training sessions: one from uploads (kept in the store, read by a worker from there)
# and one from a media folder that every host sees at the same path (files are shared; the
# network is not). While the folder session is part-way, every process of the worker host that
# runs it is SIGKILLed (the other worker takes the job over when its 3 s lease lapses, and
# resumes from the embedding cache); then every process of the model-server host is SIGKILLed
# and the model server started again. Both sessions must succeed with every example, each job
# must run to completion exactly once, predictions go through the API; the counts are printed.
# Skipped (77) without root/ip netns, PostgreSQL 15, redis-server (Redis run), the models or
# Fashion-MNIST.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/multihost.sh"
MH_QUEUE=${MH_QUEUE:-redis}
WAIT_S=${MH_WAIT_S:-240}
t_start=$(date +%s)
mh_init "$MH_QUEUE"

# ---- the data: models, a media folder, uploads, held-out images ----------------------------
pl_models
LABELS="trouser bag sneaker dress"
pl_dataset "$T/media/fm" "${MH_PER_LABEL:-16}" test $LABELS
pl_dataset "$T/media/held" 3 train $LABELS
pl_dataset "$T/upl" 8 train sandal shirt
NM=$(find "$T/media/fm" -type f | wc -l)
NU=$(find "$T/upl" -type f | wc -l)

mh_db
mh_ms
mh_api
worker_up w1
worker_up w2
W_LOG=$LOGS/w1.log # pipeline.sh's await_session shows it on failure
echo "hosts on $NETNS_NET.0/24: db $DB, api $APIA, ms $MSA, w1 $(host_addr w1), w2 $(host_addr w2), cl $(host_addr cl)"
echo "store $(printf %s "$STORE" | sed 's/:[^:@]*@/:***@/'), queue $(printf %s "$QURL" | sed 's/:[^:@]*@/:***@/')"

# ---- two sessions: uploads, and a media folder -----------------------------------------------
up=()
for f in "$T"/upl/*/*; do up+=(-F "$(basename "$(dirname "$f")")=@$f"); done
req POST /training/sessions -F name=uploaded "${up[@]}"
[ "$STATUS" = 202 ] && [ "$(jget examples)" = "$NU" ] || fail "upload session: $STATUS $BODY"
SU=$(jget id) JU=$(jget job_id)
post_json /training/sessions "{\"name\": \"media\", \"folder\": \"$T/media/fm\"}"
[ "$STATUS" = 202 ] && [ "$(jget examples)" = "$NM" ] || fail "folder session: $STATUS $BODY"
SM=$(jget id) JM=$(jget job_id)
echo "sessions: uploads $SU ($NU examples, job $JU), media folder $SM ($NM examples, job $JM)"

# ---- SIGKILL every process of the worker host that runs the folder session, half-way ----------
progress() { session_field "$1" progress.done; }
running() { [ "$(session_field "$1" state)" = running ]; }
wait_for "$WAIT_S" running "$SM" || fail "the folder session never ran"
# let the model server answer in short slices until the session is part-way: killed half-way
host_kill ms STOP
for i in $(seq 1 400); do
  done_at=$(progress "$SM")
  [ "$done_at" -ge 1 ] && break
  host_kill ms CONT; sleep 0.05; host_kill ms STOP
done
req GET "/jobs/$JM"
victim=$(jget worker)
case "$victim" in w1 | w2) ;; *) host_kill ms CONT; fail "job $JM is run by '$victim': $BODY" ;; esac
[ "$done_at" -lt "$NM" ] || { host_kill ms CONT; fail "the folder session ended before the kill"; }
nproc_victim=$(host_pids "$victim" | wc -w)
host_kill "$victim" KILL
host_kill ms CONT
wait_for 20 bash -c "[ -z \"\$(ip netns pids $NETNS_PREFIX-$victim)\" ]" || fail "$victim still has processes"
echo "killed every process of $victim ($nproc_victim: supervisor and work-horse) at $done_at/$NM examples"
survivor=w1
[ "$victim" = w1 ] && survivor=w2

# ---- then SIGKILL the model-server host once, and start it again -----------------------------
taken_over() { req GET "/jobs/$JM"; [ "$(jget worker)" = "$survivor" ] && [ "$(jget state)" = started ]; }
wait_for "$WAIT_S" taken_over || fail "$survivor never took job $JM over: $BODY"
host_kill ms STOP
ms_done=$(progress "$SM")
[ "$ms_done" -lt "$NM" ] || fail "the folder session ended before the model server was killed"
host_kill ms KILL
wait_for 20 bash -c "[ -z \"\$(ip netns pids $NETNS_PREFIX-ms)\" ]" || fail "ms still has processes"
echo "killed the model-server host at $ms_done/$NM examples of the folder session"
sleep 1
ms_start_again
echo "model server started again"

# ---- both sessions succeed, with every example ------------------------------------------------
await_session "$SU" succeeded failed canceled
await_session "$SM" succeeded failed canceled
check_session() { # ID N NAME
  show_session "$1"
  [ "$(jget state)" = succeeded ] || fail "$3 session: $BODY"
  [ "$(jget progress.done)" = "$2" ] && [ "$(jget progress.total)" = "$2" ] || fail "$3 progress: $BODY"
  [ "$(jget errors)" = "[]" ] || fail "$3 session lost examples: $(jget errors)"
}
check_session "$SU" "$NU" upload
check_session "$SM" "$NM" folder
# each job ran to completion once (a second completion would log a second 'finished')
for j in "$JU" "$JM"; do
  n=$(cat "$LOGS"/w[12].log | grep -c "job $j (train_session) finished" || true)
  [ "$n" = 1 ] || fail "job $j ran to completion $n times"
done
req GET "/jobs/$JM"
att_m=$(jget attempts)
req GET "/jobs/$JU"
att_u=$(jget attempts)
[ "$att_m" -ge 2 ] || fail "the folder session's job has $att_m attempts; the kill should have cost one"

# ---- predictions through the API: paths on the media folder, and an upload -------------------
paths=$(find "$T/media/held" -type f | sort | python3 -c 'import json,sys; print(json.dumps({"paths": sys.stdin.read().split()}))')
post_json "/training/sessions/$SM/predict" "$paths"
[ "$STATUS" = 200 ] || fail "predict (folder): $STATUS $BODY"
right=$(printf '%s' "$BODY" | python3 -c '
import json, sys, os
p = json.load(sys.stdin)["predictions"]
print(sum(1 for x in p if x.get("label") == os.path.basename(os.path.dirname(x["path"]))), len(p))')
held=$(find "$T/media/held" -type f | wc -l)
[ "${right% *}" -ge $((held / 2)) ] || fail "predict (folder): only $right right: $BODY"
f=$(ls "$T"/upl/shirt/* | head -1)
req POST "/training/sessions/$SU/predict" -F "x=@$f"
[ "$STATUS" = 200 ] && [ -n "$(jget predictions.0.label)" ] || fail "predict (upload): $STATUS $BODY"

# ---- the counts ----------------------------------------------------------------------------------
completions=$(cat "$LOGS"/w[12].log | grep -c '(train_session) finished' || true)
echo "multihost ($MH_QUEUE queue, PostgreSQL store): upload session $NU/$NU examples, 0 errors," \
  "$att_u attempt(s); folder session $NM/$NM examples, 0 errors, $att_m attempts ($victim killed" \
  "at $done_at/$NM, model server killed at $ms_done/$NM); $completions completions for 2 jobs;" \
  "predict: ${right% *}/${right#* } held-out right; $(($(date +%s) - t_start)) s"
