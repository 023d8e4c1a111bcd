#!/usr/bin/env bash
# train_parity.sh: `visiond train` and POST /training/sessions refuse the same bad sessions
# with the same error code (service/training.h holds every rule once): one label only, a
# missing folder, too many examples, a reserved, empty-named or too long label, no
# examples, an unknown kind, crop on an image session, an unknown model, a model of the
# wrong kind, a name too long. Neither leaves a session or a job behind.
. "$VISIOND_SOURCE_DIR/tests/lib/common.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/api.sh"
. "$VISIOND_SOURCE_DIR/tests/lib/pipeline.sh"

pl_models
M="$T/media"
pl_dataset "$M/ok" 2 train bag trouser
pl_dataset "$M/one" 2 train bag
mkdir -p "$M/res/bag" "$M/res/unknown" "$M/empty" "$M/many/a" "$M/many/b"
cp "$M/ok/bag/"* "$M/res/bag/" && cp "$M/ok/trouser/"* "$M/res/unknown/"
long=$(printf 'l%.0s' $(seq 1 101))
mkdir -p "$M/long/bag" "$M/long/$long"
cp "$M/ok/bag/"* "$M/long/bag/" && cp "$M/ok/trouser/"* "$M/long/$long/"
# 10,002 examples: past the limit of 10,000 (empty files: the limit is on the count)
(cd "$M/many/a" && seq -f 'a%05g.png' 1 5001 | xargs touch) && (cd "$M/many/b" && seq -f 'b%05g.png' 1 5001 | xargs touch)
longname=$(printf 'n%.0s' $(seq 1 201))

Q="sqlite:$DATA/visiond.db"
ms_start
api_start --data "$DATA" --media-root "$M" --queue "$Q"

# CASE: CODE FOLDER [CLI options...]: the API gets the same as JSON fields.
same() {
  local want=$1 folder=$2; shift 2
  local name=x kind="" model="" crop=false
  local args=("$@") i=0
  while [ $i -lt ${#args[@]} ]; do
    case "${args[$i]}" in
      --name) name=${args[$((i + 1))]}; i=$((i + 2)) ;;
      --kind) kind=${args[$((i + 1))]}; i=$((i + 2)) ;;
      --model) model=${args[$((i + 1))]}; i=$((i + 2)) ;;
      --crop) crop=true; i=$((i + 1)) ;;
    esac
  done
  local json="{\"name\": \"$name\", \"folder\": \"$folder\", \"crop\": $crop"
  [ -n "$kind" ] && json="$json, \"kind\": \"$kind\""
  [ -n "$model" ] && json="$json, \"model\": \"$model\""
  json="$json}"
  post_json /training/sessions "$json"
  local api_code; api_code=$(jget error.code 2>/dev/null || echo "(none: $STATUS)")
  local rc=0 cli_args=(--name x)
  printf '%s\n' "$@" | grep -q -- '^--name$' && cli_args=()
  "$VISIOND" train --data "$DATA" --queue "$Q" --no-wait "${cli_args[@]}" "$@" "$folder" >"$T/out" 2>"$T/err" || rc=$?
  local cli_code; cli_code=$(sed -n 's/^visiond: train: \([a-z_]*\): .*/\1/p' "$T/err" | head -1)
  [ "$rc" != 0 ] || fail "$want: the CLI accepted it: $(cat "$T/out")"
  [ "$api_code" = "$want" ] || fail "$want: the API answered $STATUS $BODY"
  [ "$cli_code" = "$want" ] || fail "$want: the CLI said (exit $rc) $(cat "$T/err")"
  echo "ok: $want (API $STATUS, CLI exit $rc)"
}

same one_label "$M/one"
same path_not_found "$M/no_such_folder"
same too_many_examples "$M/many"
same reserved_label "$M/res"
same label_too_long "$M/long"
same no_examples "$M/empty"
same unknown_kind "$M/ok" --kind audio
same invalid_value "$M/ok" --crop
same invalid_value "$M/ok" --name "$longname"
same unknown_model "$M/ok" --model no_such_model
same model_kind_mismatch "$M/ok" --model faceres

nsessions=$(sqlite3 "$DATA/store.db" 'SELECT count(*) FROM sessions' 2>/dev/null || echo 0)
[ "$nsessions" = 0 ] || fail "$nsessions sessions left behind by refused requests"
njobs=$("$VISIOND" queue stats --queue "$Q" | /usr/bin/python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["counts"].values()))')
[ "$njobs" = 0 ] || fail "$njobs jobs left behind by refused requests"

# And a good folder is taken by both.
post_json /training/sessions "{\"name\": \"good\", \"folder\": \"$M/ok\"}"
[ "$STATUS" = 202 ] || fail "API: good session: $STATUS $BODY"
"$VISIOND" train --data "$DATA" --queue "$Q" --no-wait --name good "$M/ok" >"$T/out" || fail "CLI: good session"
echo "ok: a good session is taken by both"
api_stop
ms_stop
