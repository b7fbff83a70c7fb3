#!/usr/bin/env python3
"""Deterministic synthetic workspaces for bench.sh.

gen.py src DIR   ~30,000 files / ~300 MB: source-like text files (a few KB,
                 compressible like real code) in a nested tree, plus 40
                 multi-MB files (half text-like logs, half random binary).
gen.py many DIR  100,000 small files in 1,000 directories.
"""
import os
import random
import sys

WORDS = ("static int const char return if else for while struct void unsigned "
         "size_t uint64_t buf len err goto out free malloc memcpy printf log_warn "
         "rc fd path name node next prev state config handler request response "
         "parse encode decode init open close read write flush sync").split()


def text_blob(rnd, size):
    out = []
    n = 0
    while n < size:
        ind = "\t" * rnd.randint(0, 3)
        line = ind + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 9)))
        line += rnd.choice([";", " {", "", "}", ");", " = %d;" % rnd.randint(0, 9999)]) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def gen_src(d):
    rnd = random.Random(42)
    # A pool of text blocks, recombined per file: like real code, content
    # repeats across files but every file differs.
    pool = [text_blob(rnd, 2048) for _ in range(512)]
    nfiles = 29960
    total = 0
    for i in range(nfiles):
        sub = os.path.join(d, "pkg%02d" % (i % 60), "mod%02d" % ((i // 60) % 25))
        os.makedirs(sub, exist_ok=True)
        parts = [pool[rnd.randrange(len(pool))] for _ in range(rnd.randint(1, 5))]
        data = b"/* file %d */\n" % i + b"".join(parts)[: rnd.randint(800, 10000)]
        with open(os.path.join(sub, "f%05d.c" % i), "wb") as f:
            f.write(data)
        total += len(data)
    os.makedirs(os.path.join(d, "assets"), exist_ok=True)
    for i in range(40):
        size = rnd.randint(2, 5) * 1024 * 1024
        with open(os.path.join(d, "assets", "big%02d.%s" % (i, "log" if i % 2 else "bin")), "wb") as f:
            if i % 2:
                f.write(b"".join(pool[rnd.randrange(len(pool))] for _ in range(size // 2048)))
            else:
                f.write(rnd.randbytes(size))
        total += size
    print("src: %d files, %.0f MB" % (nfiles + 40, total / 1e6))


def gen_many(d):
    for i in range(1000):
        sub = os.path.join(d, "d%03d" % i)
        os.makedirs(sub, exist_ok=True)
        for j in range(100):
            with open(os.path.join(sub, "f%03d.txt" % j), "wb") as f:
                f.write(b"file %d/%d\n" % (i, j) * 10)
    print("many: 100000 files")


if __name__ == "__main__":
    {"src": gen_src, "many": gen_many}[sys.argv[1]](sys.argv[2])
