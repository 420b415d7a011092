"""Logging set-up: readable lines on a console, one JSON object per line for collectors.

Records may carry ``run_id`` (``log.info(..., extra={"run_id": ...})``), and every record
written while a service handles a run's record gets ``run_id`` and ``trace_id`` from the run's
scope (`oriole.telemetry.log_context`); the JSON format puts them in their own fields so logs
can be filtered by run and joined with its trace.

Every record that reaches Oriole's handler, from any logger at any level, passes through
:class:`RedactingFilter` first: a library that logs a URL with credentials, or an exception
whose text echoes a key, cannot leak it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from oriole.environment.settings import Settings, secret_values
from oriole.redaction import Redactor
from oriole.telemetry.log_context import RunContextFilter

#: Libraries that log every request URL (httpx at INFO, with userinfo) or connection chatter;
#: their warnings and errors are kept.
QUIET_LIBRARIES = ("aiokafka", "httpx", "httpcore", "botocore", "urllib3")

_exception_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message, exception and stack text through a redactor.

    The message is formatted here (``msg % args``) and the args dropped, so that no handler
    formats the raw values again; ``exc_text`` is filled in redacted, which formatters use
    instead of formatting ``exc_info`` themselves.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template, never the args
            message = str(record.msg)
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class RepeatFilter(logging.Filter):
    """Lets each message template of the noisy libraries through once per ``window`` seconds.

    With its broker gone, aiokafka logs the same connection error many times a second for
    as long as the outage lasts (about 190 lines/s were seen); one line per template and
    window, with the count of those held back, says the same.
    """

    def __init__(self, window: float = 30.0, prefixes: tuple[str, ...] = QUIET_LIBRARIES) -> None:
        super().__init__()
        self.window = window
        self.prefixes = prefixes
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        shown_at, held = self._last.get(key, (float("-inf"), 0))
        if record.created - shown_at < self.window:
            self._last[key] = (shown_at, held + 1)
            return False
        self._last[key] = (record.created, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:.0f} s)"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("run_id", "trace_id"):
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    handler.addFilter(RunContextFilter())
    handler.addFilter(RedactingFilter(Redactor(secret_values(settings))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiokafka is chatty at INFO about group membership; httpx logs every request URL at INFO.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
