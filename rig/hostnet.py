"""Hosts whose only network interface is loopback (a container or network namespace with just
``lo``): WebRTC stacks leave loopback out of ICE by default, so on such a host no pair would
connect. The rig detects it and turns loopback candidates on in each stack, only there: on
any other host the peers gather exactly as they would for a user.

- Chromium ignores loopback unless launched with ``--allow-loopback-in-peer-connection``;
- Firefox, unless ``media.peerconnection.ice.loopback`` is true;
- aioice (aiortc) never offers loopback; ``aioice.ice.get_host_addresses`` is looked up at
  call time (FIELD-NOTES), so the rig gives it the loopback addresses.
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

from .errors import RigError

CHROMIUM_ARGS = ["--allow-loopback-in-peer-connection"]
FIREFOX_PREFS = {"media.peerconnection.ice.loopback": True}


def local_addresses() -> list[str]:
    """This machine's addresses (this network namespace's), from /proc; [] where unreadable.
    Only for messages: whether an address is local is the kernel's answer to a bind."""
    out: list[str] = []
    try:
        last = ""
        for row in Path("/proc/net/fib_trie").read_text().splitlines():
            row = row.strip()
            if row.startswith(("|--", "+--")):
                last = row.split()[1]
            elif row == "/32 host LOCAL" and last and last not in out:
                out.append(last)
    except OSError:
        pass
    try:
        for row in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = row.split()[0]
            addr = str(ipaddress.IPv6Address(bytes.fromhex(raw)))
            if not addr.startswith("fe80") and addr not in out:
                out.append(addr)
    except (OSError, ValueError, IndexError):
        pass
    return out


@functools.cache
def loopback_only() -> bool:
    """True when this network namespace has no address but loopback ones."""
    addrs = local_addresses()
    return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)


def describe() -> str:
    return ("this host has only a loopback interface: ICE uses loopback candidates (Chromium "
            "--allow-loopback-in-peer-connection, Firefox media.peerconnection.ice.loopback, aiortc's host "
            "addresses set to 127.0.0.1); docs/reliability.md")


def aiortc_loopback() -> None:
    """Give aioice the loopback address as this host's only host address."""
    import aioice.ice  # aiortc's ICE: only in a process that runs aiortc peers

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return (["127.0.0.1"] if use_ipv4 else []) + (["::1"] if use_ipv6 else [])
    aioice.ice.get_host_addresses = host_addresses


#: In a page: how many UDP host candidates with a real address a new connection gathers
#: (bounded: 3 s without the end-of-candidates event).
GATHER_JS = """async () => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.createDataChannel("probe");
  const got = [];
  const done = new Promise((resolve) => {
    pc.onicecandidate = (e) => (e.candidate && e.candidate.candidate ? got.push(e.candidate.candidate) : resolve());
    setTimeout(resolve, 3000);
  });
  await pc.setLocalDescription();
  await done;
  pc.close();
  return got.filter((c) => / udp /i.test(c) && !/ 0\\.0\\.0\\.0 /.test(c)).length;
}"""

_gathered: dict[str, int] = {}  # browser version -> UDP candidates its probe gathered


async def check_gathering(peer) -> None:
    """On a loopback-only host, a browser that gathers no UDP candidate cannot connect: say so
    and how to fix it, at set-up, instead of a generic ICE failure 10 s into the case. Probed
    once per browser version and process."""
    key = f"{peer.spec.kind} {peer.version}"
    if key not in _gathered:
        _gathered[key] = int(await peer._call("probe ICE gathering", GATHER_JS) or 0)
    if not _gathered[key]:
        raise RigError(
            f"{peer.spec} {peer.version} gathers no UDP ICE candidate on this host, whose only interface is loopback "
            f"(probed at set-up; Firefox offers no loopback candidate, media.peerconnection.ice.loopback "
            f"notwithstanding): give the host a non-loopback interface with an address and a default route, e.g. as "
            f"root in a network namespace: ip link add rig0 type veth peer name rig1; ip addr add 192.0.2.1/32 dev "
            f"rig0; ip link set rig0 up; ip link set rig1 up; ip route add default dev rig0 (docs/reliability.md)")
