#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the tests and for trying the batch
# scripts before a real cluster (Debian's slurm-wlm and munge; no systemd, no cgroups):
#
#   scripts/slurm/local_cluster.sh start [STATE_DIR]   # then: export SLURM_CONF=STATE_DIR/slurm.conf
#   scripts/slurm/local_cluster.sh stop  [STATE_DIR]
#
# STATE_DIR (default $SLIM_SLURM_DIR or /tmp/slimtrain-slurm) holds slurm.conf, the daemons'
# state, logs and PID files. `start` is idempotent: with the daemons of STATE_DIR alive it
# only waits for the node. The node offers 4 CPUs whatever the machine has (2 cores run 4
# ranks), in two partitions: `train` (default) and `urgent`, whose jobs preempt `train`'s
# (requeue, USR1 at once, SIGTERM after 20 s). Requeued jobs may start again after 2 s.
# `stop` cancels every job, then stops the daemons it started, by their saved PIDs.
# Exit codes: 0 done, 1 a daemon did not start or the node did not come up (the logs in
# STATE_DIR say why; their tails are printed).
set -u

action=${1:?usage: local_cluster.sh start|stop [STATE_DIR]}
state=${2:-${SLIM_SLURM_DIR:-/tmp/slimtrain-slurm}}
conf="$state/slurm.conf"
export SLURM_CONF="$conf"

alive() {  # alive PIDFILE: the process of PIDFILE runs
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

fail() {
  echo "local_cluster: $1" >&2
  for log in "$state"/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}

write_conf() {
  local host
  host=$(hostname -s)
  mkdir -p "$state/ctld" "$state/spool"
  cat > "$conf" <<EOF
ClusterName=slimtrain
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
JobRequeue=1
ReturnToService=2
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmdParameters=config_overrides
SlurmctldParameters=preempt_send_user_signal
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=train Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=20
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
}

start_munge() {
  # Slurm reaches munged on its default socket; one already serving it (the system's) is used.
  if munge -n </dev/null >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  [ -s /etc/munge/munge.key ] || fail "/etc/munge/munge.key is missing: install munge"
  runuser -u munge -- /usr/sbin/munged || fail "munged did not start"
  cp /run/munge/munged.pid "$state/munged.pid"
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
  fail "munged does not answer"
}

wait_for_node() {
  for _ in $(seq 150); do
    case "$(sinfo -h -N -o %T 2>/dev/null | head -n 1)" in
      idle*|mixed*|allocated*) return ;;
    esac
    sleep 0.2
  done
  fail "the node did not come up within 30 s"
}

start() {
  mkdir -p "$state"
  if alive "$state/slurmctld.pid" && alive "$state/slurmd.pid"; then
    wait_for_node
    return
  fi
  command -v slurmctld >/dev/null || fail "slurmctld is missing: apt-get install slurm-wlm munge"
  write_conf
  start_munge
  alive "$state/slurmctld.pid" || {
    slurmctld -D -c -f "$conf" >>"$state/slurmctld.out" 2>&1 &
    echo $! > "$state/slurmctld.pid"
  }
  alive "$state/slurmd.pid" || {
    slurmd -D -f "$conf" >>"$state/slurmd.out" 2>&1 &
    echo $! > "$state/slurmd.pid"
  }
  wait_for_node
}

stop() {
  if alive "$state/slurmctld.pid"; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null
    for _ in $(seq 100); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  for pid_file in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munged.pid"; do
    if alive "$pid_file"; then
      kill "$(cat "$pid_file")"
      for _ in $(seq 50); do alive "$pid_file" || break; sleep 0.1; done
    fi
    rm -f "$pid_file"
  done
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: local_cluster.sh start|stop [STATE_DIR]" >&2; exit 2 ;;
esac
