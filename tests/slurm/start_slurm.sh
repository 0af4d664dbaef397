#!/usr/bin/env bash
# Start a throwaway single-node SLURM cluster on this machine, for the integration test of the
# `hydra/launcher=slurm` preset (tests/test_slurm.py, `make test-slurm`) or to try the preset by hand.
#
#   sudo tests/slurm/start_slurm.sh          # prints the `export SLURM_CONF=...` line to use
#   tests/slurm/stop_slurm.sh                # stops the daemons (the state folder is left for inspection)
#
# Needs root (the daemons run as root: a throwaway cluster), Debian's packages `slurm-wlm` and `munge`
# (apt-get install -y slurm-wlm munge), and no systemd: munged, slurmctld and slurmd are started by hand.
# No cgroups (proctrack/linuxproc), no accounting database (no sacct: the submitter must cope without it), one
# partition `cpu` holding this node, KillWait=5 s (a cancelled task gets SIGTERM, then SIGKILL 5 s later).
# Everything lives under $OBSBENCH_SLURM_DIR (default /tmp/obsbench-slurm): the config is not written to
# /etc/slurm, so clients find it through SLURM_CONF. Idempotent: a cluster already answering is left as it is.
set -euo pipefail

DIR=${OBSBENCH_SLURM_DIR:-/tmp/obsbench-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || { echo "start_slurm: $tool not found (apt-get install -y slurm-wlm munge)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "start_slurm: run as root (the throwaway daemons run as root)" >&2; exit 2; }

if [ -f "$CONF" ] && sinfo -h >/dev/null 2>&1; then
    echo "start_slurm: a cluster is already running with $CONF" >&2
    echo "export SLURM_CONF=$CONF"
    exit 0
fi

mkdir -p "$DIR"/state "$DIR"/spool /run/munge
# munge: the key the package created (or a new one), its socket in /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --force) || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge && chmod 0600 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged
fi

# the node as slurmd sees it (CPUs, sockets, cores, memory), with 1 GB of memory left to the system
NODE_LINE=$(slurmd -C | head -n 1)
HOST=$(echo "$NODE_LINE" | sed -E 's/^NodeName=([^ ]+).*/\1/')
MEM=$(echo "$NODE_LINE" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
NODE_LINE=$(echo "$NODE_LINE" | sed -E "s/RealMemory=[0-9]+/RealMemory=$(( MEM > 2048 ? MEM - 1024 : MEM ))/")

cat > "$CONF" <<EOF
# A throwaway single-node cluster (tests/slurm/start_slurm.sh). The minimum SLURM 22.05 needs, plus:
# KillWait (seconds between SIGTERM and SIGKILL on scancel / time limit), no cgroups, no accounting.
ClusterName=obsbench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=60
SlurmctldTimeout=30
SlurmdTimeout=30
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
$NODE_LINE State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -c -f "$CONF"   # -c: a clean start (no jobs from an earlier throwaway cluster)
slurmd -f "$CONF"
for _ in $(seq 1 30); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        echo "start_slurm: cluster up ($(sinfo -h -o '%P %D %t %c CPUs %m MB' | head -n 1)); logs in $DIR" >&2
        echo "export SLURM_CONF=$CONF"
        exit 0
    fi
    sleep 1
done
echo "start_slurm: the node did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
sinfo -N -l >&2 || true
exit 1
