"""One rule for spans that share an id, used by every tree agtrace builds.

A span id should be unique in a trace, but Zipkin's shared spans give a client
and a server half one id, a message received by several consumers gives
several server halves one id, and broken exporters repeat ids. `agtrace show`
(the display tree) and `agtrace critical-path` / `bottlenecks` (the path walk)
must put such spans in the same places, or the `*` marks of `show` would not
match the path; so both take their parent links from `shared_id_links`.

The rule, as the loader's depth derivation (`ingest.derive`) applies it:

* a server half that shares its id with a client half is that client's child
  (the RPC ran inside the call);
* a span naming a duplicated id as its parent attaches to the earliest server
  half with that id (the work ran inside the server), else to the earliest
  span with that id;
* "earliest" is by start time, then input position (a span without a usable
  start comes last).

A clean client/server pair is normal Zipkin and not reported; any other
repetition is, once per id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def shared_id_links(ids: Sequence[str], kinds: Sequence[str | None] | None,
                    starts: Sequence[int | None], bad: Collection[int] = ()
                    ) -> tuple[dict[str, int], dict[int, int], list[str]]:
    """(index, up, problems) for the spans at positions 0..n-1.

    `index[id]` is the position children naming `id` attach to; `up[i]` is the
    parent position of a server half `i` that shares its id with a client
    half (it overrides i's own parent id); `problems` name the repeated ids
    that are not a clean client/server pair. `bad` holds positions whose start
    is not usable. Linear, and a dict comprehension when no id repeats.
    """
    index = {sid: i for i, sid in enumerate(ids)}
    if len(index) == len(ids):
        return index, {}, []
    same: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    for i, sid in enumerate(ids):
        j = seen.get(sid)
        if j is None:
            seen[sid] = i
        else:
            same.setdefault(sid, [j]).append(i)
    kind = kinds if kinds is not None else [None] * len(ids)

    def order(i: int):
        s = starts[i]
        unusable = s is None or i in bad
        return (unusable, 0 if unusable else s, i)

    up: dict[int, int] = {}
    problems: list[str] = []
    for sid in sorted(same):
        group = sorted(same[sid], key=order)
        servers = [i for i in group if kind[i] == "server"]
        index[sid] = servers[0] if servers else group[0]
        client = next((i for i in group if kind[i] == "client"), None)
        if client is not None:
            for s in servers:
                up[s] = client
        if not (client is not None and len(group) == 2 and servers):
            problems.append(f"span id {sid} occurs {len(group)} times; children attach to the "
                            f"{'server half' if servers else 'earliest'}")
    return index, up, problems
