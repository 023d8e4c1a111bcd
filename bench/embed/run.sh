#!/usr/bin/env bash
# bench/embed: images/s of the embedding path (decode one batch ahead of inference,
# as the embed job runs it) against raw ONNX Runtime on the already-decoded tensors,
# in the same run, and decode-only images/s. Through a real model server when
# MODEL_SERVER=unix:PATH is set, else in-process. See bench/pipeline/bench_embed.c.
#   bench/embed/run.sh [N_IMAGES (default 300)] [MODEL (default mobilenet_v2)] [ORT_THREADS]
here=$(cd "$(dirname "$0")/../.." && pwd)
exec "$here/bench/pipeline/run.sh" "${1:-300}" "${2:-mobilenet_v2}" "${@:3}"
