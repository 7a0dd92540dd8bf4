#!/usr/bin/env python3
"""Run moto's server for KMS and S3 (the services with no local engine of AWS's own; DynamoDB
and its Streams run on AWS's DynamoDB Local, scripts/dynamodb-local.sh), with moto's
model-instance tracking turned off.

Why: every moto model class derives from ``moto.core.common_models.BaseModel``,
whose ``__new__`` appends each new instance to ``cls.instances_tracked`` (a list
created per class by the metaclass ``moto.core.base_backend.InstanceTrackerMeta``
and registered in ``moto.core.model_instances.model_data``). It exists only to
feed the server's dashboard (``GET /moto-api/data.json``), but it keeps a strong
reference to every model ever created -- every S3 key version written, every KMS
call's model copies. Those are never freed, so a long test run grows the server
without bound. ``POST /moto-api/reset`` only drops the lists, it does not stop
the growth.

We replace ``BaseModel.__new__`` with one that does not record the instance.
The only in-server readers of ``instances_tracked`` are that dashboard (now
empty) and ``S3Backend.reset`` (which disposes orphaned keys; unreferenced keys
are disposed by ``FakeKey.__del__`` instead once nothing tracks them).

Equivalent to ``moto_server -H HOST -p PORT`` otherwise (same WSGI app, same
request handler, threaded werkzeug server). Prints one ready line to stdout
once the socket is listening and exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

EXPECTED_MOTO_VERSION = "5.2.5"


def disable_instance_tracking() -> None:
    """Stop moto from keeping a reference to every model instance it creates."""
    from moto.core import common_models
    from moto.core.model_instances import reset_model_data

    def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # BaseModel's direct base is object; this is what the original did,
        # minus ``cls.instances_tracked.append(instance)``.
        return object.__new__(cls)

    # __new__ is only implicitly static when defined in a class body.
    common_models.BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]
    # Drop anything tracked during import (normally nothing).
    reset_model_data()


def check_instance_tracking_disabled() -> None:
    """Fail loudly if the patch did not take (e.g. moto changed its internals)."""
    from moto.kms.models import Key

    # copy.deepcopy() creates model copies exactly like this (cls.__new__(cls)).
    Key.__new__(Key)
    tracked = getattr(Key, "instances_tracked", [])
    if tracked:
        raise SystemExit(
            "moto launcher: disabling moto's instance tracking failed "
            f"({len(tracked)} KMS Key instance(s) tracked); "
            "check tools/moto/launcher.py against the installed moto version"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind (default 5000)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(argv)

    # moto builds some URLs (S3 presigned URLs, ...) from MOTO_PORT; set it
    # before moto is imported, as moto's own server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    import moto

    if moto.__version__ != EXPECTED_MOTO_VERSION:
        print(
            f"moto launcher: warning: moto {moto.__version__} installed, "
            f"launcher written for {EXPECTED_MOTO_VERSION}",
            file=sys.stderr,
        )

    disable_instance_tracking()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    check_instance_tracking_disabled()

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def _stop(signum: int, _frame: Any) -> None:
        # Raised in the main thread, which is inside serve_forever().
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    host, port = server.server_address[:2]
    print(
        f"moto {moto.__version__} ready on http://{host}:{port} "
        f"(pid {os.getpid()}, instance tracking off)",
        flush=True,
    )
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
        print("moto stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
