"""Where the stub listens besides 127.0.0.1, for browsers on other hosts (rig.remote): the
``--rig-stub-host`` address, checked to be one of this machine's own, and the throw-away
self-signed certificate the stub serves there, since a page from any address but loopback is a
secure context (which getUserMedia needs) only over HTTPS.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import socket
import ssl
import tempfile
from pathlib import Path

from ..errors import RigError
from ..hostnet import local_addresses

LOOPBACK = "127.0.0.1"
#: Environment variable read when --rig-stub-host is not given (one value per worker host).
STUB_HOST_ENV = "RIG_STUB_HOST"


def check_stub_host(text: str, *, what: str = "--rig-stub-host") -> str:
    """The address the stub may also listen on for remote browsers: an IP address of this
    machine (the network rule: traffic only to this machine's own addresses), never a name
    (nothing is resolved) nor every interface. One-line RigError otherwise."""
    addr = str(text).strip()
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise RigError(f"{what} {text!r}: not an IP address; give one of this machine's own addresses "
                       f"({', '.join(local_addresses()) or 'see ip addr'}), names are not resolved") from None
    if ip.is_unspecified or ip.is_multicast:
        raise RigError(f"{what} {addr}: the stub listens on one of this machine's own addresses, not "
                       f"{'every interface' if ip.is_unspecified else 'a multicast group'}; give one of: "
                       f"{', '.join(local_addresses()) or 'see ip addr'}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
            raise RigError(f"{what} {addr}: not an address of this machine (the stub listens only on this "
                           f"machine's own addresses: {', '.join(local_addresses()) or 'see ip addr'})") from None
        raise RigError(f"{what} {addr}: cannot listen there ({exc.strerror or exc})") from None
    return str(ip)


def url_host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def self_signed(addr: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``addr`` (EC P-256, one
    day). The remote peers' browser contexts ignore certificate errors: this encrypts nothing
    worth keeping, it only makes the page a secure context. Uses ``cryptography`` (an aiortc
    dependency), imported here only."""

    # cryptography only for a TLS stub (remote peers)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glare-rig signaling stub")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(addr))]), critical=False)
            .sign(key, hashes.SHA256()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="glare-rig-tls-") as tmp:  # load_cert_chain reads files
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
