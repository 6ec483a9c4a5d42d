"""
`srdiff demo` as visitors meet it: the server runs in a subprocess on 127.0.0.1 with a tiny saved model, and is
called through its `upscale` API with `gradio_client` and through the page in headless Chromium (selenium).

SRDIFF_DEMO_MODEL=bicubic serves that model for the browser test instead (a meaningful screenshot), and
SRDIFF_UPDATE_SCREENSHOT=1 writes the screenshot to docs/demo_screenshot.png.
"""

import contextlib
import io
import os
import re
import runpy
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import srdiff_diffusers
from srdiff_diffusers.cli import main

from conftest import REPO_ROOT, tiny_pipeline

try:
    import gradio_client
    import gradio  # noqa: F401
except ImportError:
    gradio_client = None
NO_GRADIO = 'the web demo needs the demo extra: pip install "srdiff-diffusers[demo]"'

STEPS = 2
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def local_calls_bypass_proxies():
    # A proxy set for the package registries must not receive the calls to 127.0.0.1 (urllib, httpx, chromedriver).
    with pytest.MonkeyPatch.context() as patch:
        for name in ("NO_PROXY", "no_proxy"):
            patch.setenv(name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1", "localhost"])))
        yield


@contextlib.contextmanager
def demo_server(model: str, log_path: Path, threads: int = 1):
    """`srdiff demo --model MODEL` on a free port of 127.0.0.1, until the block ends (killed if it must be)."""
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS=str(threads))
    # The code under test, wherever it was imported from here (a checkout or an installed package).
    env["PYTHONPATH"] = os.pathsep.join([str(Path(srdiff_diffusers.__file__).parents[1]), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "srdiff_diffusers", "demo", "--model", model, "--port", str(port)]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"srdiff demo exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"srdiff demo did not answer within 120 s:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=5) as page:
                    if page.status == 200:
                        break
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_model")
    tiny_pipeline().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    if gradio_client is None:
        pytest.skip(NO_GRADIO)
    with demo_server(tiny_model, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """One good image and each kind of bad upload."""
    folder = tmp_path_factory.mktemp("uploads")
    g = np.random.default_rng(0)
    names = ["good.png", "not_an_image.png", "truncated.png", "bomb.png", "one_pixel.png", "too_large.png"]
    paths = {name: folder / name for name in names + ["sixteen_bit.png", "cmyk.jpg", "<b>markup.png"]}
    PIL.Image.fromarray(g.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths["good.png"])
    paths["not_an_image.png"].write_text("a text file with an image's name")
    paths["<b>markup.png"].write_text("a file name that is HTML")
    encoded = io.BytesIO()
    PIL.Image.fromarray(g.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(encoded, format="PNG")
    paths["truncated.png"].write_bytes(encoded.getvalue()[: len(encoded.getvalue()) // 2])
    # 15000x15000 one-bit pixels: 27 kB on disk, 225 megapixels decoded (over twice PIL's bomb limit).
    PIL.Image.new("1", (15000, 15000)).save(paths["bomb.png"])
    PIL.Image.new("RGB", (1, 1), (200, 30, 30)).save(paths["one_pixel.png"])
    PIL.Image.new("RGB", (1000, 800)).save(paths["too_large.png"])  # over the default 768x768 pixels
    PIL.Image.fromarray(g.integers(0, 65536, (16, 20), dtype=np.uint16)).save(paths["sixteen_bit.png"])
    PIL.Image.fromarray(g.integers(0, 256, (16, 20, 4), dtype=np.uint8), mode="CMYK").save(paths["cmyk.jpg"])
    return paths


def upscale(client, image, timeout=60, **settings):
    """The `upscale` endpoint: (before, after, gallery, png path, status)."""
    settings = {"steps": STEPS, **settings}
    job = client.submit(gradio_client.handle_file(str(image)), api_name="/upscale", **settings)
    (before, after), gallery, png, status = job.result(timeout=timeout)
    return before, after, gallery, png, status


def pixels(path) -> np.ndarray:
    return np.asarray(PIL.Image.open(path))


# ---------------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------------


def test_without_gradio_one_line_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails as if it were not installed
    for name in [name for name in sys.modules if name.startswith("srdiff_diffusers.demo")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["demo"]) != 0  # the CLI's user-error status, not a traceback
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and 'pip install "srdiff-diffusers[demo]"' in error


@pytest.mark.parametrize("option", ["--concurrency", "--max-pixels", "--max-samples", "--port"])
def test_bad_option_is_one_line(option, capsys):
    assert main(["demo", option, "0"]) != 0
    assert f"srdiff demo: error: {option} must be at least 1, got 0" in capsys.readouterr().err


def test_wrong_model_fails_at_start_up(tmp_path, capsys, monkeypatch):
    if gradio_client is None:
        pytest.skip(NO_GRADIO)
    import srdiff_diffusers.demo

    def no_launch(*args, **kwargs):
        raise AssertionError("srdiff demo started serving with a missing model")

    monkeypatch.setattr(srdiff_diffusers.demo, "launch", no_launch)  # a regression must fail here, not serve forever
    assert main(["demo", "--model", str(tmp_path / "missing"), "--device", "cpu"]) != 0
    assert "no such model folder" in capsys.readouterr().err


def test_space_folder_runs_as_is():
    if gradio_client is None:
        pytest.skip(NO_GRADIO)
    import gradio

    space = REPO_ROOT / "space"
    front_matter = (space / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front_matter.strip().splitlines())
    assert fields["sdk"] == "gradio" and (space / fields["app_file"]).is_file()
    assert fields["sdk_version"].split(".")[0] == gradio.__version__.split(".")[0]  # the Gradio it was tested with
    assert "srdiff-diffusers[demo]" in (space / "requirements.txt").read_text().splitlines()
    demo = runpy.run_path(str(space / fields["app_file"]), run_name="space_app")["demo"]  # built, not launched
    assert isinstance(demo, gradio.Blocks)
    assert "upscale" in [fn.api_name for fn in demo.fns.values()]


# ---------------------------------------------------------------------------------------------------------------
# the API
# ---------------------------------------------------------------------------------------------------------------


def test_upscale_endpoint_gives_4x_and_is_seeded(client, files):
    before, after, gallery, png, status = upscale(client, files["good.png"], seed=3)
    assert PIL.Image.open(png).size == (128, 96)
    assert PIL.Image.open(after).size == PIL.Image.open(before).size == (128, 96)
    assert "32x24 -> 128x96" in status and "seed 3" in status
    assert gallery["visible"] is False  # one sample: no gallery

    same = upscale(client, files["good.png"], seed=3)[3]
    other = upscale(client, files["good.png"], seed=4)[3]
    np.testing.assert_array_equal(pixels(same), pixels(png))
    assert np.abs(pixels(other).astype(int) - pixels(png)).mean() > 1


def test_temperature_zero_makes_ddim_ignore_the_seed(client, files):
    _, _, _, png, status = upscale(client, files["good.png"], seed=3, temperature=0)
    assert "temperature 0," in status
    other = upscale(client, files["good.png"], seed=4, temperature=0)[3]
    np.testing.assert_array_equal(pixels(other), pixels(png))  # x_T = 0 and DDIM (eta 0) adds no noise
    at_one = upscale(client, files["good.png"], seed=3)[3]
    assert np.abs(pixels(at_one).astype(int) - pixels(png)).mean() > 1


def test_samples_gallery_and_mean(client, files):
    _, _, gallery, png, status = upscale(client, files["good.png"], samples=3, show_mean=True)
    assert gallery["visible"] is True and len(gallery["value"]) == 3
    samples = np.stack([pixels(item["image"]).astype(float) for item in gallery["value"]])
    assert Path(png).name == "good_x4_mean.png" and "mean of 3 samples" in status
    assert np.abs(samples[0] - samples[1]).mean() > 1  # the samples differ...
    assert np.abs(pixels(png) - samples.mean(axis=0)).max() <= 0.5 + 1e-9  # ...and the PNG is their mean


def test_three_requests_at_once_are_queued_and_all_complete(client, files):
    jobs = [
        client.submit(gradio_client.handle_file(str(files["good.png"])), steps=40, seed=k, api_name="/upscale")
        for k in range(3)
    ]
    waited = set()  # the jobs seen waiting behind another (the server runs one at a time)
    deadline = time.monotonic() + 90
    while not all(job.done() for job in jobs) and time.monotonic() < deadline:
        for k, job in enumerate(jobs):
            status = job.status()
            if status.code == gradio_client.utils.Status.IN_QUEUE and status.rank:
                waited.add(k)
        time.sleep(0.02)
    results = [job.result(timeout=5) for job in jobs]
    assert all(PIL.Image.open(result[2]).size == (128, 96) for result in results)
    assert waited, "no request waited in the queue, although the demo serves one at a time"


@pytest.mark.parametrize(
    "name, message",
    [
        ("not_an_image.png", "not_an_image.png is not an image file this demo can read"),
        ("<b>markup.png", "markup.png is not an image file"),
        ("truncated.png", "truncated.png could not be decoded: the file is truncated or corrupt"),
        ("bomb.png", "possible decompression bomb"),
        ("one_pixel.png", "The image is 1x1 pixels; SRDiff needs at least 8 pixels on each side"),
        ("too_large.png", "at most 589,824 pixels (e.g. 768x768)"),
    ],
)
def test_bad_upload_gets_a_message_and_the_server_keeps_serving(client, files, name, message):
    with pytest.raises(gradio_client.exceptions.AppError, match=re.escape(message)) as error:
        upscale(client, files[name])
    if name == "too_large.png":
        assert "srdiff demo --max-pixels N" in str(error.value)  # how to raise the limit
    assert "<b>" not in str(error.value)  # messages are rendered as HTML: a file name must not become markup
    assert PIL.Image.open(upscale(client, files["good.png"])[3]).size == (128, 96)


def test_cmyk_and_sixteen_bit_are_converted_and_said_so(client, files):
    _, after, _, png, status = upscale(client, files["cmyk.jpg"])
    assert PIL.Image.open(png).mode == "RGB" and "Converted from CMYK to RGB" in status

    _, after, _, png, status = upscale(client, files["sixteen_bit.png"])
    assert "16-bit gray image" in status
    assert PIL.Image.open(png).mode == "I;16" and PIL.Image.open(png).size == (80, 64)  # the download keeps 16 bits
    assert pixels(png).max() > 255  # values really use 16 bits, not an 8-bit image stored in 16
    assert PIL.Image.open(after).mode in ("RGB", "L")  # the page shows 8 bits


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": 0}, "Steps must be a whole number at least 1"),
        ({"steps": 101}, "Steps must be at most 100"),
        ({"samples": 9}, "Samples must be a whole number from 1 to 4"),
        ({"tile_size": "big"}, "Tile size"),
        ({"temperature": -0.5}, "Temperature must be a number of at least 0"),
        ({"temperature": "warm"}, "Temperature must be a number of at least 0"),
    ],
)
def test_bad_settings_get_a_message(client, files, settings, message):
    with pytest.raises(gradio_client.exceptions.AppError, match=re.escape(message)):
        upscale(client, files["good.png"], **settings)


def test_cancel_stops_between_steps(client, files, tmp_path):
    image = tmp_path / "larger.png"
    PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(image)
    job = client.submit(gradio_client.handle_file(str(image)), sampler="ddpm", steps=100, api_name="/upscale")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not job.done():
        progress = job.status().progress_data
        if progress and progress[0].index:
            break
        time.sleep(0.02)
    assert progress and progress[0].length == 100 and progress[0].unit == "steps", "no step progress was reported"
    client.predict(api_name="/cancel")
    with pytest.raises(gradio_client.exceptions.AppError, match=r"Cancelled after step \d+ of 100") as error:
        job.result(timeout=60)
    assert int(re.search(r"step (\d+)", str(error.value)).group(1)) < 100
    assert PIL.Image.open(upscale(client, files["good.png"])[3]).size == (128, 96)


# ---------------------------------------------------------------------------------------------------------------
# the page, in a real browser
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"no Chromium: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    arguments = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server"]
    for argument in arguments + ["--window-size=1400,1000"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_server(server, tmp_path_factory):
    """The server the browser test uses: the tiny model's, or one serving SRDIFF_DEMO_MODEL."""
    model = os.environ.get("SRDIFF_DEMO_MODEL")
    if not model:
        yield server
        return
    with demo_server(model, tmp_path_factory.mktemp("page_server") / "server.log", threads=2) as url:
        yield url


def body(page) -> str:
    from selenium.webdriver.common.by import By

    return page.find_element(By.TAG_NAME, "body").text


def press(page, label: str):
    from selenium.webdriver.common.by import By

    next(b for b in page.find_elements(By.TAG_NAME, "button") if b.text.strip() == label).click()


def open_and_upload(page, url: str, image: Path, estimate: str):
    """Loads the page, uploads `image` and waits for the time estimate (it shows once the upload has arrived)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page.get(url)
    WebDriverWait(page, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, "input[type=file]"))
    page.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(image))
    WebDriverWait(page, 60).until(lambda page: f"{estimate}: about" in body(page))


def test_page_upscales_an_upload_in_chromium(browser, page_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from srdiff_diffusers.commands.upscale import load_sample

    lr = load_sample("astronaut", 4)[1]  # 128x128
    upload = tmp_path / "astronaut_lr.png"
    lr.save(upload)

    open_and_upload(browser, page_server, upload, "128x128 -> 512x512")
    press(browser, "Upscale")

    def result_widths(page):
        images = page.find_elements(By.CSS_SELECTOR, "#result img")
        return [page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) for i in images]

    WebDriverWait(browser, 120).until(lambda page: result_widths(page) == [512, 512])
    assert "128x128 -> 512x512 in" in body(browser)  # the status line under the slider
    update = os.environ.get("SRDIFF_UPDATE_SCREENSHOT") == "1"
    screenshot = REPO_ROOT / "docs" / "demo_screenshot.png" if update else tmp_path / "demo_screenshot.png"
    assert browser.save_screenshot(str(screenshot))
    assert PIL.Image.open(screenshot).size[0] >= 1000


def test_page_cancel_drops_a_waiting_request(browser, server, client, files, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    open_and_upload(browser, server, files["good.png"], "32x24 -> 128x96")
    image = tmp_path / "larger.png"
    PIL.Image.fromarray(np.random.default_rng(2).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(image)
    busy = client.submit(gradio_client.handle_file(str(image)), sampler="ddpm", steps=100, api_name="/upscale")
    WebDriverWait(browser, 30).until(lambda page: busy.status().progress_data)  # another visitor's run has started
    press(browser, "Upscale")
    WebDriverWait(browser, 30).until(lambda page: "queue: 1/1" in body(page))
    press(browser, "Cancel")
    WebDriverWait(browser, 30).until(lambda page: "Cancelled." in body(page))
    assert "384x384" in busy.result(timeout=60)[3]  # the other visitor's run was not disturbed...
    time.sleep(1)
    assert "32x24 -> 128x96 in" not in body(browser)  # ...and the cancelled request never ran
    press(browser, "Upscale")
    WebDriverWait(browser, 60).until(lambda page: "32x24 -> 128x96 in" in body(page))
