"""A real SMTP server for the tests (aiosmtpd), on 127.0.0.1, that checks what the email
channel sends: the submission contract in shared/REFERENCE.md ("Alert channel contracts").

Start: `python smtp_server.py`. Prints `listening <port>` first (once the certificates exist),
then one JSON line per DATA command (accepted or refused):
  {"mail_from", "rcpt_tos", "data" (the raw message as text), "tls", "auth_user",
   "message_id", "subject", "answer" (the SMTP reply), "accepted", "violations": [...]}
SIGTERM or SIGINT stops it at once.

Environment:
  SMTP_MODE       starttls (default; STARTTLS is required before MAIL and AUTH, like port 587),
                  implicit (TLS from the first byte, like port 465), or plain (no TLS at all)
  SMTP_PORT       default 0 (a free port)
  SMTP_USER, SMTP_PASSWORD   the one account (AUTH PLAIN and LOGIN; anything else gets 535);
                  defaults alerts@mingus.test / smtp-test-password
  SMTP_AUTH_REQUIRED  1 or 0: MAIL needs a successful AUTH first. Default 1 with TLS, 0 in plain
                  mode (where AUTH is still offered, without TLS)
  SMTP_CERT_DIR   where ca.pem (the CA to trust), ca-key.pem, server.pem and server-key.pem
                  (for 127.0.0.1, ::1 and localhost) are written; an existing CA there is reused,
                  so servers started on one folder share one ca.pem. Default: a new temporary folder.
  SMTP_FAIL_FIRST N: answer `451 4.3.0 try again later` to the first N DATA commands
  SMTP_REJECT_RCPT address (or a comma-separated list): `550 5.1.1 mailbox unavailable` to its RCPT TO
  SMTP_LOG        full (default: the line above) or compact: {"message_id", "rcpt_tos", "answer",
                  "accepted"} only, with no content checks, for runs of many thousands of messages

Every message is accepted whatever its content; a missing `Date:`, `From:` or `Message-ID:`
header, no multipart/alternative with text/plain and text/html parts, bare LF line ends or 8-bit
data without BODY=8BITMIME are listed in its line's "violations".
"""
import asyncio
import datetime
import email.utils
import fcntl
import hmac
import ipaddress
import json
import logging
import os
import re
import signal
import ssl
import sys
import tempfile
import uuid
import warnings
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MODE = os.environ.get("SMTP_MODE", "starttls")
PORT = int(os.environ.get("SMTP_PORT") or 0)
USER = os.environ.get("SMTP_USER") or "alerts@mingus.test"
PASSWORD = os.environ.get("SMTP_PASSWORD") or "smtp-test-password"
AUTH_REQUIRED = os.environ.get("SMTP_AUTH_REQUIRED", "0" if MODE == "plain" else "1") == "1"
FAIL_FIRST = int(os.environ.get("SMTP_FAIL_FIRST") or 0)
COMPACT = os.environ.get("SMTP_LOG", "full") == "compact"
REJECT_RCPT = {address.strip().lower() for address in os.environ.get("SMTP_REJECT_RCPT", "").split(",")
               if address.strip()}

# aiosmtpd logs a warning per connection for choices made on purpose here (AUTH without
# STARTTLS under implicit TLS, its deprecated login_data); errors still show.
logging.getLogger("mail.log").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


# ---------------------------------------------------------------- certificates

