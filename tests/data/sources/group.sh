#!/bin/sh
# Leaves a grandchild in the process group that ignores SIGTERM (only SIGKILL stops it), prints
# both pids, then waits.
(trap '' TERM; exec sleep 1000) &
echo "grandchild $!"
echo "leader $$"
wait
