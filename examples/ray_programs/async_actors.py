"""Async actors: awaiting refs, many calls at once, and a sync ray.get that
does not stop the actor's other calls."""

import asyncio
import time

import ember as ray


@ray.remote
def fetch(url):
    time.sleep(0.2)
    return f"<html>{url}</html>"


@ray.remote
class Crawler:
    async def __init__(self, seed):
        self.seen = {seed: await fetch.remote(seed)}

    async def crawl(self, url):
        page = await fetch.remote(url)
        self.seen[url] = page
        return len(page)

    async def crawl_many(self, urls):
        pages = await asyncio.gather(*[fetch.remote(u) for u in urls])
        self.seen.update(zip(urls, pages))
        return len(pages)

    async def crawl_blocking(self, url):
        page = ray.get(fetch.remote(url))  # sync get: other calls go on meanwhile
        self.seen[url] = page
        return len(page)

    def count(self):
        return len(self.seen)


if __name__ == "__main__":
    ray.init(num_cpus=2)
    crawler = Crawler.options(max_concurrency=100).remote("seed")
    start = time.monotonic()
    lengths = ray.get([crawler.crawl.remote(f"page{i}") for i in range(10)])
    assert lengths == [len(f"<html>page{i}</html>") for i in range(10)]
    assert ray.get(crawler.crawl_many.remote([f"more{i}" for i in range(5)])) == 5
    blocking = crawler.crawl_blocking.remote("slow")
    assert ray.get(crawler.count.remote()) >= 16  # answered while crawl_blocking waits
    ray.get(blocking)
    assert ray.get(crawler.count.remote()) == 17

    async def driver():
        return await asyncio.gather(*[crawler.crawl.remote(f"async{i}") for i in range(3)])

    assert len(asyncio.run(driver())) == 3
    ray.shutdown()
    print(f"async actors OK: 19 fetches in {time.monotonic() - start:.1f} s")
