"""A minimal SOCKS5 proxy (RFC 1928, no authentication, CONNECT only), as Tor or an agency's
proxy offers one: prints its port, then relays every connection; each CONNECT target
(host:port, a name when the client resolves through the proxy: socks5h) is appended to LOG.

usage: socks5.py LOG
"""
import socket
import struct
import sys
import threading

log = sys.argv[1]


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(c):
    try:
        ver, n = c.recv(2)
        c.recv(n)
        c.sendall(b"\x05\x00")
        ver, cmd, _, atyp = c.recv(4)
        if atyp == 1:
            host = socket.inet_ntoa(c.recv(4))
        elif atyp == 3:
            host = c.recv(c.recv(1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, c.recv(16))
        port = struct.unpack(">H", c.recv(2))[0]
        with open(log, "a") as f:
            f.write(f"{host}:{port}\n")
        up = socket.create_connection((host, port))
        c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("0.0.0.0") + struct.pack(">H", 0))
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()
        pipe(up, c)
    except Exception:
        c.close()


s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
