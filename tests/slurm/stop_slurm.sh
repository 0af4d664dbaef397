#!/usr/bin/env bash
# Stop the throwaway cluster of tests/slurm/start_slurm.sh (slurmd, slurmctld; munged is left running: other
# clients may use it). The state folder ($OBSBENCH_SLURM_DIR, default /tmp/obsbench-slurm) stays for inspection.
set -uo pipefail
DIR=${OBSBENCH_SLURM_DIR:-/tmp/obsbench-slurm}
for daemon in slurmd slurmctld; do
    if [ -s "$DIR/$daemon.pid" ]; then
        kill "$(cat "$DIR/$daemon.pid")" 2>/dev/null && echo "stop_slurm: stopped $daemon" >&2
    fi
done
