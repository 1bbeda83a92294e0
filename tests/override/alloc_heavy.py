"""An allocation-heavy Python workload, run under LD_PRELOAD=liblitemalloc.so
with PYTHONMALLOC=malloc so that every Python object goes through malloc:
many small objects, containers growing and shrinking (realloc), large
buffers, objects made on one thread and freed on another, reference cycles
for the garbage collector.  Every result is checked; exits 0 when all hold.
"""
import gc
import hashlib
import json
import queue
import random
import threading


def churn_small(rng, rounds):
    live = {}
    for i in range(rounds):
        key = rng.randrange(5000)
        if key in live and rng.random() < 0.5:
            value = live.pop(key)
            assert value[0] == key, "small object corrupted"
        else:
            live[key] = (key, "x" * rng.randrange(200), [key] * rng.randrange(20))
    return len(live)


def grow_and_shrink(rng):
    data = bytearray()
    for i in range(2000):
        data += bytes([i % 256]) * rng.randrange(1, 3000)
        if i % 10 == 9:
            del data[: len(data) // 2]
    digest = hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(bytes(data)).hexdigest() == digest
    items = []
    for i in range(200000):
        items.append(i)
    while items:
        del items[-1000:]
    return digest


def big_buffers():
    total = 0
    for size in (1 << 20, 5 << 20, 17 << 20, 64 << 20):
        buf = bytearray(size)
        buf[-1] = 7
        total += buf[-1] + len(buf)
    return total


def cycles():
    class Node:
        def __init__(self, value):
            self.value = value
            self.peer = None

    for _ in range(50):
        nodes = [Node(i) for i in range(2000)]
        for a, b in zip(nodes, nodes[1:] + nodes[:1]):
            a.peer = b
        del nodes
        gc.collect()


def json_round_trip(rng):
    doc = {str(i): [rng.random(), "v" * (i % 50), {"n": i}] for i in range(100000)}
    text = json.dumps(doc)
    assert json.loads(text) == doc, "json round trip differs"
    return len(text)


def across_threads():
    """Producers build objects, consumers check and drop them."""
    q = queue.Queue(maxsize=1000)
    errors = []

    def produce(seed):
        rng = random.Random(seed)
        for i in range(100000):
            n = rng.randrange(100)
            q.put((n, list(range(n)), "s" * n))
        q.put(None)

    def consume():
        while True:
            item = q.get()
            if item is None:
                return
            n, numbers, text = item
            if len(numbers) != n or len(text) != n:
                errors.append(item)

    producers = [threading.Thread(target=produce, args=(s,)) for s in range(3)]
    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for t in producers + consumers:
        t.start()
    for t in producers + consumers:
        t.join()
    assert not errors, "objects corrupted across threads"


def main():
    rng = random.Random(2026)
    assert churn_small(rng, 2000000) > 0
    grow_and_shrink(rng)
    assert big_buffers() > 0
    cycles()
    assert json_round_trip(rng) > 0
    across_threads()
    print("alloc_heavy.py: OK")


if __name__ == "__main__":
    main()
