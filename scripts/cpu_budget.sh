#!/usr/bin/env bash
# usage: scripts/cpu_budget.sh PID SECONDS: SIGTERM PID once its own CPU time (user + sys) reaches SECONDS,
# so two training runs on a shared machine get the same compute, not the same wall-clock time.
pid=$1; budget=$2; tck=$(getconf CLK_TCK)
while kill -0 "$pid" 2>/dev/null; do
  read -r -a f < /proc/$pid/stat
  cpu=$(( (f[13] + f[14]) / tck ))
  if (( cpu >= budget )); then echo "$(date +%T) cpu ${cpu}s >= ${budget}s: SIGTERM"; kill -TERM "$pid"; exit 0; fi
  sleep 15
done
