"""The local broker's client credentials: the SASL users (PLAIN, SCRAM-SHA-256) and the
TLS material of the SASL_SSL listener, generated once per data dir into owner-only files
(nothing secret lives in the repository), and the client settings that use them.
A part of devstack.stack.Stack (a mixin: `stack.sasl_security()` and the like)."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path

import structlog
from pydantic import SecretStr

from adapters import topics
from candleflow.config import StackSettings
from candleflow.kafka_security import KafkaSecurity
from devstack.tls import TLS_HOSTS, TlsFiles, tls_material, write_private

log = structlog.get_logger("candleflow.stack")

# Users of the broker's SASL_PLAINTEXT and SASL_SSL listeners (passwords:
# Stack.sasl_passwords()).
SASL_USERS = {"PLAIN": "candleflow", "SCRAM-SHA-256": "candleflow-scram"}


class KafkaCredentials:
    """The broker's SASL users and TLS files under `conf_dir`/kafka, for `settings`."""

    settings: StackSettings
    conf_dir: Path

    def sasl_passwords(self) -> dict[str, str]:
        """mechanism -> password of the SASL listener's users, generated once per data dir
        (a file readable by its owner only; nothing secret lives in the repository)."""
        path = self.conf_dir / "kafka" / "sasl-users.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        with (self.settings.data_dir / ".sasl.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                return dict(json.loads(path.read_text()))
            made = {mechanism: secrets.token_hex(16) for mechanism in SASL_USERS}
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(made, fh)
            return made

    def sasl_security(self, mechanism: str = "PLAIN", password: str | None = None) -> KafkaSecurity:
        """Client settings for the SASL_PLAINTEXT listener (sasl_bootstrap_servers) as one of
        its users; `password` overrides the right one (to test a refusal)."""
        return KafkaSecurity(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username=SASL_USERS[mechanism],
            sasl_password=SecretStr(
                password if password is not None else self.sasl_passwords()[mechanism]
            ),
        )

    def tls_files(self) -> TlsFiles:
        """The SASL_SSL listener's CA and server certificate, generated once per data dir
        (owner-only files; the CA's key is never stored)."""
        d = self.conf_dir / "kafka" / "tls"
        files = TlsFiles(ca=d / "ca.pem", keystore=d / "server.pem")
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        with (self.settings.data_dir / ".tls.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if files.ca.exists() and files.keystore.exists():
                return files
            ca, keystore = tls_material([*TLS_HOSTS, self.settings.host])
            # The CA last: its presence says the pair is complete.
            files.ca.unlink(missing_ok=True)
            write_private(files.keystore, keystore)
            write_private(files.ca, ca)
            log.info("generated TLS material for the SASL_SSL listener", dir=str(d))
            return files

    def sasl_ssl_security(
        self,
        mechanism: str = "PLAIN",
        password: str | None = None,
        *,
        ca: bool = True,
        endpoint_identification: str = "",
    ) -> KafkaSecurity:
        """Client settings for the SASL_SSL listener (sasl_ssl_bootstrap_servers) as one of
        its users, trusting the stack's CA (`ca=False`: the system store, which does not
        know it); `endpoint_identification` sets ssl.endpoint.identification.algorithm
        (empty: the client's default, hostname verification on)."""
        plain = self.sasl_security(mechanism, password)
        return plain.model_copy(
            update={
                "security_protocol": "SASL_SSL",
                "ssl_ca_location": str(self.tls_files().ca) if ca else "",
                "ssl_endpoint_identification_algorithm": endpoint_identification,
            }
        )

    def _ensure_scram_user(self) -> None:
        """Upsert the SCRAM-SHA-256 user's credential (KRaft keeps it in the metadata log)."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        mechanism = "SCRAM-SHA-256"
        upsert = UserScramCredentialUpsertion(
            SASL_USERS[mechanism],
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
            self.sasl_passwords()[mechanism].encode(),
        )
        admin = topics.admin(self.settings.bootstrap_servers)
        for fut in admin.alter_user_scram_credentials([upsert]).values():
            fut.result(timeout=30)

    def sasl_listener_configured(self) -> bool:
        """Whether the broker was started with the SASL listener (a stack started before it
        existed is reused by the tests as it is)."""
        props = self.conf_dir / "kafka" / "server.properties"
        return props.exists() and "SASL_PLAINTEXT://" in props.read_text()

    def tls_listener_configured(self) -> bool:
        """Whether the broker was started with the SASL_SSL listener and its TLS material is
        there (a broker started before the listener existed is reused as it is)."""
        props = self.conf_dir / "kafka" / "server.properties"
        tls = self.conf_dir / "kafka" / "tls"
        return (
            props.exists()
            and "SASL_SSL://" in props.read_text()
            and (tls / "ca.pem").exists()
            and (tls / "server.pem").exists()
        )
