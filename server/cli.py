"""`jebol`: serve, and the admin commands. Clear messages and a non-zero exit on errors."""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from forms.errors import FormsError
from storage import app_users, projects, users
from storage import forms as form_store
from storage.blobs import BlobStoreError
from storage.errors import StorageError

from . import bootstrap, logs
from .app import Services
from .iid_report import write_iid
from .settings import Settings
from .urls import collect_url

WORKER_HEALTHCHECK_SECONDS = 60


def _services() -> Services:
    services = Services(Settings.from_env())
    services.prepare()
    return services


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a person can fix into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (FormsError, StorageError, BlobStoreError, OSError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


# h11, not httptools: httptools has no limit on a request's head (one 300 MB header grew a
# worker by 285 MB); h11 refuses heads past 64 KiB. (tests.live.LiveServer uses these too.)
HTTP_OPTIONS: dict[str, Any] = {"http": "h11", "h11_max_incomplete_event_size": 64 * 1024}


@click.group(help="JEBOL SIPERA: ODK-compatible collection server.")
def main() -> None:
    pass


@main.command(help="Set up (migrations, admin, default project, shipped forms) and serve.")
@click.option("--no-setup", is_flag=True, help="Skip the first-start steps; only serve.")
@_friendly
def serve(no_setup: bool) -> None:
    settings = Settings.from_env()
    reach = _reachable_by_phones(settings)
    if reach.url:
        # The workers read their settings from the environment, so set it there.
        os.environ["JEBOL_PUBLIC_URL"] = reach.url
        settings = Settings.from_env()
    services = Services(settings)
    services.prepare()
    if not no_setup:
        setup = bootstrap.run(services)
        _print_setup(settings, setup)
        click.echo(f"  {reach.note}\n")  # with --no-setup, stdout is the log stream alone
    services.db.dispose()
    import uvicorn

    os.environ["JEBOL_SKIP_PREPARE"] = "1"  # the workers need not migrate again
    # Our access lines (server/logs.py: request ids, no query strings) replace uvicorn's.
    uvicorn.run(
        "server.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        proxy_headers=True,
        log_config=logs.dict_config(settings.log_format),
        access_log=False,
        timeout_keep_alive=75,
        **HTTP_OPTIONS,
        # A worker imports for seconds before it answers the supervisor's health ping;
        # with uvicorn's 5 s, workers starting side by side on a busy 2-core machine were
        # killed as hung and restarted again and again.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


@dataclass(frozen=True)
class Reach:
    url: str | None  # the public URL to use instead of the default, when one was found
    note: str


def _reachable_by_phones(
    settings: Settings, environ: Mapping[str, str] | None = None, lan: str | None = None
) -> Reach:
    """The default public URL (127.0.0.1) is one no phone can reach: with no JEBOL_PUBLIC_URL
    and a server listening on every address, use this machine's LAN address instead (the
    Collect URLs and QR codes carry it), or say how to set one. `lan`: for tests."""
    environ = os.environ if environ is None else environ
    if environ.get("JEBOL_PUBLIC_URL"):
        return Reach(None, f"Public URL (JEBOL_PUBLIC_URL): {settings.public_url}")
    if settings.host not in ("0.0.0.0", "::", ""):
        return Reach(
            None,
            f"Listening on {settings.host} only: phones reach it at {settings.public_url} "
            "only if that address is theirs to reach; set JEBOL_PUBLIC_URL otherwise.",
        )
    address = lan or lan_address()
    if address is None:
        return Reach(
            None,
            f"WARNING: {settings.public_url} is this machine only: no phone can reach it. "
            "Set JEBOL_PUBLIC_URL=http://<this machine's address>:"
            f"{settings.port} (or your https domain) and start again.",
        )
    url = f"http://{address}:{settings.port}"
    return Reach(
        url,
        f"Phones on this network reach the server at {url} (this machine's LAN address; "
        "set JEBOL_PUBLIC_URL to use a domain or another address).",
    )


def lan_address() -> str | None:
    """This machine's address on its default route, or None. Connecting a UDP socket sends
    nothing: the kernel only picks the source address it would use (TEST-NET-1 here)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
    except OSError:
        return None
    parsed = ipaddress.ip_address(address)
    return None if parsed.is_loopback or parsed.is_unspecified else address


def _print_setup(settings: Settings, setup: bootstrap.Setup) -> None:
    click.echo("")
    click.echo(f"  JEBOL SIPERA is starting at {settings.public_url}/")
    if setup.admin_password:
        click.echo(f"  Admin account created: {setup.admin_email}")
        click.echo(f"  Admin password (shown only now, write it down): {setup.admin_password}")
    else:
        click.echo(f"  Admin account: {setup.admin_email}")
    click.echo(f"  Project {setup.project_id}: {settings.default_project}")
    for form_id, outcome in setup.forms:
        click.echo(f"    form {form_id}: {outcome}")
    if setup.collect_url:
        click.echo(
            f"  ODK Collect server URL for app user {setup.app_user_name!r} "
            f"(shown only now; the App users page shows it again):"
        )
        click.echo(f"    {setup.collect_url}")
    else:
        click.echo(
            f"  App user {setup.app_user_name!r}: its ODK Collect URL is on the App "
            f"users page ({settings.public_url}/p/{setup.project_id}/app-users)"
        )
    click.echo("")


@main.group(help="Publish forms.")
def form() -> None:
    pass


@form.command(
    "publish",
    help="Publish an XLSForm (.xlsx/.xls) or XForm (.xml): a new form or a "
    "new version of an existing one.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--project",
    "project_id",
    type=int,
    default=None,
    help="Project id (default: the default project).",
)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A media file the form uses (repeatable).",
)
@_friendly
def form_publish(file: Path, project_id: int | None, attach: tuple[Path, ...]) -> None:
    services = _services()
    project_id = _project_id(services, project_id)
    media = {path.name: path for path in attach}
    data = file.read_bytes()
    if file.suffix.lower() == ".xml":
        result = form_store.publish_xform(
            services.db, services.blobs, project_id, data, media=media
        )
    else:
        result = form_store.publish_xlsform(
            services.db, services.blobs, project_id, data, file.name, media=media
        )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{result.form.xml_form_id} version {result.version.version!r}: {result.outcome} "
        f"(project {project_id})"
    )


@main.group(help="App users: the identities phones use.")
def appuser() -> None:
    pass


@appuser.command("create", help="Create an app user and print its ODK Collect server URL.")
@click.argument("name")
@click.option("--project", "project_id", type=int, default=None)
@_friendly
def appuser_create(name: str, project_id: int | None) -> None:
    services = _services()
    project_id = _project_id(services, project_id)
    created = app_users.create_app_user(services.db, services.box, project_id, name)
    assert created.token is not None
    click.echo(f"App user {name!r} (id {created.app_user.id}) in project {project_id}.")
    click.echo("ODK Collect server URL:")
    click.echo(collect_url(services.settings.public_url, created.token, project_id))


@main.group(help="Web users.")
def user() -> None:
    pass


@user.command(
    "create", help="Create a web user; the password is asked for (or JEBOL_NEW_PASSWORD)."
)
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user a server administrator.")
@click.option(
    "--password",
    envvar="JEBOL_NEW_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 10 characters.",
)
@_friendly
def user_create(email: str, admin: bool, password: str) -> None:
    services = _services()
    created = users.create_user(services.db, email, password, is_admin=admin)
    click.echo(f"User {created.email} created{' (admin)' if admin else ''}.")


@user.command(
    "password",
    help="Reset a web user's password (asked for, or JEBOL_NEW_PASSWORD); "
    "every session of that user ends.",
)
@click.argument("email")
@click.option(
    "--password",
    envvar="JEBOL_NEW_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 10 characters.",
)
@_friendly
def user_password(email: str, password: str) -> None:
    services = _services()
    found = users.find_user_by_email(services.db, email)
    if found is None or found.id is None:
        raise click.ClickException(f"No user with the email {email!r}.")
    users.set_password(services.db, found.id, password)
    click.echo(f"Password of {found.email} reset; their sessions have ended.")


EXPORT_FORMATS = ("csv", "xlsx", "geojson", "media", "iid")


@main.command(
    "export",
    help="Export a form's submissions to a file, streamed as on the HTTP "
    "routes: csv (Central's CSV zip; an output named *.csv gets the root table alone), "
    "xlsx, geojson, media (a zip of the photos) or iid (the project's IID report; "
    "FORM is then ignored).",
)
@click.argument("xml_form_id", metavar="FORM")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True)
@click.option("--approved-only", is_flag=True, help="Only approved submissions.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day (UTC submission date), YYYY-MM-DD.",
)
@click.option(
    "--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Last day, included."
)
@click.option("--no-attachments", is_flag=True, help="csv: leave the media/ folder out.")
@click.option(
    "--spd",
    type=float,
    default=0.0,
    help="iid: the Pemda's SPD score (0 to 63 in the 2023 method).",
)
@click.option(
    "--jumlah",
    "count",
    type=float,
    default=None,
    help="iid: the skor jumlah inovasi (0 to 76 in the 2023 method, which gives no rule for "
    "it; left out: 0, or the edition's rule).",
)
@click.option(
    "--draft",
    is_flag=True,
    help="iid: also count evidence not reviewed yet (a draft; never rejected evidence).",
)
@click.option(
    "--project",
    "project_id",
    type=int,
    default=None,
    help="Project id (default: the default project).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write (default: the export's own name, here).",
)
@_friendly
def export(
    xml_form_id: str,
    fmt: str,
    approved_only: bool,
    since: Any,
    until: Any,
    no_attachments: bool,
    spd: float,
    count: float | None,
    draft: bool,
    project_id: int | None,
    output: Path | None,
) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from storage import exports

    services = _services()
    project_id = _project_id(services, project_id)
    if fmt == "iid":
        _export_iid(
            services,
            project_id,
            output,
            "draft" if draft else "approved",
            spd,
            count,
            since.date() if since else None,
            until.date() if until else None,
        )
        return
    kind = (
        "csv"
        if fmt == "csv" and output is not None and output.suffix == ".csv"
        else "csv.zip"
        if fmt == "csv"
        else fmt
    )
    filters = exports.ExportFilters.of_days(
        since.date() if since else None,
        until.date() if until else None,
        approved_only=approved_only,
    )
    options = exports.ExportOptions(kind, filters, attachments=not no_attachments)
    source = exports.get_source(services.db, project_id, xml_form_id)
    total = exports.count_rows(
        services.db, source.form, exports.filters_for(options), source.schema
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(xml_form_id, total=total)
        result = exports.open_export(
            services.db,
            services.blobs,
            project_id,
            xml_form_id,
            options,
            tmp_dir=services.settings.tmp_dir,
            progress=lambda n: bar.advance(task, n),
            zone=services.settings.clock.zone,
        )
        target = output or Path(result.filename)
        partial = target.with_name(f".{target.name}.part")
        try:
            with open(partial, "wb") as out:
                for chunk in result.chunks:
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(
        f"{total} submission(s) of {xml_form_id} -> {target} ({target.stat().st_size} bytes)"
    )


def _export_iid(
    services: Services,
    project_id: int,
    output: Path | None,
    mode: str,
    spd: float,
    count: float | None,
    since: Any,
    until: Any,
) -> None:
    target = output or Path(f"iid-{project_id}.xlsx")
    report = write_iid(
        services, project_id, target, mode=mode, spd=spd, count=count, since=since, until=until
    )
    click.echo(
        f"IID report of project {project_id} -> {target}: SID {report.sid:g}, "
        f"index {report.index:g} ({report.band})"
    )


@main.command(
    "gc",
    help="Remove orphan blobs (stored by an upload that never recorded them: the "
    "server killed, the database gone) and stale upload spool files. Safe beside a "
    "running server: anything newer than the grace period is kept.",
)
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Keep what is newer: an upload in flight stores its files before its row.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@_friendly
def gc_command(grace_hours: float, dry_run: bool) -> None:
    from datetime import timedelta

    from storage import gc

    services = _services()
    report = gc.collect(
        services.db,
        services.blobs,
        grace=timedelta(hours=grace_hours),
        dry_run=dry_run,
        spool_dir=Path(services.settings.tmp_dir),
    )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"blobs: {report.scanned} scanned, {report.referenced} recorded, {report.recent} "
        f"newer than {grace_hours:g} h kept"
    )
    click.echo(f"orphan blobs {verb}: {report.removed} ({report.removed_bytes} bytes)")
    click.echo(f"upload spool files {verb}: {report.spool_removed} ({report.spool_bytes} bytes)")


@main.command(
    help="Back up the embedded default (SQLite database, blob folder, secret key) to "
    "FILE.tar (or .tar.gz) or a new folder; safe while the server runs."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="FILE.tar, FILE.tar.gz or a new folder.",
)
@_friendly
def backup(output: Path) -> None:
    from storage import backup as backups

    settings = _embedded(Settings.from_env())
    summary = backups.backup(
        settings.database_url,
        Path(settings.blob_dir),
        Path(settings.data_dir) / "secret.key",
        output,
    )
    _warn_missing(summary.missing)
    click.echo(
        f"{summary.submissions} submission(s), {summary.files} file(s), "
        f"{summary.bytes} bytes of blobs -> {output}"
    )


@main.command(
    help="Restore a backup made by `jebol backup` into the configured data folder. "
    "Stop the server first."
)
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the data that is there.")
@_friendly
def restore(source: Path, force: bool) -> None:
    from storage import backup as backups

    settings = _embedded(Settings.from_env())
    summary = backups.restore(
        source,
        settings.database_url,
        Path(settings.blob_dir),
        Path(settings.data_dir) / "secret.key",
        force=force,
    )
    _warn_missing(summary.missing)
    click.echo(
        f"Restored {summary.submissions} submission(s), {summary.files} file(s) (every "
        f"SHA-256 checked) into {settings.data_dir}. Start the server with `jebol serve`."
    )


def _embedded(settings: Settings) -> Settings:
    if settings.s3_endpoint:
        raise click.ClickException(
            "`jebol backup` and `jebol restore` cover the embedded "
            "default (SQLite + a blob folder). With S3 (and PostgreSQL) "
            'use `mc mirror` and pg_dump (README, "Backups").'
        )
    return settings


def _warn_missing(missing: list[str]) -> None:
    if missing:
        click.echo(
            f"warning: {len(missing)} blob(s) the database names are not in the blob "
            f"folder (lost before this backup?): {', '.join(missing[:5])}",
            err=True,
        )


@main.group(help="Entitas (entity lists): inovasi. / Entities: innovations.")
def entities() -> None:
    pass


@entities.command(
    "link",
    help="Tautkan nama inovasi yang diketik di pengiriman lama ke entitas inovasi OPD yang "
    "sama. / Link the innovation names typed in older submissions to the innovation of the "
    "same OPD; names matching none or several are listed for a supervisor.",
)
@click.option(
    "--project",
    "project_id",
    type=int,
    default=None,
    help="Project id (default: the default project).",
)
@click.option("--dry-run", is_flag=True, help="Hanya laporkan; tidak menautkan. / Link nothing.")
@_friendly
def entities_link(project_id: int | None, dry_run: bool) -> None:
    from storage import entity_links

    services = _services()
    project_id = _project_id(services, project_id)
    report = entity_links.link_typed_names(services.db, project_id, dry_run=dry_run)
    linked = "akan ditautkan (uji coba)" if dry_run else "ditautkan"
    click.echo(f"Proyek {project_id}: {report.scanned} kiriman diperiksa, {report.names} nama.")
    click.echo(f"  {report.matched} nama {linked}")
    click.echo(f"  {report.settled} nama sudah tertaut sebelumnya")
    click.echo(f"  {len(report.unmatched)} nama belum tertaut")
    for row in report.unmatched:
        candidates = (
            "beberapa calon: " + "; ".join(f"{c.label} ({c.uuid})" for c in row.candidates)
            if row.candidates
            else "tidak ada inovasi dengan nama ini"
        )
        click.echo(
            f"    kiriman {row.submission_id} ({row.xml_form_id}, {row.instance_id}) "
            f"OPD {row.opd or '-'}: {row.name!r} - {candidates}"
        )
    if report.unmatched:
        click.echo(
            f"Pilih inovasinya di halaman Inovasi: {services.settings.public_url}"
            f"/p/{project_id}/inovasi"
        )


@entities.command(
    "backlog",
    help="Terapkan pembaruan entitas luring yang tertahan lebih dari 5 hari. / Apply the "
    "offline entity updates held for more than 5 days because an earlier update of the same "
    "phone never arrived (run it daily, e.g. from cron).",
)
@click.option("--all", "force_all", is_flag=True, help="Everything held now, whatever its age.")
@_friendly
def entities_backlog(force_all: bool) -> None:
    from storage import entity_submissions

    services = _services()
    with services.db.transaction() as tx:
        applied = entity_submissions.process_backlog(tx, force_all=force_all)
    click.echo(f"{applied} pembaruan tertahan diterapkan. / {applied} held updates applied.")


def _project_id(services: Services, project_id: int | None) -> int:
    if project_id is not None:
        projects.get_project(services.db, project_id)  # raises NotFound with a clear message
        return project_id
    project = projects.find_project_by_name(services.db, services.settings.default_project)
    if project is None:
        raise click.ClickException(
            "No default project yet: run `jebol serve` once, or pass --project."
        )
    return project.id


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
