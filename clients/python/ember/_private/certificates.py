"""A cluster's own certificate authority and the node certificates it
signs (`ember start --head --tls`, `ember.init()` with EMBER_TLS=1), made
with the `cryptography` package. Keys are written 0600.

Operators with their own PKI give files instead (EMBER_TLS_CERT/KEY/CA)
and no CA key is ever needed on a node; the CA made here signs certificates
for nodes that join with a copy of it (`ember start --address ... --tls`)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
import socket

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ember_common.tls import TlsFiles

CA_CERT, CA_KEY = "ca.crt", "ca.key"
NODE_CERT, NODE_KEY = "node.crt", "node.key"
_VALID = datetime.timedelta(days=825)  # the longest a TLS client accepts a server certificate for


def make_ca(directory: pathlib.Path, cluster: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A new CA in `directory`: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Ember cluster CA {cluster}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + 5 * _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, CA_CERT, cert, CA_KEY, key)


def issue_node(directory: pathlib.Path, ca_cert: pathlib.Path, ca_key: pathlib.Path, hosts: list[str]) -> TlsFiles:
    """A certificate for a node (server and client: mutual TLS), valid for
    `hosts` (names or IP addresses) and this machine's loopback and name,
    signed by the CA; written with a copy of the CA certificate."""
    issuer_cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    issuer_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "127.0.0.1", "::1", "localhost", socket.gethostname()]):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            names.append(x509.DNSName(host))
            continue
        if not address.is_unspecified:  # 0.0.0.0 binds every address; it names none
            names.append(x509.IPAddress(address))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ember node {socket.gethostname()}")]))
            .issuer_name(issuer_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))  # type: ignore[arg-type]
    cert_path, key_path = _write(directory, NODE_CERT, cert, NODE_KEY, key)
    ca_copy = directory / CA_CERT
    if ca_copy != ca_cert:
        ca_copy.write_bytes(ca_cert.read_bytes())
    return TlsFiles(cert_path, key_path, ca_copy)


def _write(directory: pathlib.Path, cert_name: str, cert: x509.Certificate, key_name: str,
           key: ec.EllipticCurvePrivateKey) -> tuple[pathlib.Path, pathlib.Path]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = directory / key_name
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path = directory / cert_name
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
