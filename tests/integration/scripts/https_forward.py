"""A TLS front for a plain-HTTP JSON-RPC server, as a provider or a reverse proxy puts one:
serves https://127.0.0.1:PORT with the given certificate and forwards every POST (path
ignored, Authorization kept) to the upstream URL. Prints the port, then serves until killed.
Every request's headers are appended to LOG (the test checks what reached the server).

usage: https_forward.py CERT KEY UPSTREAM LOG
"""
import http.server
import ssl
import sys
import urllib.request

cert, key, upstream, log = sys.argv[1:5]


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(log, "a") as f:
            f.write(f"{self.path} {dict(self.headers)}\n")
        req = urllib.request.Request(upstream, data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        if self.headers.get("Authorization"):
            req.add_header("Authorization", self.headers["Authorization"])
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, reply = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, reply = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
