"""Serve the se_app web UI: ``python app.py`` (binds 127.0.0.1:7860 unless GRADIO_SERVER_NAME/PORT say otherwise)."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: must be set before gradio is imported

import atexit  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from se_app import uifiles  # noqa: E402

uifiles.private_gradio_cache()  # this process's own upload cache, removed at exit: before gradio is imported

from se_app import ui  # noqa: E402


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests
    ui.preload()  # load the default model once, before the first request (logs a note when none is registered)
    demo = ui.build_demo()
    atexit.register(uifiles.cleanup_temp)  # this process's request folders
    atexit.register(uifiles.remove_gradio_cache)  # and its upload cache (trimmed to a cap while it runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that atexit also runs on SIGTERM
    port = os.environ.get("GRADIO_SERVER_PORT")
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(port) if port else None, max_file_size=ui.MAX_UPLOAD)


if __name__ == "__main__":
    main()
