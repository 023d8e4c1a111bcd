"""visiond_client: a Python client for visiond's HTTP API (standard library only).

    from visiond_client import Client
    c = Client("http://127.0.0.1:8080")
    s = c.create_session("clothes", folder="/media/fm")
    done = c.wait_session(s["id"], on_progress=print, check=True)

See clients/python/README.md and docs/api.md.
"""

from . import errors, types
from .client import Client as Client
from .client import from_env as from_env
from .errors import *  # noqa: F401,F403  (the exception hierarchy, errors.__all__)

__version__ = "0.1.0"
__all__ = ["Client", "from_env", "errors", "types"] + errors.__all__
