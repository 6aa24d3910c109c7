#!/bin/sh
# Prints its pid and sleeps until stopped (as a child of the group: SIGTERM must reach both).
echo "hang: pid $$"
sleep 600 &
wait
