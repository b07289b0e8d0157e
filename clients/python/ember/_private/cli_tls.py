"""`ember tls`: certificates for an operator's cluster (systemd units,
several machines), from a CA of the cluster's own: make the CA once, then a
certificate per node; the CA's key never needs to leave the machine that
issues them. The files go to EMBER_TLS_CERT / EMBER_TLS_KEY / EMBER_TLS_CA."""

from __future__ import annotations

import pathlib

import click

from ember._private import certificates

_DIRECTORY = click.Path(file_okay=False, path_type=pathlib.Path)


@click.group()
def tls() -> None:
    """Make a cluster CA and node certificates for mutual TLS."""


@tls.command(name="ca")
@click.argument("directory", type=_DIRECTORY)
@click.option("--name", default="ember", show_default=True, help="The cluster's name, in the CA's subject.")
def make_ca(directory: pathlib.Path, name: str) -> None:
    """Make a CA in DIRECTORY: ca.crt (give it to every node) and ca.key (0600; keep it here)."""
    if (directory / certificates.CA_KEY).exists():
        raise click.ClickException(f"{directory / certificates.CA_KEY} exists; a new CA would orphan its nodes")
    cert, key = certificates.make_ca(directory, name)
    click.echo(f"CA certificate: {cert}\nCA key (0600):  {key}")


@tls.command(name="node")
@click.argument("directory", type=_DIRECTORY)
@click.option("--ca-dir", required=True, type=_DIRECTORY, help="The directory `ember tls ca` made.")
@click.option("--host", "hosts", multiple=True, required=True,
              help="An address or name the node is reached by (its EMBER_HOST); repeat for more.")
def issue_node(directory: pathlib.Path, ca_dir: pathlib.Path, hosts: tuple[str, ...]) -> None:
    """Issue a node certificate into DIRECTORY (node.crt, node.key 0600, ca.crt)."""
    ca_cert, ca_key = ca_dir / certificates.CA_CERT, ca_dir / certificates.CA_KEY
    if not (ca_cert.is_file() and ca_key.is_file()):
        raise click.ClickException(f"no CA in {ca_dir}: make one with `ember tls ca {ca_dir}`")
    files = certificates.issue_node(directory, ca_cert, ca_key, list(hosts))
    click.echo(f"EMBER_TLS_CERT={files.cert}\nEMBER_TLS_KEY={files.key}\nEMBER_TLS_CA={files.ca}")
