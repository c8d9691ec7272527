"""The base of every Candleflow settings class: a bad value names its environment variable.

pydantic-settings reports a field (`kafka_port`), but the user set `CANDLEFLOW_KAFKA_PORT`;
`EnvSettings` turns its ValidationError into a `SettingsError` (a ValueError) that says
which variable holds what and what was expected, one line per problem. Values of secret
fields (passwords, tokens, keys) are never echoed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsError as SourceError

# A TCP port to listen on or connect to; 0 only where a field says "0: off".
Port = Annotated[int, Field(ge=1, le=65535)]
PortOrOff = Annotated[int, Field(ge=0, le=65535)]
_FIELD = re.compile(r'field "(\w+)"')


class SettingsError(ValueError):
    """Settings from the environment that fail validation; the message names the variables."""


def _describe(cls: type[BaseSettings], exc: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a model validator: its message names the variables itself
            lines.append(msg)
            continue
        field = str(loc[0])
        var = f"{prefix}{field}".upper()
        info = cls.model_fields.get(field)
        if info is None or "SecretStr" in str(info.annotation) or info.annotation is SecretStr:
            lines.append(f"{var}: {msg}")
        else:
            lines.append(f"{var}={str(err.get('input'))[:60]!r}: {msg}")
    return f"invalid settings ({cls.__name__}): " + "; ".join(lines)


class EnvSettings(BaseSettings):
    """BaseSettings whose validation errors name the environment variable (SettingsError)."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(type(self), exc)) from None
        except SourceError as exc:  # a complex value (dict, list) that is not JSON
            match = _FIELD.search(str(exc))
            prefix = str(self.model_config.get("env_prefix", ""))
            var = f"{prefix}{match.group(1)}".upper() if match else "an environment variable"
            raise SettingsError(
                f"invalid settings ({type(self).__name__}): {var}: not valid JSON "
                f"({exc.__cause__ or exc})"
            ) from None
