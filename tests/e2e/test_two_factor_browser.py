"""Two-factor sign-in in headless Chromium: turn it on at /account, sign out, sign in with password and
code, then with a recovery code, which is refused the second time. Screenshots of the pages go to
/tmp/shots (1280 and 390 px wide) for a person to look at."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp

from tests.e2e.conftest import sign_in, url

SHOTS = Path("/tmp/shots")


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def sign_out(page) -> None:
    with page.expect_navigation():
        page.locator(".nav-row button", has_text="Sign out").click()
    assert page.url.endswith("/login")


def password_step(page, server, email: str, password: str) -> None:
    page.goto(url(server, "/login"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def code_step(page, code: str) -> None:
    page.fill("input[name=code]", code)
    with page.expect_navigation():
        page.locator("form:has(input[name=code]) button[type=submit]").first.click()


def test_two_factor_on_sign_in_with_a_code_and_with_a_recovery_code_once(e2e_server, personas, browser_page):
    page, editor = browser_page, personas.editor
    sign_in(page, e2e_server, editor.email, editor.password)
    page.goto(url(e2e_server, "/account"))
    shoot(page, "account")
    with page.expect_navigation():
        page.click("text=Set up two-factor sign-in")
    with page.expect_navigation():
        page.click("button:has-text('Set up two-factor sign-in')")
    secret = page.inner_text("#totp-secret").strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.wait_for_function("document.querySelector('img.qr-code').complete")
    assert page.evaluate("document.querySelector('img.qr-code').naturalWidth") > 100  # the QR image is drawn
    shoot(page, "two-factor-setup")
    code_step(page, pyotp.TOTP(secret).now())
    assert page.url.endswith("/account/two-factor/recovery-codes")
    codes = [c.strip() for c in page.locator("#codes code").all_inner_texts()]
    assert len(codes) == 10
    with page.expect_download() as download:
        page.click("text=Download as a text file")
    assert codes[0] in Path(download.value.path()).read_text()
    shoot(page, "recovery-codes")
    page.reload()
    assert "/account/two-factor" in page.url and codes[0] not in page.content()  # shown once
    sign_out(page)

    password_step(page, e2e_server, editor.email, editor.password)
    assert page.url.endswith("/login/code")
    shoot(page, "sign-in-code")
    code_step(page, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert page.locator(".invalid-feedback").inner_text().startswith("This code is not right")
    shoot(page, "sign-in-code-wrong")
    code_step(page, pyotp.TOTP(secret).at(time.time() + 30))  # the next step's code: the first one is spent
    assert "/login" not in page.url
    page.goto(url(e2e_server, "/account"))
    assert "Two-factor sign-in" in page.content() and page.locator("#two-factor .badge").inner_text() == "on"
    sign_out(page)

    password_step(page, e2e_server, editor.email, editor.password)
    code_step(page, codes[4])
    assert "/login" not in page.url
    sign_out(page)
    password_step(page, e2e_server, editor.email, editor.password)
    code_step(page, codes[4])
    assert page.url.endswith("/login/code")
    assert "not right, or it was used already" in page.locator(".invalid-feedback").inner_text()
