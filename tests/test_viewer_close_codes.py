"""The viewer's close codes are the gateway's: same names, same numbers."""

from __future__ import annotations

import json
import subprocess

from gateway import frames
from tests.viewer_static_support import NODE, NODE_TIMEOUT, STATIC, needs_node


@needs_node
def test_the_viewer_names_every_close_code_as_gateway_frames_does() -> None:
    module = (STATIC / "close_codes.js").as_uri()
    script = f'import {{ CLOSE }} from "{module}"; console.log(JSON.stringify(CLOSE));'
    shown = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=NODE_TIMEOUT,
    )
    in_js = json.loads(shown.stdout)
    in_python = {
        name.removeprefix("CLOSE_"): value
        for name, value in vars(frames).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert in_js == in_python


def test_no_viewer_module_writes_a_close_code_as_a_bare_number() -> None:
    for path in STATIC.glob("*.js"):
        if path.name == "close_codes.js":
            continue
        text = path.read_text(encoding="utf-8")
        for code in (1000, 1001, 1011, 4004, 4008, 4400):
            assert f"code === {code}" not in text, f"{path.name}: use CLOSE instead of {code}"
            assert f"{code}:" not in text, f"{path.name}: use CLOSE instead of {code}"
