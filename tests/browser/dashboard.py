"""The dashboard in headless Chromium, driven by Playwright (run by the Rust test
`ui_browser`, which starts the server and the simulated devices).

Environment: FLEET_UI_URL, FLEET_UI_ADMIN_TOKEN, FLEET_UI_READONLY_TOKEN, FLEET_UI_DEVICES,
FLEET_UI_ENVELOPE and FLEET_UI_FILE (a signed release to upload), FLEET_UI_SCREENSHOTS (a
folder), FLEET_UI_CHROMIUM (the browser binary). Exits non-zero on the first failed check.
"""

import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

URL = os.environ["FLEET_UI_URL"].rstrip("/")
ADMIN = os.environ["FLEET_UI_ADMIN_TOKEN"]
READER = os.environ["FLEET_UI_READONLY_TOKEN"]
DEVICES = int(os.environ["FLEET_UI_DEVICES"])
ENVELOPE = os.environ["FLEET_UI_ENVELOPE"]
FILE = os.environ["FLEET_UI_FILE"]
SHOTS = os.environ["FLEET_UI_SCREENSHOTS"]
CHROMIUM = os.environ.get("FLEET_UI_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CONTROLS = re.compile(r"^(Pause|Resume|Cancel)$")

expect.set_options(timeout=20_000)


def step(text):
    print(f"- {text}", flush=True)


def shot(page, name):
    path = os.path.join(SHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    print(f"  screenshot {path}", flush=True)


def watch(page, requests, problems):
    """Records every URL the page asks for, console errors (CSP violations among them)
    and uncaught exceptions."""
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def sign_in(page, token, scope):
    page.goto(URL + "/")
    expect(page).to_have_url(URL + "/ui/")
    form = page.locator("#sign-in-form")
    expect(form).to_be_visible()
    form.locator('input[name="token"]').fill(token)
    form.locator('button[type="submit"]').click()
    expect(page.locator("#who")).to_contain_text(f"({scope})")
    expect(page.locator("#sign-in")).to_be_hidden()


def controls(page):
    return page.get_by_role("button", name=CONTROLS)


def main():
    requests, problems = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        admin_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        page = admin_ctx.new_page()
        watch(page, requests, problems)

        step("/ redirects to /ui/ and asks for a token")
        page.goto(URL + "/")
        expect(page).to_have_url(URL + "/ui/")
        expect(page.locator('#sign-in-form input[name="token"]')).to_be_visible()
        expect(page.locator("#nav")).to_be_hidden()
        shot(page, "01-sign-in")

        step("a wrong token is refused")
        page.locator('input[name="token"]').fill("not-a-token")
        page.locator('#sign-in-form button[type="submit"]').click()
        expect(page.locator("#sign-in-error")).to_contain_text("not a valid operator token")
        assert all("401" in p for p in problems), problems
        problems.clear()  # the refusal's own console line, expected

        step("sign in with the admin token: the fleet overview")
        sign_in(page, ADMIN, "admin")
        expect(page.locator(".stat .value").first).to_have_text(str(DEVICES))
        expect(page.locator('[role="progressbar"][aria-label="devices online"]')).to_have_attribute(
            "aria-valuenow", "100")
        expect(page.locator("svg.chart")).to_be_visible()
        shot(page, "02-fleet")

        step("upload a signed release with the form, with a progress bar")
        page.goto(URL + "/ui/artifacts")
        page.locator('#upload input[name="envelope"]').set_input_files(ENVELOPE)
        page.locator('#upload input[name="file"]').set_input_files(FILE)
        page.locator('#upload button[type="submit"]').click()
        expect(page.locator('[role="progressbar"][aria-label="upload progress"]')).to_have_attribute(
            "aria-valuenow", "100")
        expect(page.locator("#upload [role=status]")).to_contain_text("Uploaded gateway-os 2.0.0")
        expect(page.get_by_role("cell", name="2.0.0", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Release keys")).to_be_visible()
        expect(page.get_by_role("cell", name="viewer", exact=True)).to_be_visible()
        shot(page, "03-artifacts")

        step("a dry run previews the targets, then the form creates the rollout")
        page.goto(URL + "/ui/rollouts")
        form = page.locator("#create-rollout")
        form.locator("#artifact").select_option(label="gateway-os 2.0.0 (sim)")
        form.locator('input[name="hardware"]').fill("sim")
        form.locator('input[name="waves"]').fill("25, 100")
        form.locator('select[name="wave_gate"]').select_option("manual")
        form.get_by_role("button", name="Preview targets").click()
        expect(form.locator(".plan-summary")).to_contain_text(f"{DEVICES} target devices")
        shot(page, "04-rollouts-form")
        page.evaluate("window.__sameDocument = true")
        form.get_by_role("button", name="Create rollout").click()
        expect(page).to_have_url(re.compile(r"/ui/rollouts/[^/]+$"))
        rollout_url = page.url
        overall = page.locator('[role="progressbar"][aria-label="rollout progress"]')
        expect(overall).to_be_visible()

        step("pause it: Resume appears, the bar stops short of 100 %")
        page.get_by_role("button", name="Pause", exact=True).click()
        expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
        expect(page.locator(".status")).to_contain_text("paused: operator")
        paused_at = int(overall.get_attribute("aria-valuenow"))
        assert paused_at < 100, f"the rollout finished before the pause landed ({paused_at} %)"
        page.wait_for_timeout(600)
        shot(page, "05-rollout-paused")

        step("a read-only token sees the same rollout with no control buttons")
        reader_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        reader = reader_ctx.new_page()
        watch(reader, requests, problems)
        sign_in(reader, READER, "read-only")
        reader.goto(rollout_url)
        expect(reader.locator('[role="progressbar"][aria-label="rollout progress"]')).to_be_visible()
        expect(reader.locator(".status")).to_contain_text("paused")
        expect(controls(reader)).to_have_count(0)
        assert reader.locator("button").filter(has_text=CONTROLS).count() == 0
        shot(reader, "06-rollout-read-only")
        reader.goto(URL + "/ui/rollouts")
        expect(reader.locator("#page h1")).to_have_text("Rollouts")
        expect(reader.locator("#create-rollout")).to_have_count(0)
        reader.goto(URL + "/ui/artifacts")
        expect(reader.locator("#page h1")).to_have_text("Artifacts")
        expect(reader.locator("#upload")).to_have_count(0)

        step("resume: the first wave finishes and the manual gate holds the second")
        page.get_by_role("button", name="Resume", exact=True).click()
        next_wave = page.get_by_role("button", name="Next wave (2 of 2)")
        expect(next_wave).to_be_visible(timeout=120_000)
        expect(page.locator(".status")).to_contain_text("paused: wave_gate")
        expect(page.locator('[role="progressbar"][aria-label="wave 1 progress"]')).to_have_attribute(
            "aria-valuenow", "100")
        page.wait_for_timeout(600)
        shot(page, "06b-rollout-wave-gate")

        step("next wave: the bars follow the event stream to 100 % without a reload")
        next_wave.click()
        expect(overall).to_have_attribute("aria-valuenow", "100", timeout=180_000)
        expect(page.locator(".status")).to_contain_text("completed")
        waves = page.locator('[role="progressbar"][aria-label^="wave "]')
        expect(waves).to_have_count(2)
        for i in range(2):
            expect(waves.nth(i)).to_have_attribute("aria-valuenow", "100")
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        expect(controls(page)).to_have_count(0)
        expect(page.get_by_role("cell", name="succeeded", exact=True).first).to_be_visible()
        page.wait_for_timeout(600)  # the bars' width transition
        shot(page, "07-rollout-completed")
        # The top of that page, small, for the README (docs/dashboard.png).
        page.screenshot(path=os.path.join(SHOTS, "readme-rollout.png"),
                        clip={"x": 0, "y": 0, "width": 1280, "height": 690})

        step("the rollouts list shows it complete")
        page.goto(URL + "/ui/rollouts")
        expect(page.locator('[role="progressbar"][aria-label^="progress of "]')).to_have_attribute(
            "aria-valuenow", "100")
        shot(page, "08-rollouts")

        step("the device table searches and pages; a device page shows its history")
        page.goto(URL + "/ui/devices")
        expect(page.locator(".pager")).to_contain_text(f"{DEVICES} of {DEVICES} devices")
        shot(page, "09-devices")
        page.get_by_role("searchbox").fill("sim-1")
        expect(page.locator(".pager")).to_contain_text(f"of {DEVICES} devices")
        page.get_by_role("link", name="sim-1", exact=True).click()
        expect(page.locator("#page h1")).to_have_text("Device sim-1")
        expect(page.locator("dl.facts")).to_contain_text("gateway-os 2.0.0")
        expect(page.locator("table").first).to_contain_text("succeeded")
        shot(page, "10-device")

        step("the overview counts the new version")
        page.goto(URL + "/ui/")
        expect(page.get_by_role("cell", name="gateway-os 2.0.0", exact=True)).to_be_visible()
        shot(page, "11-fleet-after")

        step("nothing from another origin, no token in any URL, no console errors")
        for url in requests:
            assert url.startswith(URL + "/"), f"request to another origin: {url}"
            assert ADMIN not in url and READER not in url, f"token in a URL: {url}"
        assert not problems, "\n".join(problems)
        browser.close()
    print("dashboard: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the Rust test shows this output
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise
