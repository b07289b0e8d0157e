"""`ember job`: submit a program to a cluster and follow it (Ray's `ray job`),
through the head node's token-protected job service."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import click

_ADDRESS = click.option("--address", default=None, envvar="EMBER_ADDRESS",
                        help="The cluster's (GCS) address; default EMBER_ADDRESS, else this machine's latest cluster.")


def _client(address: str | None) -> Any:
    from ember.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except (RuntimeError, ValueError, PermissionError, FileNotFoundError, NotImplementedError) as e:
        raise click.ClickException(str(e)) from None


def _follow(client: Any, submission_id: str) -> None:
    async def tail() -> None:
        async for text in client.tail_job_logs(submission_id):
            sys.stdout.write(text)
            sys.stdout.flush()

    _call(asyncio.run, tail())


@click.group()
def job() -> None:
    """Submit, follow, stop and list jobs."""


@job.command(context_settings={"ignore_unknown_options": True})
@_ADDRESS
@click.option("--working-dir", default=None, help="A local directory (or .zip) uploaded as the job's working_dir.")
@click.option("--runtime-env-json", default=None, help='The job\'s runtime_env as JSON, e.g. \'{"pip": ["x"]}\'.')
@click.option("--submission-id", default=None, help="The job's id (default: one is made).")
@click.option("--entrypoint-num-cpus", type=float, default=None, help="CPUs the entrypoint holds while it runs.")
@click.option("--metadata-json", default=None, help="str -> str pairs kept with the job.")
@click.option("--no-wait", is_flag=True, help="Return once submitted instead of following its logs.")
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
def submit(address: str | None, working_dir: str | None, runtime_env_json: str | None, submission_id: str | None,
           entrypoint_num_cpus: float | None, metadata_json: str | None, no_wait: bool,
           entrypoint: tuple[str, ...]) -> None:
    """Run ENTRYPOINT (after --) as a job's driver on the head node."""
    runtime_env = _json_option("--runtime-env-json", runtime_env_json) or {}
    if working_dir is not None:
        runtime_env["working_dir"] = working_dir
    metadata = _json_option("--metadata-json", metadata_json)
    client = _client(address)
    submission_id = _call(client.submit_job, entrypoint=" ".join(entrypoint), runtime_env=runtime_env or None,
                          submission_id=submission_id, entrypoint_num_cpus=entrypoint_num_cpus, metadata=metadata)
    click.echo(f"Job '{submission_id}' submitted successfully", err=True)
    if no_wait:
        click.echo(f"Follow it with `ember job logs {submission_id} --follow`; its status: "
                   f"`ember job status {submission_id}`", err=True)
        return
    _follow(client, submission_id)
    _end(client, submission_id)


def _end(client: Any, submission_id: str) -> None:
    info = _call(client.get_job_info, submission_id)
    while not info.status.is_terminal():  # (the log stream ends once the job has)
        time.sleep(0.05)
        info = _call(client.get_job_info, submission_id)
    click.echo(f"Job '{submission_id}' {info.status.value}: {info.message}", err=True)
    if info.status.value != "SUCCEEDED":
        sys.exit(1)


@job.command()
@_ADDRESS
@click.argument("submission_id")
def status(address: str | None, submission_id: str) -> None:
    """A job's status and message."""
    info = _call(_client(address).get_job_info, submission_id)
    code = f" (exit code {info.driver_exit_code})" if info.driver_exit_code is not None else ""
    click.echo(f"Job '{submission_id}': {info.status.value}{code}: {info.message}")


@job.command()
@_ADDRESS
@click.option("--follow", "-f", is_flag=True, help="Keep printing what it prints until it ends.")
@click.argument("submission_id")
def logs(address: str | None, follow: bool, submission_id: str) -> None:
    """What a job's entrypoint printed."""
    client = _client(address)
    if follow:
        _follow(client, submission_id)
    else:
        click.echo(_call(client.get_job_logs, submission_id), nl=False)


@job.command()
@_ADDRESS
@click.argument("submission_id")
def stop(address: str | None, submission_id: str) -> None:
    """End a job's processes (and its non-detached actors)."""
    stopped = _call(_client(address).stop_job, submission_id)
    click.echo(f"Job '{submission_id}' {'stopped' if stopped else 'had already ended'}")


@job.command(name="list")
@_ADDRESS
def list_jobs(address: str | None) -> None:
    """Every submitted job."""
    for info in _call(_client(address).list_jobs):
        code = "" if info.driver_exit_code is None else f" exit={info.driver_exit_code}"
        click.echo(f"{info.submission_id}  {info.status.value:<9}{code}  {info.entrypoint}")


def _json_option(name: str, value: str | None) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"{name} must be JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"{name} must be a JSON object")
    return parsed
