"""Credentials for calling an evaluator: pass one as ``auth=`` to the SDK clients.

``ApiKey`` and ``MutualTLS`` need only the base install; ``GoogleIdToken`` needs
``reward-kit[gcp]`` and ``AwsSigV4``/``AwsIamToken`` need ``reward-kit[aws]`` (imported when
constructed, not when this module is). A client given no ``auth`` uses
:func:`default_credential` (``RK_API_KEY``, ``auth.ini``...); ``auth=False`` or ``NoAuth()``
sends none. See docs/auth.md.
"""

from ._auth_aws import AwsIamToken, AwsSigV4
from ._auth_google import GoogleIdToken
from ._auth_profiles import (
    auth_file_path,
    default_credential,
    from_env,
    from_profile,
    from_settings,
)
from ._auth_tls import MutualTLS
from ._credentials import ApiKey, Combined, Credential, NoAuth, TokenCredential

__all__ = [
    "ApiKey",
    "AwsIamToken",
    "AwsSigV4",
    "Combined",
    "Credential",
    "GoogleIdToken",
    "MutualTLS",
    "NoAuth",
    "TokenCredential",
    "auth_file_path",
    "default_credential",
    "from_env",
    "from_profile",
    "from_settings",
]
