"""Redis 7 from the Debian package, as the project's own instance on its own port."""

from __future__ import annotations

import redis

from featurestore.stack.base import Component, require_binary

__all__ = ["RedisServer"]


class RedisServer(Component):
    """The online store's server, with an append-only file so a restart keeps its data."""

    name = "redis"

    def marker(self) -> str:
        return f"{self.settings.redis.host}:{self.settings.redis.port}"

    def address(self) -> str:
        return self.settings.redis.url

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> int:
        cfg = self.settings.redis
        return self.process.start(
            [
                require_binary("redis-server"),
                "--bind",
                cfg.host,
                "--port",
                str(cfg.port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
            ]
        )

    def healthy(self) -> bool:
        cfg = self.settings.redis
        try:
            client = redis.Redis(host=cfg.host, port=cfg.port, socket_timeout=1)
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False
