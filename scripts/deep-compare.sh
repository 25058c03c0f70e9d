#!/usr/bin/env bash
# deep-compare.sh: the deep-queue benchmark (`raftmq bench deep`) against a
# 3-node cluster of raftmq built from this checkout and, in the same run, of
# the hraftq baseline (../shared/peers/build.sh; it takes the same serve
# flags). For each: restart time of an empty cluster, the deep run (put and
# pop rates and each node's RSS and anonymous RSS every step), each node's
# data directory size at full depth, and the restart time at depth.
#
#   cd <raftmq checkout> && bash scripts/deep-compare.sh
#
# Env: MESSAGES (default 1000000), STEP (50000), CLIENTS (64), KINDS
# ("raftmq hraftq"), PEERS (the shared/peers folder; default: next to the
# checkout), PEERS_BIN (where build.sh put hraftq, to skip the build),
# KEEP=1 keeps the temp dirs, INSTALL=1 adds a last phase (raftmq only:
# node 2 wiped and rebuilt by InstallSnapshot, every node's anonymous RSS
# sampled every 0.1 s meanwhile). Prints one JSON line per kind, then a
# summary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-$here/../../shared/peers}
MESSAGES=${MESSAGES:-1000000}
STEP=${STEP:-50000}
CLIENTS=${CLIENTS:-64}
if [ -z "${PEERS_BIN:-}" ] && [ ! -x "$peers/build.sh" ]; then
  echo "deep-compare: no $peers/build.sh: set PEERS to the shared/peers folder (or PEERS_BIN to its built binaries)" >&2
  exit 2
fi
bin=${PEERS_BIN:-$("$peers/build.sh")}
work=$(mktemp -d -t deep-compare.XXXXXX)
raftmq=$work/bin/raftmq
(cd "$here/.." && go build -o "$raftmq" ./cmd/raftmq)
pids=()
stop_nodes() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_nodes
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

start_nodes() { # BIN DIR
  for i in 0 1 2; do
    "$1" serve --config "$2/config.json" --id "$i" --data-dir "$2/n$i" >>"$2/n$i.log" 2>&1 &
    pids+=($!)
  done
}
# ready DIR TOPIC: seconds until the cluster answers a put to TOPIC (the
# restart time: open files, elect, re-apply, serve).
ready() {
  local t0 t1
  t0=$(date +%s.%N)
  until echo ready | "$raftmq" produce --config "$1/config.json" --timeout 2s -t "$2" >/dev/null 2>&1; do sleep 0.05; done
  t1=$(date +%s.%N)
  python3 -c "print(round($t1-$t0, 2))"
}

