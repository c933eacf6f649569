"""Browser tests: Debian's Chromium driven by Playwright (sync API) against a real server.

Fixtures and helpers (other browser test modules reuse them):

- ``e2e_server``: a real ``appliance serve`` (one worker) over the ``home`` fixture; ask for
  ``personas`` too to have the accounts.
- ``browser_page``: a fresh Playwright page (own cookies) in the session's Chromium. Every
  request it makes goes through a guard: a request to any host other than the loopback one is
  refused and recorded, and every HTML document is checked for inline scripts (``<script>``
  without ``src``, ``on...=`` handler attributes, ``javascript:`` links); a Content Security
  Policy violation reported in the console is recorded too. A test whose page did any of this
  fails, even when its own assertions passed.
- ``sign_in(page, server, email, password)``: sign in through the /login form.
- ``url(server, path)``: the absolute URL of ``path`` on the server.

Chromium is Debian's (``make test`` installs it); without it these tests are skipped, saying why.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer, start_server

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


class _InlineScriptFinder(HTMLParser):
    """Names every inline script of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and not names.get("src"):
            self.found.append(f"<script> without src at line {self.getpos()[0]}")
        for name, value in names.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> handler at line {self.getpos()[0]}")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}='javascript:...'> at line {self.getpos()[0]}")


def inline_scripts(html: str) -> list[str]:
    """What in ``html`` is an inline script (empty when none)."""
    finder = _InlineScriptFinder()
    finder.feed(html)
    finder.close()
    return finder.found


@dataclass
class PageGuard:
    """What a page did that no page of the appliance may do."""

    violations: list[str] = field(default_factory=list)
    documents: int = 0

    def route(self, route) -> None:
        request = route.request
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK_HOSTS:
            self.violations.append(f"requested another host: {request.method} {request.url}")
            route.abort()
            return
        if request.resource_type != "document":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        if "html" in response.headers.get("content-type", ""):
            self.documents += 1
            for problem in inline_scripts(response.text()):
                self.violations.append(f"{request.url}: inline script: {problem}")
        route.fulfill(response=response)

    def console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.violations.append(f"CSP violation: {message.text}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    outcome = yield
    guard: PageGuard | None = getattr(item, "_page_guard", None)
    if guard is not None and guard.violations and outcome.excinfo is None:
        outcome.force_exception(
            AssertionError("the page broke the no-inline-script / no-other-host rule:\n" + "\n".join(guard.violations))
        )


@pytest.fixture(scope="session")
def chromium():
    """The session's Chromium (Debian's), launched once."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (`make browser` installs it); browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, request: pytest.FixtureRequest) -> Iterator:
    """A fresh page (its own cookies) whose every request and document is checked by a :class:`PageGuard`."""
    guard = PageGuard()
    request.node._page_guard = guard
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", guard.route)
    page = context.new_page()
    page.on("console", guard.console)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def e2e_server(home: Path) -> Iterator[LiveServer]:
    """A real server (one worker) over the ``home`` fixture."""
    server = start_server(home, workers=1)
    try:
        yield server
    finally:
        server.stop()


def url(server: LiveServer, path: str) -> str:
    return server.url + path.lstrip("/")


def sign_in(page, server: LiveServer, email: str, password: str) -> None:
    """Sign in through the /login form and wait for the page it leads to."""
    page.goto(url(server, "/login"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login" not in page.url, f"sign-in of {email} failed: {page.url}"
