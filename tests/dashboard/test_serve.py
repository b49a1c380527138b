"""`leadrouter serve` serves the dashboard, its stylesheet, script and uPlot from the installed
package, behind sign-in."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.bot.test_serve import Servers, wait_until_ready
from tests.dashboard.conftest import BEARER, TOKEN


async def test_serve_serves_the_dashboard_behind_sign_in(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(tmp_path / "leads.db", extra_env={"LEADROUTER_DASHBOARD_TOKEN": TOKEN})
    await wait_until_ready(server)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/dashboard", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/dashboard/sign-in?next=%2Fdashboard"
        async with session.get(f"{server.url}/dashboard/queue.csv") as response:
            assert response.status == 401
        async with session.get(f"{server.url}/dashboard", headers=BEARER) as response:
            assert response.status == 200
            # The routing report of its (empty) database.
            assert "No lead arrived in this window." in await response.text()
        for asset in ("dashboard.js", "dashboard.css", "vendor/uplot/uPlot.iife.min.js"):
            async with session.get(f"{server.url}/dashboard/static/{asset}") as response:
                assert response.status == 200, asset
    assert TOKEN not in server.output()
