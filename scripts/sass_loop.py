"""Machine instructions per (i, j) pair in the inner loop of a disassembled kernel
(`nvdisasm -c` output): among the innermost loops (no loop inside), the one with the most
instructions whose opcode starts with PREFIX (`MUFU`: one `ex2` per pair in the Gaussian
kernel; `LDS`: one shared-memory load per pair when a staged row is one 16-byte vector),
its length divided by that count. Used by sass-per-pair.sh and sass-keops-vs-ours.sh.

    python3 sass_loop.py KERNEL.sass PREFIX [--brief]
"""
import re
import sys


def opcode(inst):
    words = inst.split()
    return words[1] if words[0].startswith("@") else words[0]


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    brief = "--brief" in sys.argv[3:]
    insts, labels = [], {}
    for line in open(path).read().splitlines():
        m = re.match(r"\s*(\.L_x_\d+):", line)
        if m:
            labels[m.group(1)] = len(insts)
            continue
        m = re.match(r"\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;", line)
        if m:
            insts.append(m.group(2))
    loops = []
    for end, text in enumerate(insts):
        m = re.search(r"BRA\s+`\((\.L_x_\d+)\)", text)
        if m and labels.get(m.group(1), end + 1) <= end:
            loops.append((labels[m.group(1)], end))
    best = None
    for start, end in loops:
        if any(start <= s and e < end for s, e in loops if (s, e) != (start, end)):
            continue
        body = insts[start : end + 1]
        count = sum(opcode(i).startswith(prefix) for i in body)
        if count and (best is None or count > best[0]):
            best = (count, body)
    if best is None:
        if brief:
            print("n/a")
            return
        sys.exit(f"no loop with a {prefix} instruction")
    count, body = best
    if brief:
        print(f"{len(body) / count:.2f}")
        return
    kinds = {}
    for i in body:
        op = opcode(i).split(".")[0]
        kinds[op] = kinds.get(op, 0) + 1
    print(f"loop: {len(body)} instructions, {count} {prefix} -> {len(body) / count:.2f} instructions per pair")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])))


main()
