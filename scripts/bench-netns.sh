#!/bin/sh
# Runs the load generator, and the Octo it starts, in a network namespace of their own whose
# loopback hands received datagrams to another CPU (RPS) than the one sending them.
#
# Over plain loopback the kernel delivers a datagram into the receiving socket on the sender's CPU,
# inside its send call: the worker's CPU accounting then includes the subscribers' receive path
# (half of what a datagram costs on this VM). On a real network that work happens on the viewers'
# machines. With RPS the loopback queues each datagram to the receive CPU instead, as a NIC would
# hand it over, so the worker pays up to the device and no further.
#
#   sudo scripts/bench-netns.sh --no-audio webinar --subscribers 1000
#   sudo RPS_CPU=1 scripts/bench-netns.sh ramp --scenario webinar
#
# RPS_CPU: the CPU that does the receiving (default: the last one, where the load generator pins
# its media loop when Octo runs one worker). LOADGEN: the binary (default: the release build).
# Needs root (ip netns); the namespace is removed on exit. Traffic never leaves the namespace.
# The receive CPU's backlog (net.core.netdev_max_backlog, 1,000 datagrams by default, global)
# overflows when a worker fans a frame out to a thousand subscribers at once; it is raised to
# 65,536 for the run and put back afterwards.
set -eu
if [ "$(id -u)" != 0 ]; then
    echo "bench-netns.sh: needs root (ip netns)" >&2
    exit 1
fi
cd "$(dirname "$0")/.."
loadgen=${LOADGEN:-./target/release/octo-loadgen}
cpu=${RPS_CPU:-$(($(nproc) - 1))}
mask=$(printf '%x' $((1 << cpu)))
ns="octo-bench-$$"
backlog=$(sysctl -n net.core.netdev_max_backlog)
ip netns add "$ns"
trap 'ip netns del "$ns"; sysctl -qw net.core.netdev_max_backlog="$backlog"' EXIT INT TERM
if [ "$backlog" -lt 65536 ]; then
    sysctl -qw net.core.netdev_max_backlog=65536
fi
ip netns exec "$ns" sh -c 'ip link set lo up && echo "$1" > /sys/class/net/lo/queues/rx-0/rps_cpus && shift && "$@"' \
    sh "$mask" "$loadgen" "$@"
