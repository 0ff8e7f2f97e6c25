"""The `xgenerator` command: parse, configure, call into the library."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from xgenerator.cli.client import register
from xgenerator.errors import ConfigurationError
from xgenerator.settings import Settings, load_settings

cli = typer.Typer(
    help="XGenerator: train, track and serve XGBoost models asynchronously.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None


def _migrate(settings: Settings) -> None:
    from xgenerator.db.engine import make_engine
    from xgenerator.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


# Live job streams never end by themselves while a job runs: on shutdown, give requests this
# long, then close what is left (stream clients reconnect with Last-Event-ID elsewhere).
SHUTDOWN_GRACE_S = 5

Host = Annotated[str, typer.Option(help="Interface to listen on")]
Port = Annotated[int, typer.Option(help="TCP port")]


@cli.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run everything on this machine: migrate, start a private broker and worker, serve the API."""
    import uvicorn

    from xgenerator.api.app import create_app
    from xgenerator.embedded import Embedded

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _migrate(settings)
    embedded = Embedded(settings) if settings.embedded else None
    try:
        if embedded is not None:
            settings = embedded.start()
            _resend_queued(settings)
        typer.secho(f"XGenerator on http://{host}:{port}  (docs at /docs)", fg="green")
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level="info",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            # X-Forwarded-For names the client only when a configured proxy sent it (uvicorn
            # trusts it from 127.0.0.1 by default: anyone on the host chose their address).
            proxy_headers=bool(settings.trusted_proxy_list),
            forwarded_allow_ips=settings.trusted_proxy_list or None,
        )
    finally:
        if embedded is not None:
            embedded.stop()


def _resend_queued(settings: Settings) -> None:
    """The private broker starts empty: jobs left queued by the last run get their task again."""
    from xgenerator.context import build_context
    from xgenerator.jobs.reconciler import reconcile

    context = build_context(settings)
    try:
        reconcile(context, resend_all=True)
    finally:
        context.close()


@cli.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
) -> None:
    """Serve the API only (distributed mode: workers run elsewhere with `xgenerator worker`)."""
    import uvicorn

    settings = _settings()
    if settings.embedded:
        typer.secho(
            "`api` needs XGEN_BROKER_URL; use `serve` for embedded mode", fg="red", err=True
        )
        raise typer.Exit(2)
    uvicorn.run(
        "xgenerator.api.main:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        proxy_headers=bool(settings.trusted_proxy_list),
        forwarded_allow_ips=settings.trusted_proxy_list or None,
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: XGEN_WORKER_CONCURRENCY)")
    ] = None,
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues")
    ] = "train,predict,process,maintenance",
    hostname: Annotated[str | None, typer.Option(help="Worker name (default: celery@host)")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    beat: Annotated[
        bool,
        typer.Option(
            "--beat",
            help="Also submit the retention cleanup on a timer (embedded mode; in "
            "Redis mode run one `xgenerator beat` instead)",
        ),
    ] = False,
) -> None:
    """Run a Celery worker that executes jobs (needs XGEN_BROKER_URL)."""
    settings = _settings()
    if settings.embedded:
        typer.secho("`worker` needs XGEN_BROKER_URL", fg="red", err=True)
        raise typer.Exit(2)
    # OpenMP keeps its default (spinning) waits: a lone training runs 1.2-3x faster than with
    # OMP_WAIT_POLICY=PASSIVE, and trainings running at once share the cores through the
    # worker's thread budget instead of oversubscribing them (jobs/threads.py).
    from xgenerator.tasks.worker import main

    argv = [
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency or settings.worker_concurrency),
        "--queues",
        queues,
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        loglevel,
    ]
    if hostname:
        argv += ["--hostname", hostname]
    main(settings, argv, beat=beat)


@cli.command(name="beat")
def beat_command(loglevel: Annotated[str, typer.Option()] = "INFO") -> None:
    """Run Celery beat: asks a worker to submit the retention cleanup every
    XGEN_CLEANUP_INTERVAL_S (Redis mode; run exactly one, though two do no harm)."""
    settings = _settings()
    if settings.embedded:
        typer.secho(
            "`beat` needs XGEN_BROKER_URL; in embedded mode the worker runs the timer",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    from xgenerator.tasks.app import make_celery

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    make_celery(settings).start(argv=["beat", "--loglevel", loglevel])


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = _settings()
    _migrate(settings)
    typer.echo("database is up to date")


register(cli)  # the client commands: login, datasets, train, jobs, models, demo


def main() -> None:
    cli()
