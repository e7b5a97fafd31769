import redis


def test_redis_server_answers_and_keeps_values(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("llmops:test:support", "1")
    assert client.get("llmops:test:support") == b"1"
    assert client.incrby("llmops:test:counter", 5) == 5
