# Copyright: llm-d wide-EP collection contributors
# Apache-2.0
"""NIC mesh preflight: the test schedule and the verdict. Pure logic, no I/O.

DeepEP needs every NIC of a host to reach every NIC of every other host. The schedule tests each such pair
exactly once, in rounds where a NIC is in at most one test, in the fewest rounds possible: the graph of pairs is
the complete multipartite graph K(N x K) (N hosts of K NICs), regular of degree (N-1)K, which can be split into
(N-1)K perfect matchings when N*K is even and needs (N-1)K + 1 rounds when N*K is odd.
"""
from __future__ import annotations

from ansible_collections.llmd.wide_ep.plugins.module_utils.errors import InvalidInput

PASS, WARN, FAIL = "pass", "warn", "fail"
DEFAULT_THRESHOLDS = {"pass": 0.9, "warn": 0.75}


def min_rounds(hosts, nics):
    if hosts < 2 or nics < 1:
        return 0
    return (hosts - 1) * nics + (1 if hosts * nics % 2 else 0)


def _circle(n):
    """1-factorization of K_n, n even: n-1 perfect matchings (the circle method), deterministic."""
    rounds = []
    for r in range(n - 1):
        pairs = [(n - 1, r)]
        for i in range(1, n // 2):
            pairs.append(((r + i) % (n - 1), (r - i) % (n - 1)))
        rounds.append(pairs)
    return rounds


def _shifted(host_matchings, nics):
    """Host-level matchings x K NIC shifts: pair NIC i of host a with NIC (i + s) mod K of host b."""
    rounds = []
    for matching in host_matchings:
        for shift in range(nics):
            rounds.append([(a, i, b, (i + shift) % nics) for a, b in matching for i in range(nics)])
    return rounds


def _even_hosts(hosts, nics):
    return _shifted(_circle(hosts), nics)


def _even_nics(hosts, nics):
    """K even: split each host into halves A (NICs 0..K/2-1) and B; the 2N halves form K_2N minus the perfect
    matching {A_h, B_h}. Labelled so that round 0 of the circle method is exactly that matching, the other
    2N-2 rounds are cross-host; each times K/2 shifts gives (N-1)K perfect matchings."""
    half = nics // 2
    n = 2 * hosts
    # circle vertex -> (host, half); round 0 pairs n-1 with 0 and i with -i
    label = {n - 1: (0, 0), 0: (0, 1)}
    for h in range(1, hosts):
        label[h] = (h, 0)
        label[(-h) % (n - 1)] = (h, 1)
    rounds = []
    for matching in _circle(n)[1:]:
        for shift in range(half):
            pairs = []
            for u, v in matching:
                (ha, sa), (hb, sb) = label[u], label[v]
                for i in range(half):
                    pairs.append((ha, sa * half + i, hb, sb * half + (i + shift) % half))
            rounds.append(pairs)
    return rounds


def _misra_gries(hosts, nics):
    """N and K odd: an optimal edge colouring with (N-1)K + 1 colours (Misra and Gries' constructive proof of
    Vizing's theorem). Only used for odd N*K, where no faster construction reaches the bound."""
    n = hosts * nics
    delta = (hosts - 1) * nics
    at = [{} for dummy in range(n)]          # at[v][colour] = neighbour

    def free(v):
        for c in range(delta + 1):
            if c not in at[v]:
                return c
        raise AssertionError("no free colour")

    def colour(u, v, c):
        at[u][c] = v
        at[v][c] = u

    def uncolour(u, v, c):
        del at[u][c]
        del at[v][c]

    def colour_of(u, v):
        for c, w in at[u].items():
            if w == v:
                return c
        return None

    for u in range(n):
        for v in range(u + 1, n):
            if u // nics == v // nics:
                continue
            fan, seen = [v], {v}
            while True:
                last, found = fan[-1], None
                for c, w in sorted(at[u].items()):
                    if w not in seen and c not in at[last]:
                        found = w
                        break
                if found is None:
                    break
                fan.append(found)
                seen.add(found)
            c, d = free(u), free(fan[-1])
            # invert the cd-path from u (it starts with the d-coloured edge at u, if any)
            path, x, cur = [], u, d
            while cur in at[x]:
                y = at[x][cur]
                path.append((x, y, cur))
                x, cur = y, (c if cur == d else d)
            for x, y, col in path:
                uncolour(x, y, col)
            for x, y, col in path:
                colour(x, y, c if col == d else d)
            idx = next(i for i, w in enumerate(fan) if d not in at[w])
            # rotate the fan prefix fan[0..idx]
            for j in range(idx):
                nxt = colour_of(u, fan[j + 1])
                uncolour(u, fan[j + 1], nxt)
                colour(u, fan[j], nxt)
            colour(u, fan[idx], d)
    rounds = [[] for dummy in range(delta + 1)]
    for u in range(n):
        for c, v in at[u].items():
            if u < v:
                rounds[c].append((u // nics, u % nics, v // nics, v % nics))
    return [r for r in rounds if r]


def schedule(hosts, nics):
    """Rounds of tests [(host_a, nic_a, host_b, nic_b), ...] with host_a < host_b, covering every pair of NICs on
    different hosts exactly once, every NIC at most once per round, in min_rounds(hosts, nics) rounds."""
    if hosts < 2 or nics < 1:
        return []
    if nics % 2 == 0:
        rounds = _even_nics(hosts, nics)
    elif hosts % 2 == 0:
        rounds = _even_hosts(hosts, nics)
    else:
        rounds = _misra_gries(hosts, nics)
    out = []
    for r in rounds:
        norm = [(a, i, b, j) if a < b else (b, j, a, i) for a, i, b, j in r]
        out.append(sorted(norm))
    return out


def rail(test):
    return "same-rail" if test[1] == test[3] else "cross-rail"


def plan(host_names, nic_names):
    """The plan of an inventory: host names in inventory order, NIC device names per host (same count)."""
    counts = {len(nic_names[h]) for h in host_names}
    if len(counts) != 1:
        raise InvalidInput("every host needs the same number of NICs in nic_mesh_nics: %s" % {
            h: len(nic_names[h]) for h in host_names})
    k = counts.pop()
    rounds = schedule(len(host_names), k)
    return {"hosts": len(host_names), "nics_per_host": k,
            "rounds": [[[host_names[a], i, host_names[b], j] for a, i, b, j in r] for r in rounds]}


# --- verdict ----------------------------------------------------------------------------------------------
def grade(result, link_rate, thresholds):
    if not result.get("connected"):
        return FAIL
    if not link_rate or result.get("rate") is None:
        return PASS
    frac = result["rate"] / link_rate
    return PASS if frac >= thresholds["pass"] else WARN if frac >= thresholds["warn"] else FAIL


def verdict(results, link_rate=None, thresholds=None):
    """Classify results [{host_a, nic_a, host_b, nic_b, connected, rate}] (NIC names as strings).

    Returns {verdict, ok, summary, failed_links, slow_links, bad_nics, counts}. Verdicts: full-mesh (all pass),
    rail-only (every same-rail pair connects, every cross-rail pair fails), bad-nics (NICs none of whose links
    connect), bad-links (some links fail), slow-links (links below the pass threshold)."""
    thresholds = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
    graded = []
    for r in results:
        g = dict(r, grade=grade(r, link_rate, thresholds), rail=rail((r["host_a"], r["nic_idx_a"],
                                                                      r["host_b"], r["nic_idx_b"])))
        if link_rate and r.get("rate") is not None:
            g["fraction"] = round(r["rate"] / link_rate, 3)
        graded.append(g)
    same = [g for g in graded if g["rail"] == "same-rail"]
    cross = [g for g in graded if g["rail"] == "cross-rail"]
    dead = [g for g in graded if not g.get("connected")]
    counts = {k: sum(1 for g in graded if g["grade"] == k) for k in (PASS, WARN, FAIL)}
    counts["tests"] = len(graded)

    # A NIC is bad when none of its links connect.
    per_nic = {}
    for g in graded:
        for side in ("a", "b"):
            key = "%s:%s" % (g["host_" + side], g["nic_" + side])
            per_nic.setdefault(key, []).append(bool(g.get("connected")))
    bad_nics = sorted(k for k, oks in per_nic.items() if not any(oks))
    failed = [g for g in dead if not any(("%s:%s" % (g["host_" + s], g["nic_" + s])) in bad_nics for s in "ab")]
    slow = [g for g in graded if g.get("connected") and g["grade"] != PASS]

    def name(g):
        return "%s:%s <-> %s:%s" % (g["host_a"], g["nic_a"], g["host_b"], g["nic_b"])

    if not dead and not slow:
        kind, summary = "full-mesh", "full mesh: all %d NIC pairs connect at full rate" % len(graded)
    elif cross and same and all(g.get("connected") for g in same) and not any(g.get("connected") for g in cross):
        kind = "rail-only"
        summary = ("rail-only fabric: all %d same-rail pairs connect, all %d cross-rail pairs fail; DeepEP needs "
                   "every NIC to reach every NIC on other hosts" % (len(same), len(cross)))
    elif bad_nics:
        kind = "bad-nics"
        summary = "NICs with no working link: %s" % ", ".join(bad_nics)
        if failed:
            summary += "; also failing: %s" % ", ".join(name(g) for g in failed)
    elif failed:
        kind, summary = "bad-links", "failing links: %s" % ", ".join(name(g) for g in failed)
    else:
        kind = "slow-links"
        summary = "links below %.0f%% of the link rate: %s" % (thresholds["pass"] * 100, ", ".join(
            "%s (%.0f%%)" % (name(g), 100 * g.get("fraction", 0)) for g in slow))
    if kind != "slow-links" and slow and kind != "full-mesh":
        summary += "; slow: %s" % ", ".join(name(g) for g in slow)
    ok = kind == "full-mesh" or (kind == "slow-links" and all(g["grade"] == WARN for g in slow))
    return {"verdict": kind, "ok": ok, "summary": summary, "counts": counts, "bad_nics": bad_nics,
            "failed_links": [name(g) for g in failed], "slow_links": [name(g) for g in slow], "results": graded}
