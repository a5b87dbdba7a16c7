"""Logging of ``gis-service serve``: one JSON object per line on stderr, so that the request log (logger
``gis_service.access``, written by :mod:`gis_service.api.middleware`) and errors with their request id can be
read by people and by log collectors alike."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonLines(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, plus the request's fields when the message is one (the access
    log writes JSON) and the traceback under ``error`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name}
        message = record.getMessage()
        if message.startswith("{"):
            try:
                entry.update(json.loads(message))
            except ValueError:
                entry["message"] = message
        else:
            entry["message"] = message
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(level: str) -> dict:
    """A ``logging.config.dictConfig`` for uvicorn and the service: everything as JSON lines on stderr."""
    level = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLines}},
        "handlers": {"stderr": handler},
        "loggers": {
            "gis_service": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
        },
    }
