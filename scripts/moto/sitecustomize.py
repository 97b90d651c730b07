"""Makes every moto_server request atomic, as every DynamoDB request is.

Python imports this module at start-up when its directory is on PYTHONPATH; scripts/moto.sh and
the test harness set that for moto_server only.

moto applies a conditional write as "read the item, test the condition, store" without a lock,
and moto_server serves each connection on its own thread, so two racing conditional writes can
both succeed (a lost update DynamoDB never allows). One lock held per request closes that gap.
"""

import threading

try:
    from moto.moto_server import werkzeug_app as _app
except ImportError:  # Not moto_server's interpreter: nothing to patch.
    _app = None

if _app is not None:
    _lock = threading.Lock()
    _dispatch = _app.DomainDispatcherApplication.__call__

    def _one_at_a_time(self, environ, start_response):
        # The response body is built inside the call, so the lock covers the whole request.
        with _lock:
            return _dispatch(self, environ, start_response)

    _app.DomainDispatcherApplication.__call__ = _one_at_a_time
