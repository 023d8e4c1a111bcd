#!/usr/bin/env bash
# multihost_pg.sh: tests/integration/multihost.sh with the queue on PostgreSQL too (one
# PostgreSQL for everything, the way a deployment without Redis runs).
MH_QUEUE=postgres exec bash "$VISIOND_SOURCE_DIR/tests/integration/multihost.sh"
