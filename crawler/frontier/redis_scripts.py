"""The Redis frontier's Lua scripts: every change to a job's keys is one of these, run atomically.

The scripts are files in ``lua/`` beside this module (package data): ``common.lua`` is the start
of every script, then comes the script's own file, whose header comment gives its KEYS and ARGV and
what it returns. ``crawler.frontier.redis`` describes the keys. Each script takes the job's key
prefix as KEYS[1] and builds the other names from it (all in one hash slot), reads the time from
Redis (``TIME``), and is safe to run twice: a command whose reply was lost can be retried.

ARGV[1] of every script is the job's marker as the worker found it when it joined ('' before):
a script refuses with ``NOJOB`` (and changes nothing) when Redis holds another marker or none, and
takes it off ARGV otherwise, so each script's own arguments start at ARGV[1].
"""

from importlib.resources import files


def script(name: str) -> str:
    """The text of script ``name`` as Redis runs it: ``common.lua``, then ``name.lua``."""
    folder = files("crawler.frontier") / "lua"
    return (folder / "common.lua").read_text(encoding="utf-8") + (folder / f"{name}.lua").read_text(encoding="utf-8")


ADD = script("add")
LEASE = script("lease")
ACK = script("ack")
RELEASE = script("release")
EXCLUDE = script("exclude")
RENEW = script("renew")
HOSTS_WITH_WORK = script("hosts_with_work")
RECLAIM = script("reclaim")
IDLE = script("idle")
JOIN = script("join")
PARK = script("park")
