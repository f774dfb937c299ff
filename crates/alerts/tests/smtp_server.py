# The tests' SMTP server (aiosmtpd): every message it accepts is written to OUTDIR/N.eml
# (N counting from 1, renamed into place when complete) after X-Test-* headers with the
# envelope, whether the session was encrypted and whether it logged in. With CERT, KEY,
# USER and PASSWORD it requires STARTTLS and AUTH (that user and password) first.
# Prints "ready" once it listens; runs until it is killed.
#
#   python3 smtp_server.py HOST PORT OUTDIR [CERT KEY USER PASSWORD]
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

host, port, outdir = sys.argv[1:4]
secure = sys.argv[4:8]


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        path = os.path.join(outdir, "%d.eml" % Handler.count)
        with open(path + ".tmp", "w") as f:
            f.write("X-Test-Mail-From: %s\n" % envelope.mail_from)
            f.write("X-Test-Rcpt-To: %s\n" % ",".join(envelope.rcpt_tos))
            f.write("X-Test-Tls: %s\n" % (session.ssl is not None))
            f.write("X-Test-Auth: %s\n" % session.authenticated)
            f.write(envelope.content.decode("utf8", "replace"))
        os.rename(path + ".tmp", path)
        return "250 OK"


if secure:
    cert, key, user, password = secure

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    c = Controller(Handler(), hostname=host, port=int(port), tls_context=ctx,
                   require_starttls=True, authenticator=authenticator, auth_required=True,
                   auth_require_tls=True)
else:
    c = Controller(Handler(), hostname=host, port=int(port))
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
