#!/bin/sh
# Leaves a grandchild in the process group that ignores SIGTERM (only SIGKILL stops it), prints
# both pids (and, from the grandchild, that its trap is set), then waits.
(trap '' TERM; echo "sleeper ignores TERM"; exec sleep 1000) &
echo "grandchild $!"
echo "leader $$"
wait
