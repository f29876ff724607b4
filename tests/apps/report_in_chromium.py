"""`strata report` of real training runs, opened in headless Chromium with the network cut off.

usage: report_in_chromium.py STRATA RUN_DIR WORK_DIR

Writes the report of RUN_DIR, takes a 1200x2000 screenshot of it and checks that the picture is not
blank (many distinct colours); dumps the DOM Chromium built and checks that every run's last-step
old/new/all cells (read here from the JSONL logs, independently of strata) are in it and that it holds
one <svg> per chart. Exits 77 (ctest's SKIP_RETURN_CODE) when chromium is not installed.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

from PIL import Image

WIDTH, HEIGHT = 1200, 2000


def chromium(*args):
    # --proxy-server to a closed port and an unresolvable host map: a page that tried to fetch
    # anything would fail to, and show it.
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--user-data-dir=" + os.path.join(WORK, "chromium-profile"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        sys.exit(f"chromium failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return done.stdout


def expected_from_logs(run_dir):
    """Each run's last result cells as the page prints them, and the number of charts."""
    cells, charts, runs = [], 0, 0
    for path in sorted(glob.glob(os.path.join(run_dir, "logs", "*.jsonl"))):
        runs += 1
        results, loss_steps = {}, set()
        with open(path) as log:
            for line in log:
                record = json.loads(line)
                if record["event"] == "result":
                    results[record["step"]] = record
                elif record["event"] == "train":
                    loss_steps.add(record["step"])
        charts += len(loss_steps) + (2 if results else 0)
        if results:
            last = results[max(results)]
            values = [last[f"{group}_{convention}_background"] for convention in ("with", "without")
                      for group in ("old", "new", "all")]
            cells.append("".join("<td>-</td>" if v is None else f"<td>{100 * v:.1f}</td>" for v in values))
    return cells, charts + (2 if runs > 1 else 0), runs


if __name__ == "__main__":
    strata, run_dir, WORK = sys.argv[1:4]
    if shutil.which("chromium") is None:
        print("SKIP: chromium is not installed (Debian package chromium; ./run test installs it)")
        sys.exit(77)
    os.makedirs(WORK, exist_ok=True)
    page = os.path.join(WORK, "report.html")
    subprocess.run([strata, "report", run_dir, "--output", page], check=True)
    url = "file://" + os.path.abspath(page)

    screenshot = os.path.join(WORK, "report.png")
    if os.path.exists(screenshot):
        os.remove(screenshot)
    chromium("--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}", "--screenshot=" + screenshot, url)
    image = Image.open(screenshot).convert("RGB")
    if image.size != (WIDTH, HEIGHT):
        sys.exit(f"screenshot {screenshot} is {image.size}, expected {(WIDTH, HEIGHT)}")
    colours = image.getcolors(maxcolors=WIDTH * HEIGHT)
    if len(colours) < 50:
        sys.exit(f"screenshot {screenshot} holds {len(colours)} colours: the page did not render")

    dom = chromium("--dump-dom", url)
    cells, charts, runs = expected_from_logs(run_dir)
    for row in cells:
        if row not in dom:
            sys.exit(f"the rendered page lacks the cells {row}")
    svgs = dom.count("<svg")
    if svgs != charts:
        sys.exit(f"the rendered page holds {svgs} <svg> elements, expected {charts}")
    print(f"ok: {runs} runs, {len(cells)} result rows, {svgs} charts, screenshot {image.size} with "
          f"{len(colours)} colours")