for kind in ${KINDS:-raftmq hraftq}; do
  b=$raftmq; [ "$kind" = hraftq ] && b=$bin/hraftq
  d=$work/$kind; mkdir -p "$d/n0" "$d/n1" "$d/n2"
  mapfile -t ports < <("$bin/loadgen" --free-ports 6)
  cat >"$d/config.json" <<JSON
{"addresses":[
 {"ip":"127.0.0.1","port":${ports[0]},"internal_port":${ports[1]}},
 {"ip":"127.0.0.1","port":${ports[2]},"internal_port":${ports[3]}},
 {"ip":"127.0.0.1","port":${ports[4]},"internal_port":${ports[5]}}
]}
JSON
  start_nodes "$b" "$d"
  until "$raftmq" topic list --config "$d/config.json" --timeout 2s >/dev/null 2>&1; do sleep 0.1; done
  "$raftmq" topic create --config "$d/config.json" probe >/dev/null || true
  stop_nodes; start_nodes "$b" "$d"
  restart_empty=$(ready "$d" probe)
  "$raftmq" bench deep --config "$d/config.json" --json --clients "$CLIENTS" --messages "$MESSAGES" --step "$STEP" \
    --topic deep --pids "$(IFS=,; echo "${pids[*]}")" >"$d/bench.json"
  du_bytes=$(for i in 0 1 2; do du -sb "$d/n$i" | cut -f1; done | paste -sd,)
  du_disk=$(for i in 0 1 2; do du -sB1 "$d/n$i" | cut -f1; done | paste -sd,)
  stop_nodes; start_nodes "$b" "$d"
  restart_deep=$(ready "$d" probe)
  install='{}'
  # Opt-in (INSTALL=1): in two runs its sampler judged the wiped node
  # caught up within 0.2 s, before the transfer (seconds, per the logs), so
  # its peaks are not yet a measurement of the transfer.
  if [ "$kind" = raftmq ] && [ "${INSTALL:-0}" = 1 ]; then
    # A wiped follower rebuilt by InstallSnapshot of the whole deep state:
    # anonymous RSS of every node sampled every 0.1 s until it caught up.
    kill -TERM "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
    rm -rf "$d/n2"; mkdir -p "$d/n2"
    "$b" serve --config "$d/config.json" --id 2 --data-dir "$d/n2" --recover >>"$d/n2.log" 2>&1 &
    pids[2]=$!
    install=$(python3 - "$raftmq" "$d/config.json" "${pids[@]}" <<'PY'
import json, subprocess, sys, time
raftmq, cfg, *pids = sys.argv[1:]
addrs = [f'{a["ip"]}:{a["port"]}' for a in json.load(open(cfg))["addresses"]]
def anon(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0
def status(addr):
    out = subprocess.run([raftmq, "status", "--servers", addr, "--json", "--timeout", "1s"], capture_output=True, text=True).stdout
    try:
        return json.loads(out)[0].get("status") or {}
    except Exception:
        return {}
t0, peak, base = time.time(), [0, 0, 0], [anon(p) for p in pids]
target, last = 0, 0
while time.time() - t0 < 600:
    peak = [max(m, anon(p)) for m, p in zip(peak, pids)]
    if time.time() - last > 0.5:
        last = time.time()
        if target == 0:  # the leader's commit index when first found
            target = next((s.get("commit_index", 0) for s in map(status, addrs[:2]) if s.get("role") == "Leader"), 0)
        st = status(addrs[2])
        if target > 0 and st.get("role") and not st.get("recovering") and st.get("applied_index", 0) >= target:
            break
    time.sleep(0.1)
print(json.dumps({"took_s": round(time.time() - t0, 2), "anon_before_bytes": base, "peak_anon_bytes": peak}))
PY
)
  fi
  stop_nodes
  python3 - "$kind" "$d/bench.json" "$du_bytes" "$restart_empty" "$restart_deep" "$du_disk" "$install" <<'PY'
import json, sys
kind, path, du, r0, r1, dd, inst = sys.argv[1:]
rep = json.load(open(path))
rep.update(kind=kind, data_dir_bytes=[int(x) for x in du.split(",")], data_dir_disk_bytes=[int(x) for x in dd.split(",")],
           restart_empty_s=float(r0), restart_deep_s=float(r1), install=json.loads(inst))
print(json.dumps(rep))
PY
done | tee "$work/out.jsonl"
python3 - "$work/out.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    puts = [s for s in r["steps"] if s["phase"] == "put"]
    pops = [s for s in r["steps"] if s["phase"] == "pop"]
    anon = [p["anon_bytes"] >> 20 for p in r["steps"][-1].get("procs", [])]
    peak = [max(p.get("peak_anon_bytes", 0) for s in r["steps"] for p in s.get("procs", []) if p["pid"] == q["pid"]) >> 20
            for q in r["steps"][-1].get("procs", [])]
    q = r["queued_bytes"]
    print(f'{r["kind"]}: depth {puts[-1]["depth_after"]}: put {puts[0]["per_sec"]:.0f}/s empty -> {puts[-1]["per_sec"]:.0f}/s deep '
          f'(x{r["put_ratio"]:.2f}); pop {pops[0]["per_sec"]:.0f}/s -> {pops[-1]["per_sec"]:.0f}/s (x{r["pop_ratio"]:.2f}); '
          f'broker CPU per op deep / empty: put x{r.get("put_cpu_ratio", 0):.2f}, pop x{r.get("pop_cpu_ratio", 0):.2f}; '
          f'anon MB per node at the end {anon}, peak {peak}; data dir / queued bytes '
          f'{[round(b / q, 2) for b in r["data_dir_bytes"]]} (on disk {[round(b / q, 2) for b in r["data_dir_disk_bytes"]]}); '
          f'restart {r["restart_empty_s"]} s empty, {r["restart_deep_s"]} s deep (x{r["restart_deep_s"] / max(r["restart_empty_s"], 0.01):.1f})')
    if r.get("install"):
        i = r["install"]
        print(f'  install to a wiped follower: {i["took_s"]} s; anon MB before {[b >> 20 for b in i["anon_before_bytes"]]}, '
              f'peak during {[b >> 20 for b in i["peak_anon_bytes"]]} (node 2 is the wiped one)')
PY
