#!/bin/sh
# Load average and scheduler counts from /proc/loadavg, as tcollector's
# procstats names them. Runs every 60 s (its directory); prints one line per
# metric: "metric timestamp value" (the agent adds host=).
[ -r /proc/loadavg ] || exit 13 # not Linux: do not run again

now=$(date +%s)
read -r one five fifteen sched _ < /proc/loadavg
runnable=${sched%/*}
total=${sched#*/}
echo "proc.loadavg.1min $now $one"
echo "proc.loadavg.5min $now $five"
echo "proc.loadavg.15min $now $fifteen"
echo "proc.loadavg.runnable $now $runnable"
echo "proc.loadavg.total_threads $now $total"
