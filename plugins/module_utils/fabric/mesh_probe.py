# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""One host's side of the NIC mesh preflight: every test of the plan that involves this host, round by round.

Rounds are synchronised by the agents themselves: each test is a rendezvous of the two NICs' agents (the server
side listens, the client side connects and retries while the peer is still busy with an earlier round), and an
agent starts round r+1 only when all its tests of round r are done, so a NIC is never in two tests at once.
The same code runs over SSH (module nic_mesh_agent) and in a pod (python -m ... or the script form).
"""
from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time

CHUNK = b"\0" * (64 * 1024)
# Small socket buffers: a probe measures the link, not how fast a shaped queue drains after the sender stops.
SOCKET_BUFFER = 256 * 1024


# --- tcp probe --------------------------------------------------------------------------------------------
UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM)


def path_blocked(src_ip, dst_ip, port, timeout):
    """True when src cannot reach dst: a TCP connection to a port nobody listens on is refused at once over a
    working path (the peer host answers even when its agent is not listening yet); over a dead path it times out
    or the network reports it unreachable."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((src_ip, 0))
        sock.connect((dst_ip, port))
        return False
    except ConnectionRefusedError:
        return False
    except OSError:
        return True
    finally:
        sock.close()


def tcp_server(ip, port, timeout, peer_ip=None, connect_timeout=3.0):
    # `port` is unique to this (server NIC, client NIC) pair over the whole plan, and a connection from any
    # other address is turned away: a late agent can never be measured against the wrong test.
    """Accept one client, count what it sends, answer with the count and the receive time.

    While waiting, it checks every second that the network does not report the peer NIC unreachable from
    this one, so a blocked link ends the wait at once instead of after `timeout`."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    deadline = time.monotonic() + timeout
    try:
        srv.bind((ip, port))
        srv.listen(1)
        misses = 0
        while True:
            srv.settimeout(0.5)
            try:
                conn, (addr, dummy) = srv.accept()
                if peer_ip and addr != peer_ip:
                    conn.close()
                    continue
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                if peer_ip and path_blocked(ip, peer_ip, port + 1, min(connect_timeout, 0.5)):
                    misses += 1
                    if misses >= 2:
                        return {"connected": False, "error": "%s: network unreachable to %s" % (ip, peer_ip)}
                else:
                    misses = 0
    except OSError as exc:
        return {"connected": False, "error": "server %s:%d: %s" % (ip, port, exc)}
    finally:
        srv.close()
    with conn:
        conn.settimeout(timeout)
        total, first, last = 0, None, None
        try:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    break
                now = time.perf_counter()
                first = first or now
                last = now
                total += len(data)
            conn.sendall(json.dumps({"bytes": total, "seconds": (last - first) if first else 0}).encode())
        except OSError as exc:
            return {"connected": False, "error": "server %s:%d: %s" % (ip, port, exc)}
    return {"connected": True, "bytes": total}


def tcp_client(src_ip, dst_ip, port, duration, rendezvous, connect_timeout):
    """Connect from src_ip (retrying while the server is not listening yet), send for `duration` seconds."""
    deadline = time.monotonic() + rendezvous
    blocked = 0
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.settimeout(connect_timeout)
        try:
            sock.bind((src_ip, 0))
            sock.connect((dst_ip, port))
            break
        except OSError as exc:
            sock.close()
            if exc.errno in UNREACHABLE or isinstance(exc, TimeoutError):
                blocked += 1       # refused means the path works and the peer agent is not listening yet
            if blocked >= 2 or time.monotonic() > deadline:
                return {"connected": False, "error": "%s -> %s:%d: %s" % (src_ip, dst_ip, port, exc)}
            time.sleep(0.05)
    with sock:
        sock.settimeout(max(connect_timeout, duration) + 10)
        try:
            end = time.perf_counter() + duration
            while time.perf_counter() < end:
                sock.sendall(CHUNK)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
            stats = json.loads(reply.decode() or "{}")
        except (OSError, ValueError) as exc:
            return {"connected": False, "error": "%s -> %s:%d: %s" % (src_ip, dst_ip, port, exc)}
    seconds = stats.get("seconds") or duration
    return {"connected": True, "rate": stats.get("bytes", 0) * 8 / seconds, "bytes": stats.get("bytes", 0)}


# --- rdma probe -------------------------------------------------------------------------------------------
def rdma_commands(nic, tcp_port, duration, peer_ip=None, cuda_device=None, json_file=None):
    """ibv_rc_pingpong (connectivity) and ib_write_bw (bandwidth) for one side; with peer_ip it is the client."""
    gid = ["-g", str(nic["gid_index"])] if nic.get("gid_index") is not None else []
    ping = ["ibv_rc_pingpong", "-d", nic["device"], "-i", str(nic.get("port", 1)), *gid, "-p", str(tcp_port),
            "-n", "5"]
    bw = ["ib_write_bw", "-d", nic["device"], "-i", str(nic.get("port", 1)), "-p", str(tcp_port + 1),
          "-D", str(duration), "-F", "--report_gbits"]
    if nic.get("gid_index") is not None:
        bw += ["-x", str(nic["gid_index"])]
    if cuda_device is not None:
        bw.append("--use_cuda=%s" % cuda_device)
    if json_file:
        bw += ["--out_json", "--out_json_file=%s" % json_file]
    if peer_ip:
        ping.append(peer_ip)
        bw.append(peer_ip)
    return ping, bw


def parse_bw_json(text):
    """Average bandwidth in Gb/s from ib_write_bw --out_json (the key names vary between perftest versions)."""
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.lower() in ("bw_average", "bw_avg", "bw_average[gb/sec]", "bw average[gb/sec]"):
                    return float(value)
                found = walk(value)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for item in node:
                found = walk(item)
                if found is not None:
                    return found
        return None
    return walk(json.loads(text))


def rdma_test(nic, tcp_port, duration, timeout, peer_ip=None, cuda_device=None):
    for tool in ("ibv_rc_pingpong", "ib_write_bw"):
        if not shutil.which(tool):
            return {"connected": False, "error": "%s not installed (rdma-core / perftest)" % tool}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        ping, bw = rdma_commands(nic, tcp_port, duration, peer_ip, cuda_device, out.name)
        if peer_ip:
            time.sleep(0.5)  # the server side starts first
        try:
            res = subprocess.run(ping, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"connected": False, "error": "ibv_rc_pingpong timed out"}
        if res.returncode:
            return {"connected": False, "error": (res.stderr or res.stdout).strip()[-300:]}
        if peer_ip:
            time.sleep(0.5)
        try:
            res = subprocess.run(bw, capture_output=True, text=True, timeout=duration + timeout, check=False)
            rate = parse_bw_json(open(out.name).read()) if res.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError, OSError):
            rate = None
    return {"connected": True, "rate": rate * 1e9 if rate is not None else None}


# --- the agent --------------------------------------------------------------------------------------------
def run_agent(host, rounds, nics, probe="tcp", duration=1.0, port_base=20000, rendezvous=60.0,
              connect_timeout=3.0, cuda_devices=None):
    """Run this host's side of every round. `nics[host][i]` = {"device", "address", "gid_index", "port"}.

    Returns the client-side records (one per test where this host is host_b) and timing."""
    records, t0 = [], time.monotonic()
    hosts = sorted(nics)
    per_host = max(len(v) for v in nics.values())

    def port_of(client_host, client_nic):  # unique per (server NIC, client NIC) over the whole plan
        return port_base + 2 * (hosts.index(client_host) * per_host + client_nic)

    for r, tests in enumerate(rounds):
        mine = [(idx, t) for idx, t in enumerate(tests) if host in (t[0], t[2])]
        if not mine:
            continue
        out, threads = {}, []
        for idx, (ha, ia, hb, ib) in mine:
            server = host == ha
            port = port_of(hb, ib)
            local = nics[host][ia if server else ib]
            peer = nics[hb if server else ha][ib if server else ia]

            def work(results, idx=idx, server=server, port=port, local=local, peer=peer):
                if probe == "tcp":
                    if server:
                        results[idx] = tcp_server(local["address"], port, rendezvous + duration, peer["address"],
                                                  connect_timeout)
                    else:
                        results[idx] = tcp_client(local["address"], peer["address"], port, duration, rendezvous,
                                                  connect_timeout)
                else:
                    cuda = (cuda_devices or {}).get(local["device"])
                    results[idx] = rdma_test(local, port, duration, connect_timeout + rendezvous,
                                             None if server else peer["address"], cuda)
            th = threading.Thread(target=work, args=(out,), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        for idx, (ha, ia, hb, ib) in mine:
            if host == hb:
                rec = {"round": r, "host_a": ha, "nic_idx_a": ia, "nic_a": nics[ha][ia]["device"],
                       "host_b": hb, "nic_idx_b": ib, "nic_b": nics[hb][ib]["device"]}
                rec.update(out.get(idx, {"connected": False, "error": "no result"}))
                records.append(rec)
    return {"records": records, "seconds": round(time.monotonic() - t0, 3)}
