"""Self and inclusive time per function in the last N seconds of a V8 CPU profile.

    node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/worker.js "$(cat bench/fixtures/notebook-null-device.json)"
    python3 bench/cpuprof_top.py /tmp/prof/CPU.*.cpuprofile 20    # the last 20 s: the steady-state steps
    python3 bench/cpuprof_top.py PROFILE 20 update                 # and the self time under frames whose name contains "update"

bench/NOTES.md entry 10 reads host time per step of the webgpu path this way.
"""
import collections
import json
import sys


def main():
    path, window_s = sys.argv[1], float(sys.argv[2])
    under = sys.argv[3:]
    p = json.load(open(path))
    nodes = {n["id"]: n for n in p["nodes"]}
    parent = {c: n["id"] for n in p["nodes"] for c in n.get("children", [])}

    def key(nid):
        cf = nodes[nid]["callFrame"]
        return f"{cf['functionName'] or '(anon)'} {cf['url'].split('/')[-1]}:{cf['lineNumber']}"

    t, stamps = p["startTime"], []
    for d in p["timeDeltas"]:
        t += d
        stamps.append(t)
    start = stamps[-1] - window_s * 1e6
    own, incl, total = collections.Counter(), collections.Counter(), 0
    below = {u: collections.Counter() for u in under}
    for sample, stamp, d in zip(p["samples"], stamps, p["timeDeltas"]):
        if stamp < start:
            continue
        total += d
        own[key(sample)] += d
        seen, n = set(), sample
        while n is not None:
            k = key(n)
            if k not in seen:
                incl[k] += d
                seen.add(k)
            n = parent.get(n)
        for u in under:
            if any(u in k.split(" ")[0] for k in seen):
                below[u][key(sample)] += d
    print(f"window {total / 1000:.1f} ms")
    for title, counter in (("self", own), ("inclusive", incl)):
        print(f"--- {title}")
        for k, v in counter.most_common(30):
            print(f"{v / 1000:9.1f} {100 * v / total:5.1f}% {k}")
    for u, counter in below.items():
        print(f"--- self time under a frame named *{u}*: {sum(counter.values()) / 1000:.1f} ms")
        for k, v in counter.most_common(20):
            print(f"{v / 1000:9.1f} {100 * v / total:5.1f}% {k}")


if __name__ == "__main__":
    main()
