"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from geo import __version__
from geo._kernels import warm_up
from geo.boundaries import load_boundaries
from geo.engine import connect
from geo.jobs import AnalysisRunner
from geo.settings import Settings
from geo.store import Store
from geo.upload_jobs import UploadRunner, sweep_orphans
from maps.assets import FOLDERS, assets_missing
from services import errors, guards, openapi
from services.auth import ReaderDep
from services.routers import (
    analyses,
    datasets,
    derived,
    docs,
    exports,
    health,
    maps,
    ogc,
    pages,
    rasters,
    regions,
    s3,
    tiles,
    uploads,
)

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (read from the environment when omitted)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.store = Store(settings.database_url)
        if settings.admin_key is not None:
            app.state.store.accounts.bootstrap(settings.admin_key.get_secret_value())
        load_boundaries(settings)  # read (or fetch) once, before the first request
        app.state.scheduler = connect(settings.scheduler)
        interrupted = app.state.store.fail_unfinished("interrupted by a service restart")
        if interrupted:
            log.warning("marked %d interrupted analyses as failed", len(interrupted))
        app.state.runner = AnalysisRunner(
            settings, app.state.store, app.state.scheduler, settings.background_work
        )
        app.state.uploads = UploadRunner(settings, app.state.store)
        orphans = sweep_orphans(settings.upload_dir)
        if orphans:
            log.warning("deleted %d files of interrupted uploads", len(orphans))
        warm_up()  # the first analysis must not pay for kernel loading
        missing = assets_missing()
        if missing:
            log.warning("map assets missing (run 'make assets'): %s", missing)
        yield
        app.state.runner.close()
        app.state.uploads.close()
        if hasattr(app.state.scheduler, "close"):
            app.state.scheduler.close()
        app.state.store.engine.dispose()

    app = FastAPI(
        title="AlpClusters",
        version=__version__,
        description="Where, across borders, do economic activities concentrate? "
        "Hot spots and cluster catchments of NUTS regions in the Alps.",
        lifespan=lifespan,
        license_info={"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
        docs_url=None,  # served by services.routers.docs from our own copy of Swagger UI
        redoc_url=None,
    )
    errors.register(app)
    guards.install(app, settings)
    openapi.install(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    for router in (
        regions.router,
        derived.router,
        datasets.router,
        uploads.router,
        analyses.router,
        ogc.router,
        exports.router,
        pages.router,
        maps.router,
        s3.router,
        rasters.router,
    ):
        app.include_router(router, dependencies=[ReaderDep, guards.RateDep])
    # Vector tiles: a map fetches dozens per view, so they are not counted by the rate limit
    # (cheap, cached, read-only).
    app.include_router(tiles.router, dependencies=[ReaderDep])
    for name, folder in FOLDERS.items():
        app.mount(f"/static/{name}", StaticFiles(directory=folder, check_dir=False), name=name)
    return app
