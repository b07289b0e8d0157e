"""Generator tasks and actor methods: values are used as they are yielded."""

import asyncio
import time

import ember as ray


@ray.remote
def read_chunks(n):
    for i in range(n):
        time.sleep(0.01)
        yield list(range(i * 10, i * 10 + 10))


@ray.remote(num_returns="dynamic")
def split(values, parts):
    for i in range(parts):
        yield values[i::parts]


@ray.remote
def failing(n):
    for i in range(n):
        yield i
    raise ValueError("the source ran dry")


@ray.remote
class Tokenizer:
    def tokens(self, text):
        for word in text.split():
            yield word.lower()


if __name__ == "__main__":
    ray.init(num_cpus=2)
    total = 0
    for ref in read_chunks.remote(5):  # streaming: the default for generators
        total += sum(ray.get(ref))
    assert total == sum(range(50))

    gen = read_chunks.remote(3)
    ready, _ = ray.wait([gen], timeout=10)
    assert ready == [gen]
    assert ray.get(next(gen)) == list(range(10))

    parts = ray.get(split.remote(list(range(9)), 3))  # a DynamicObjectRefGenerator
    assert [ray.get(ref) for ref in parts] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]

    seen = []
    try:
        for ref in failing.remote(3):
            seen.append(ray.get(ref))
    except ValueError as e:  # the task's error, mid-stream
        assert "ran dry" in str(e)
    assert seen == [0, 1, 2]

    tokenizer = Tokenizer.remote()
    words = [ray.get(ref) for ref in tokenizer.tokens.remote("The Quick Brown Fox")]
    assert words == ["the", "quick", "brown", "fox"]

    async def consume():
        return [await ref async for ref in read_chunks.remote(2)]

    assert asyncio.run(consume()) == [list(range(10)), list(range(10, 20))]
    ray.shutdown()
    print("generators OK: streaming, wait, dynamic, mid-stream error, actor method, async for")
