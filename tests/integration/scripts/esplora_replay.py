"""A replay of a real Esplora server (see ../shared/datasets/esplora/README.md): serves the
recorded replies of RECORDING (.jsonl.zst, read with the zstd tool) on 127.0.0.1 with their
exact status, content type and body. Prints its port first.

Unrecorded GETs get the reply the real server (mempool/electrs) gives to the same route with
an unknown id; anything else, any non-GET included, gets its catch-all 404
`endpoint does not exist "<path>"`. Every request target is appended to LOG (one per line).

Faults, for the tests (each `--fault PATTERN=KIND[*N]`, applied to the first N requests
whose target contains PATTERN; N defaults to 1, `*0` means every one):
  html      200 with an HTML error page (what a captive portal or a CDN sends)
  500       HTTP 500 `Internal Server Error`
  429       HTTP 429 with `Retry-After: 1`
  truncate  the recorded body cut in half
  swap      the body of another block's raw reply (a wrong block)
  redirect  HTTP 302 to /elsewhere
  garbage   200 with `application/json` body `{"not":"what you asked"`
  lie       the recorded body with every `scriptpubkey_address` replaced by another
            address (a server that lies about whom a script pays; the scripts are intact)

`--prefix /P` serves the API under /P (as providers put a key in the path): a target
without it gets the catch-all 404.

`--tls CERT,KEY` serves https:// with that certificate.

usage: esplora_replay.py RECORDING LOG [--prefix /P] [--tls CERT,KEY] [--fault PATTERN=KIND[*N]]...
"""
import base64
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

recording, log = sys.argv[1], sys.argv[2]
faults = []
prefix = ""
tls = None
args = sys.argv[3:]
while args:
    flag, spec = args[0], args[1]
    args = args[2:]
    if flag == "--prefix":
        prefix = spec
        continue
    if flag == "--tls":
        tls = spec.split(",")
        continue
    assert flag == "--fault", flag
    pattern, kind = spec.rsplit("=", 1)
    count = 1
    if "*" in kind:
        kind, n = kind.split("*")
        count = int(n)
    faults.append([pattern, kind, count])

replies = {}
raw_blocks = []
data = subprocess.run(["zstd", "-dc", recording], check=True, capture_output=True).stdout
for line in data.splitlines():
    r = json.loads(line)
    body = r["body"]
    body = base64.b64decode(body) if r["body_encoding"] == "base64" else body.encode()
    replies[r["path"]] = (r["status"], r["content_type"], body)
    if r["path"].startswith("/block/") and r["path"].endswith("/raw"):
        raw_blocks.append(body)
del data
lock = threading.Lock()

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def unrecorded(path):
    """The real server's reply to a route it was not recorded on."""
    p = path.split("?")[0].split("/")[1:]
    if len(p) >= 2 and p[0] == "tx":
        if not HEX64.match(p[1]):
            return 400, "Invalid hex string"
        if len(p) == 3 and p[2] == "status":
            return 200, '{"confirmed":false}'
        return 404, "Transaction not found"
    if len(p) >= 2 and p[0] == "block":
        if not HEX64.match(p[1]):
            return 400, "Invalid hex string"
        return 404, "Block not found"
    if len(p) == 2 and p[0] in ("block-height", "blocks"):
        if not p[1].isdigit():
            return 400, "Invalid number"
        return 404, "Block not found"
    if len(p) >= 2 and p[0] == "address":
        return 400, "Invalid Bitcoin address"
    return 404, 'endpoint does not exist "%s"' % path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, ctype, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            with open(log, "a") as f:
                f.write(self.path + "\n")
            fault = None
            for f in faults:
                # f[2]: requests left to spoil; 0 spoils every one.
                if f[0] in self.path and f[2] >= 0:
                    fault = f[1]
                    f[2] = -1 if f[2] == 1 else f[2] - (f[2] > 1)
                    break
        path = self.path
        if not path.startswith(prefix + "/"):
            return self.other()
        path = path[len(prefix):]
        if path in replies:
            status, ctype, body = replies[path]
        else:
            status, text = unrecorded(path)
            ctype, body = "text/plain", text.encode()
        if fault == "html":
            return self.send(200, "text/html", b"<html><body><h1>Service unavailable</h1></body></html>")
        if fault == "500":
            return self.send(500, "text/plain", b"Internal Server Error")
        if fault == "429":
            return self.send(429, "text/plain", b"Too Many Requests", [("Retry-After", "1")])
        if fault == "truncate":
            body = body[: len(body) // 2]
        if fault == "swap":
            body = next(b for b in raw_blocks if b != body)
        if fault == "redirect":
            return self.send(302, "text/plain", b"", [("Location", "/elsewhere")])
        if fault == "lie":
            body = re.sub(
                rb'"scriptpubkey_address":"[^"]*"',
                b'"scriptpubkey_address":"bcrt1qlielielielielielielielielielielieldu9tx"',
                body,
            )
        if fault == "garbage":
            return self.send(200, "application/json", b'{"not":"what you asked"')
        self.send(status, ctype, body)

    def other(self):
        body = ('endpoint does not exist "%s"' % self.path).encode()
        self.send(404, "text/plain", body)

    do_POST = other
    do_PUT = other
    do_DELETE = other
    do_HEAD = other


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if tls:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls[0], tls[1])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
