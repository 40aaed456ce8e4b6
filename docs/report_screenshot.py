"""Regenerate docs/report.png, the README's picture of the HTML report, from a real run.

    python docs/report_screenshot.py     # needs chromium, chromium-driver, selenium; pngquant if present

It runs the project's own command on the queue family (the reference POSIX queue and one
broken twin from the gallery), writes the HTML report, opens it in headless Chromium with
the same flags as the browser self-test, opens one FAIL by a click, and saves the
page down to the end of that failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND = ["ipc-conformance", "--family", "queue", "--backend", "ipc_impls.queues:PosixMqBackend",
           "--backend", "ipc_impls.broken.queues:EXHIBITS", "-k", "posix-mq or broken-newest-first",
           "--placements", "fork", "--profile", "ci", "-n", "2"]
#: The failure shown open: a short history and minimal example.
SHOWN = "oldest_highest_priority_message_first"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1000,900")


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(HERE, "report-sample.html")  # beside the catalogue: its links resolve
        cli = os.path.join(os.path.dirname(sys.executable), COMMAND[0])
        run = subprocess.run([cli, *COMMAND[1:], "--report", page], cwd=tmp, capture_output=True, text=True)
        print(run.stdout[-400:])
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*FLAGS, f"--user-data-dir={tmp}/profile"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        try:
            driver.get("file://" + page)
            fails = [d for d in driver.find_elements(By.CSS_SELECTOR, "details.failure")
                     if d.find_element(By.CSS_SELECTOR, "summary .mark").text == "FAIL"]
            failure = next((d for d in fails if SHOWN in (d.get_attribute("id") or "")), fails[0])
            failure.find_element(By.TAG_NAME, "summary").click()
            bottom = driver.execute_script("return arguments[0].getBoundingClientRect().bottom + scrollY", failure)
            chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
            driver.set_window_size(1000, int(bottom) + int(chrome) + 16)
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.path.join(HERE, "report.png"))
        finally:
            driver.quit()
            os.unlink(page)
    shot = os.path.join(HERE, "report.png")
    if shutil.which("pngquant"):  # 256 colours: a third of the size, the same to the eye
        subprocess.run(["pngquant", "--quality", "60-90", "--speed", "1", "--force", "--output", shot, shot],
                       check=True)
    print(f"wrote {os.path.join(HERE, 'report.png')} ({os.path.getsize(os.path.join(HERE, 'report.png'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