def write_private(path, data):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def write_public(path, data):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_authority(folder):
    """The folder's CA, made the first time (callers hold the folder's lock)."""
    cert_path, key_path = os.path.join(folder, "ca.pem"), os.path.join(folder, "ca-key.pem")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as cert_file, open(key_path, "rb") as key_file:
            certificate = x509.load_pem_x509_certificate(cert_file.read())
            key = serialization.load_pem_private_key(key_file.read(), password=None)
        if certificate.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2):
            return certificate, key
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mingus test SMTP CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    write_private(key_path, key_pem(key))
    write_public(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return certificate, key


def server_context(folder):
    """A TLS server context with a fresh certificate for 127.0.0.1, ::1 and localhost, signed by
    the folder's CA."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca_certificate, ca_key = certificate_authority(folder)
        key = new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = os.path.join(folder, "server.pem"), os.path.join(folder, "server-key.pem")
        write_private(key_path, key_pem(key))
        write_public(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
    return context


# ---------------------------------------------------------------- checks

def message_violations(raw, envelope):
    violations = []
    if re.search(rb"(?<!\r)\n", raw):
        violations.append("bare LF line ends (SMTP needs CRLF)")
    if any(byte > 127 for byte in raw) and "BODY=8BITMIME" not in envelope.mail_options and not envelope.smtp_utf8:
        violations.append("8-bit data without BODY=8BITMIME")
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    for name in ("Date", "From", "Message-ID"):
        values = message.get_all(name) or []
        if not values:
            violations.append(f"no {name}: header")
        elif len(values) > 1:
            violations.append(f"{len(values)} {name}: headers")
    if message.get("Date"):
        try:
            if email.utils.parsedate_to_datetime(message["Date"]) is None:
                raise ValueError
        except (TypeError, ValueError):
            violations.append(f"Date: {message['Date']!r} is not an RFC 5322 date")
    if message.get("Message-ID") and not re.fullmatch(r"\s*<[^<>@\s]+@[^<>@\s]+>\s*", message["Message-ID"]):
        violations.append(f"Message-ID: {message['Message-ID']!r} is not <left@right>")
    if message.get("From") and not email.utils.parseaddr(message["From"])[1]:
        violations.append(f"From: {message['From']!r} has no address")
    alternatives = [part for part in message.walk() if part.get_content_type() == "multipart/alternative"]
    if not alternatives:
        violations.append("no multipart/alternative part")
    elif not any({"text/plain", "text/html"} <= {child.get_content_type() for child in part.get_payload()}
                 for part in alternatives if isinstance(part.get_payload(), list)):
        violations.append("multipart/alternative without both text/plain and text/html parts")
    return violations, message


# ---------------------------------------------------------------- SMTP

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.M | re.I)


def emit(record):
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def authenticator(server, session, envelope, mechanism, auth_data):
    if (isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, USER.encode())
            and hmac.compare_digest(auth_data.password, PASSWORD.encode())):
        return AuthResult(success=True, auth_data=USER)
    return AuthResult(success=False, handled=False)  # 535 5.7.8


class Handler:
    def __init__(self):
        self.data_commands = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in REJECT_RCPT:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        raw = envelope.original_content or b""
        if COMPACT:
            answer = ("451 4.3.0 try again later" if self.data_commands <= FAIL_FIRST
                      else f"250 2.0.0 OK queued as {uuid.uuid4().hex[:12]}")
            found = MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0])
            emit({"message_id": found.group(1).decode("ascii", "replace") if found else None,
                  "rcpt_tos": list(envelope.rcpt_tos), "answer": answer, "accepted": answer.startswith("250")})
            return answer
        violations, message = message_violations(raw, envelope)
        if self.data_commands <= FAIL_FIRST:
            answer = "451 4.3.0 try again later"
        else:
            answer = f"250 2.0.0 OK queued as {uuid.uuid4().hex[:12]}"
        transport = server.transport
        emit({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
              "data": raw.decode("utf-8", errors="replace"),
              "tls": transport is not None and transport.get_extra_info("ssl_object") is not None,
              "auth_user": session.auth_data if session.authenticated else None,
              "message_id": message.get("Message-ID"), "subject": message.get("Subject"),
              "answer": answer, "accepted": answer.startswith("250"), "violations": violations})
        return answer


async def serve():
    if MODE not in ("starttls", "implicit", "plain"):
        raise SystemExit(f"smtp_server: SMTP_MODE must be starttls, implicit or plain, not {MODE!r}")
    context = None
    if MODE != "plain":
        folder = os.environ.get("SMTP_CERT_DIR") or tempfile.mkdtemp(prefix="smtp-certs-")
        context = server_context(folder)
        sys.stderr.write(f"smtp_server: CA certificate {os.path.join(folder, 'ca.pem')}\n")
    loop = asyncio.get_running_loop()
    handler = Handler()
    options = {"hostname": "localhost", "ident": "Mingus test SMTP", "authenticator": authenticator,
               "auth_required": AUTH_REQUIRED, "loop": loop}
    if MODE == "starttls":
        options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    else:
        # implicit: the connection is TLS from the first byte, which aiosmtpd's auth_require_tls
        # (it looks for a STARTTLS) cannot see; plain: AUTH is offered without TLS on purpose.
        options.update(auth_require_tls=False)
    server = await loop.create_server(lambda: SMTP(handler, **options), host="127.0.0.1", port=PORT,
                                      ssl=context if MODE == "implicit" else None)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await stopped.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(serve())
