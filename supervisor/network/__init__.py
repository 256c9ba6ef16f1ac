"""Bridge networks and published ports (ARCHITECTURE.md §5).

* ``ipam``: subnets, gateways, container addresses and MACs (PURE).
* ``ports``: ``-p`` specs, ``PortBindings``/``ExposedPorts``, inspect/ps/port renderings (PURE).
* ``netlink``: bridges, network namespaces, veth pairs, iptables NAT and isolation
  (blocking; run through ``worker.NetlinkWorker``).
* ``proxy``: userland TCP/UDP port proxies as trio tasks.
"""
