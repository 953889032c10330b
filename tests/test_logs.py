"""kubectl_waypoint.logs: loggers that leave `logging` unimported until a record could be shown.

Each case runs in a fresh interpreter: whether `logging` has been imported is the point.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(source: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                          timeout=60)


def test_debug_and_info_cost_no_import_and_warnings_still_reach_stderr():
    result = run_python("""
        import sys
        from kubectl_waypoint import logs
        log = logs.getLogger("kubectl_waypoint.discovery")
        log.debug("hidden %s", 1)
        log.info("hidden %s", 2)
        assert not log.isEnabledFor(logs.INFO)
        print("logging imported:", "logging" in sys.modules)
        log.warning("gateway classes unreadable; assuming %s", "istio-waypoint")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "logging imported: False\n"
    # logging's last-resort handler, as a plain logging.getLogger(...).warning(...) would have used
    assert result.stderr == "gateway classes unreadable; assuming istio-waypoint\n"


def test_once_logging_is_configured_records_name_the_line_that_logged():
    result = run_python("""
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(filename)s:%(lineno)d %(message)s")
        from kubectl_waypoint import logs
        log = logs.getLogger("kubectl_waypoint.requests")
        assert log.isEnabledFor(logs.INFO)
        log.debug("debug %d", 1)
        log.info("info %d", 2)
        logging.getLogger("kubectl_waypoint.requests").setLevel(logging.WARNING)
        log.info("dropped")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["DEBUG kubectl_waypoint.requests <string>:7 debug 1",
                                          "INFO kubectl_waypoint.requests <string>:8 info 2"]
