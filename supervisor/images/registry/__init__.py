"""berth's OCI distribution client (ARCHITECTURE.md §4, "Registry client").

Pure modules: :mod:`.manifest` (media types, parse, platform selection, build),
:mod:`.auth` (challenges, credentials, token requests) and :mod:`.protocol` (endpoints,
error bodies, paging). I/O: :mod:`.http` (h11 over trio) and :mod:`.client`
(:class:`~supervisor.images.registry.client.RegistryClient`).
"""
