"""What a running crawl tells the world besides its own terminal: a Prometheus endpoint
(``--metrics HOST:PORT``, ``metrics``) and a stream of JSON events (``--events FILE|-``, ``events``).

    Attempts (a page stored) ─┐
    Hosts (backed off, parked) ┴─► RunStats.observer ─► Metrics (counters the endpoint serves)
                                                     └─► EventStream (one JSON line each, a writer thread)

Both are observers (``base.Observer``): the run calls them from its event loop and never waits on
them; ``watching`` opens them for a run, says ``started``, and ``finished``, ``stopped`` or ``failed``
when the run ends. With ``--workers`` the coordinator sees every worker's pages (it stores them), so
its figures are the whole crawl's.
"""
