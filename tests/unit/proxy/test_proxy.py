#!/usr/bin/env python3
"""Integration tests for the injecting proxy (daemon/proxy/).

Runs proxy-testd (the real engine) against a real local HTTPS upstream with
its own test CA, and drives it with real clients: curl, python (urllib and
raw sockets + ssl), node, and git. Every secret is the fake vault's canary
"CANARY-<name>-7d1f"; the tests assert where it arrives and where it must
not. Usage: test_proxy.py PATH/TO/proxy-testd
"""
import base64
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import warnings

warnings.simplefilter("ignore", ResourceWarning)

TESTD = None
KEYUPDATE = None  # tls-keyupdate, the hostile TLS 1.3 client (optional)
TMP = None
PROXY = None
PORTS = []
UP_PORT = 0
UPSTREAM = None
PLAIN = None
RAW = None
TOKEN = "tok-0123456789abcdef"
TOKEN_PRIV = "tok-private-0123456789"
TOKEN_MEM = "tok-memscan-0123456789"
CANARY_MEM = "CANARY-memscan-7d1f"
CANARY = "CANARY-api_token-7d1f"
CANARY_ROUTE = "CANARY-openai-7d1f"
RECEIVED = []  # (host header, path, headers dict) seen by the upstream
RECEIVED_LOCK = threading.Lock()
DROP_NEXT = set()
SSE_GATE = threading.Event()
RESUMED = {}  # upstream connection's client port -> its TLS handshake resumed a session


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


def make_certs(d):
    """Test CA, leaf certs for the upstream names, and a self-signed cert."""
    sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
       "-out", f"{d}/ca.key")
    sh("openssl", "req", "-x509", "-new", "-key", f"{d}/ca.key", "-days", "2",
       "-subj", "/CN=nono test upstream CA", "-out", f"{d}/ca.pem",
       "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign")
    for name in ("api.test", "other.test", "tunnel.test"):
        sh("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
           "-out", f"{d}/{name}.key")
        sh("openssl", "req", "-new", "-key", f"{d}/{name}.key", "-subj",
           f"/CN={name}", "-out", f"{d}/{name}.csr")
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
        sh("openssl", "x509", "-req", "-in", f"{d}/{name}.csr", "-CA",
           f"{d}/ca.pem", "-CAkey", f"{d}/ca.key", "-CAcreateserial",
           "-days", "2", "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{d}/self.key",
       "-days", "2", "-subj", "/CN=bad.test", "-addext",
       "subjectAltName=DNS:bad.test", "-out", f"{d}/self.pem")


def big_pattern(off, n):
    """n bytes from offset off (a multiple of 64 KiB) of a stream whose
    64 KiB blocks all differ: a lost, repeated or reordered block shows."""
    assert off % 65536 == 0
    out = b"".join(hashlib.sha256(b"%d" % k).digest() * 2048
                   for k in range(off // 65536, (off + n + 65535) // 65536))
    return out[:n]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _record(self):
        with RECEIVED_LOCK:
            RECEIVED.append((self.headers.get("Host"), self.path,
                             [(k, v) for k, v in self.headers.items()],
                             self.client_address[1]))

    def _send(self, code, body, ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _git(self):
        env = dict(os.environ, GIT_PROJECT_ROOT=f"{TMP}/git",
                   GIT_HTTP_EXPORT_ALL="1", PATH_INFO=self.path.split("?")[0][4:],
                   QUERY_STRING=self.path.partition("?")[2],
                   REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   REMOTE_ADDR="127.0.0.1")
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        code, hdrs = 200, []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(": ")
            if k.lower() == "status":
                code = int(v.split()[0])
            elif k:
                hdrs.append((k, v))
        self.send_response(code)
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return body
                body += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        if id(self.connection) in DROP_NEXT:
            # a keep-alive connection the server "timed out": close unanswered
            DROP_NEXT.discard(id(self.connection))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._record()
        p = self.path
        if p == "/arm-drop":
            DROP_NEXT.add(id(self.connection))
        if p.startswith("/git/"):
            return self._git()
        if p.startswith("/big?"):
            # N bytes of a pattern, in 64 KiB writes: many TLS records
            n = int(p[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for off in range(0, n, 65536):
                self.wfile.write(big_pattern(off, min(65536, n - off)))
            return
        if p.startswith("/redirect"):
            return self._send(302, b"", extra=[("Location", "https://other.test/echo")])
        if p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                d = f"event {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(d), d))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if p == "/truncate":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if p == "/sse":
            # close-delimited event stream; the second event waits until the
            # client has seen the first, which proves nothing is buffered
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: one\n\n")
            self.wfile.flush()
            SSE_GATE.wait(20)
            self.wfile.write(b"data: two\n\n")
            self.close_connection = True
            return
        if p.startswith("/close-after"):
            # answered, then closed: the next request needs a fresh upstream
            self._send(200, b"ok\n", extra=[("Connection", "close")])
            self.close_connection = True
            return
        if p == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if p == "/badresp":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                             b"Content-Length: 2\r\n\r\nab")
            self.close_connection = True
            return
        if p == "/ws" and self.headers.get("Upgrade") == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            data = self.connection.recv(100)
            self.connection.sendall(b"echo:" + data)
            self.close_connection = True
            return
        body = self._body()
        self._send(200, json.dumps({
            "host": self.headers.get("Host"), "path": p, "body_len": len(body),
            "headers": [[k, v] for k, v in self.headers.items()]}).encode())


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, d):
        super().__init__(("127.0.0.1", 0), Handler)
        ctxs = {}
        for name in ("api.test", "other.test", "tunnel.test"):
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            c.load_cert_chain(f"{d}/{name}.pem", f"{d}/{name}.key")
            ctxs[name] = c
        bad = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        bad.load_cert_chain(f"{d}/self.pem", f"{d}/self.key")
        ctxs["bad.test"] = bad
        ctxs["wrong.test"] = ctxs["api.test"]  # valid cert, other name
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.load_cert_chain(f"{d}/api.test.pem", f"{d}/api.test.key")

        def sni(sock, name, _ctx):
            # api.test and wrong.test (same certificate) stay on base, so its
            # session tickets would be accepted for either name: the
            # resumption test checks the proxy never offers them across names
            if name in ctxs and name not in ("api.test", "wrong.test"):
                sock.context = ctxs[name]
        base.sni_callback = sni
        self.ctx = base

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        with RECEIVED_LOCK:
            RESUMED[client_address[1]] = request.session_reused
        super().finish_request(request, client_address)


class PlainServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)


class RawServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Reads to EOF, answers sha256(received) + 5 MiB of a pattern, closes."""
    daemon_threads = True
    allow_reuse_address = True

    class H(socketserver.BaseRequestHandler):
        def handle(self):
            h = hashlib.sha256()
            while True:
                d = self.request.recv(65536)
                if not d:
                    break
                h.update(d)
            self.request.sendall(h.hexdigest().encode() + RAW_REPLY)

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RawServer.H)


RAW_REPLY = bytes(range(256)) * (5 * 4096)


LOOPS = 2  # proxy loop threads


def start_proxy():
    global PROXY, PORTS
    names = ["api.test", "other.test", "tunnel.test", "wrong.test", "bad.test",
             "missing.test"]
    cfg = {
        "upstream_ca": f"{TMP}/ca.pem",
        "ca_out": f"{TMP}/proxy-ca.pem",
        "audit": f"{TMP}/audit.jsonl",
        "header_timeout_ms": 700,
        "idle_timeout_ms": 4000,  # keep-alive idle, and a client not reading
        "loops": LOOPS,  # connections are dealt to the loops in turn
        "overrides": [[f"{n}:443", f"127.0.0.1:{UP_PORT}"] for n in names] +
                     [["plain.test:80", f"127.0.0.1:{PLAIN.server_address[1]}"],
                      ["raw.test:9", f"127.0.0.1:{RAW.server_address[1]}"]],
        "listeners": [{
            "token": TOKEN, "session": "s-main", "allow_private": True,
            "allow": [[n, 443] for n in names] + [["127.0.0.1", 443],
                                                  ["plain.test", 80], ["raw.test", 9]],
            "inject": [
                ["api.test", "Authorization", "Bearer ${secret:api_token}"],
                ["wrong.test", "Authorization", "Bearer ${secret:api_token}"],
                ["bad.test", "Authorization", "Bearer ${secret:api_token}"],
                ["missing.test", "Authorization", "Bearer ${secret:missing}"],
                ["127.0.0.1", "Authorization", "Bearer ${secret:api_token}"],
            ],
            "routes": [["openai", "https://api.test", "Authorization",
                        "Bearer ${secret:openai}", "Bearer PHANTOM-123"]],
        }, {
            "token": TOKEN_PRIV, "session": "s-strict", "allow_private": False,
            "allow": [["api.test", 443], ["tunnel.test", 443]],
            "inject": [["api.test", "Authorization", "Bearer ${secret:api_token}"]],
        }, {
            # its own secret, only ever sent to paths that do not echo it back
            "token": TOKEN_MEM, "session": "s-mem", "allow_private": True,
            "allow": [["api.test", 443]],
            "inject": [["api.test", "Authorization", "Bearer ${secret:memscan}"]],
        }],
    }
    with open(f"{TMP}/cfg.json", "w") as f:
        json.dump(cfg, f)
    # meson sets MALLOC_PERTURB_, which makes glibc scribble over freed
    # memory and would hide what AMemory looks for: run it as in production
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}
    PROXY = subprocess.Popen([TESTD, f"{TMP}/cfg.json"], stdout=subprocess.PIPE,
                             stderr=open(f"{TMP}/proxy.stderr", "w"), text=True, env=env)
    line = PROXY.stdout.readline()
    if not line:
        raise RuntimeError("proxy-testd failed to start: " +
                           open(f"{TMP}/proxy.stderr").read())
    PORTS = [int(x) for x in line.split()]
    with open(f"{TMP}/bundle.pem", "w") as f:
        f.write(open(f"{TMP}/proxy-ca.pem").read())
        f.write(open(f"{TMP}/ca.pem").read())


def setUpModule():
    global TMP, UPSTREAM, UP_PORT, PLAIN, RAW
    TMP = tempfile.mkdtemp(prefix="nono-proxy-test-")
    try:
        make_certs(TMP)
        RAW = RawServer()
        threading.Thread(target=RAW.serve_forever, daemon=True).start()
        PLAIN = PlainServer()
        threading.Thread(target=PLAIN.serve_forever, daemon=True).start()
        UPSTREAM = TLSServer(TMP)
        UP_PORT = UPSTREAM.server_address[1]
        threading.Thread(target=UPSTREAM.serve_forever, daemon=True).start()
        os.makedirs(f"{TMP}/git")
        src = f"{TMP}/src"
        sh("git", "init", "-q", src)
        with open(f"{src}/README", "w") as f:
            f.write("hello from the test repo\n")
        sh("git", "-C", src, "add", "README")
        sh("git", "-C", src, "-c", "user.name=t", "-c", "user.email=t@t",
           "commit", "-q", "-m", "init")
        sh("git", "clone", "-q", "--bare", src, f"{TMP}/git/repo.git")
        start_proxy()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    rc = None
    if PROXY is not None:
        PROXY.send_signal(signal.SIGTERM)
        try:
            rc = PROXY.wait(timeout=30)
        except subprocess.TimeoutExpired:
            PROXY.kill()
            PROXY.wait()
    for srv in (UPSTREAM, PLAIN, RAW):
        if srv is not None:
            srv.shutdown()
            srv.server_close()
    err = open(f"{TMP}/proxy.stderr").read() if TMP and os.path.exists(
        f"{TMP}/proxy.stderr") else ""
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)
    if CANARY in err or CANARY_ROUTE in err or CANARY_MEM in err:
        raise AssertionError("secret canary appeared in the proxy's log")
    if rc not in (None, 0):
        raise AssertionError(f"proxy-testd exited {rc}: {err[-4000:]}")


def proxy_url(token=TOKEN, port_idx=0):
    return f"http://nono:{token}@127.0.0.1:{PORTS[port_idx]}"


def curl(*args, token=TOKEN, port_idx=0, timeout=60):
    cmd = ["curl", "-sS", "--max-time", "30", "--proxy",
           proxy_url(token, port_idx), "--cacert", f"{TMP}/bundle.pem"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def received_since(n):
    with RECEIVED_LOCK:
        return list(RECEIVED[n:])


def nreceived():
    with RECEIVED_LOCK:
        return len(RECEIVED)


def raw_connect(target, token=TOKEN, port_idx=0, extra=b""):
    s = socket.create_connection(("127.0.0.1", PORTS[port_idx]), timeout=20)
    auth = base64.b64encode(f"nono:{token}".encode()).decode()
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
              f"Proxy-Authorization: Basic {auth}\r\n\r\n".encode() + extra)
    return s


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf


def read_all(s):
    out = []
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not d:
            break
        out.append(d)
    return b"".join(out)


def tls_through(host, sni=None):
    s = raw_connect(f"{host}:443")
    head = read_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context(cafile=f"{TMP}/bundle.pem")
    return ctx.wrap_socket(s, server_hostname=sni or host)


def audit_records():
    with open(f"{TMP}/audit.jsonl") as f:
        return [json.loads(x) for x in f if x.strip()]


def wait_audit(pred):
    """Audit records are written as connections end: wait (bounded) for one."""
    for _ in range(100):
        recs = [a for a in audit_records() if pred(a)]
        if recs:
            return recs
        time.sleep(0.05)
    return []


def header_values(hdrs, name):
    return [v for k, v in hdrs if k.lower() == name.lower()]


class AMemory(unittest.TestCase):
    """Runs first (unittest orders classes by name), on a fresh heap."""

    def test_secret_not_left_in_proxy_memory(self):
        # Attack: read the proxy's memory (what a core dump, a swap page or a
        # later memory-disclosure bug would show) after injected requests have
        # been sent, some over pooled upstreams, some over fresh ones. The
        # paths used do not echo headers back, so any copy found is one the
        # proxy kept of the request head it built.
        n = nreceived()
        urls = ["https://api.test/chunked"] * 4 + [f"https://api.test/close-after-m{i}"
                                                   for i in range(4)]
        p = curl(*[a for u in urls for a in ("-o", "/dev/null", u)],
                 token=TOKEN_MEM, port_idx=2)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = received_since(n)
        self.assertEqual(len(got), 8)
        self.assertTrue(all(header_values(g[2], "Authorization") == [f"Bearer {CANARY_MEM}"]
                            for g in got))  # control: the secret did go out
        wait_audit(lambda a: a["path"] == "/close-after-m3")
        try:
            with open(f"/proc/{PROXY.pid}/maps") as f:
                maps = f.read().splitlines()
            mem = open(f"/proc/{PROXY.pid}/mem", "rb")
        except OSError as e:
            self.skipTest(f"cannot read the proxy's memory: {e}")
        found = []
        with mem:
            for line in maps:
                parts = line.split()
                if not parts[1].startswith("rw"):
                    continue
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if hi - lo > 256 << 20:
                    continue  # sanitizer shadow / reserved arenas, not the heap
                tail = b""
                for off in range(lo, hi, 1 << 20):
                    try:
                        mem.seek(off)
                        data = tail + mem.read(min(1 << 20, hi - off))
                    except OSError:
                        break
                    if CANARY_MEM.encode() in data:
                        found.append(line)
                        break
                    tail = data[-len(CANARY_MEM):]
        self.assertEqual(found, [], "the injected secret is still in the proxy's memory")


class Auth(unittest.TestCase):
    def test_missing_token_407(self):
        s = socket.create_connection(("127.0.0.1", PORTS[0]), timeout=20)
        s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
        r = read_all(s)
        self.assertTrue(r.startswith(b"HTTP/1.1 407"), r)
        self.assertIn(b"Proxy-Authenticate: Basic", r)

    def test_wrong_token_407(self):
        r = read_all(raw_connect("api.test:443", token="tok-wrong-0123456789"))
        self.assertTrue(r.startswith(b"HTTP/1.1 407"), r)
        # the other session's token does not open this listener
        r = read_all(raw_connect("api.test:443", token=TOKEN_PRIV))
        self.assertTrue(r.startswith(b"HTTP/1.1 407"), r)
        p = curl("https://api.test/echo", token="tok-wrong-0123456789")
        self.assertNotEqual(p.returncode, 0)


class Allowlist(unittest.TestCase):
    def test_disallowed_host_403(self):
        r = read_all(raw_connect("evil.test:443"))
        self.assertTrue(r.startswith(b"HTTP/1.1 403"), r)
        self.assertIn(b"X-Nono-Denied: evil.test:443 is not in the allow list", r)
        self.assertTrue(wait_audit(lambda a: a["host"] == "evil.test" and
                                   a["status"] == 403))

    def test_wrong_port_403(self):
        r = read_all(raw_connect("api.test:8443"))
        self.assertTrue(r.startswith(b"HTTP/1.1 403"), r)

    def test_private_address_refused(self):
        r = read_all(raw_connect("api.test:443", token=TOKEN_PRIV, port_idx=1))
        self.assertTrue(r.startswith(b"HTTP/1.1 403"), r)
        self.assertIn(b"private", r)
        r = read_all(raw_connect("tunnel.test:443", token=TOKEN_PRIV, port_idx=1))
        self.assertTrue(r.startswith(b"HTTP/1.1 403"), r)

    def test_ip_literal_for_rule_host_403(self):
        r = read_all(raw_connect("127.0.0.1:443"))
        self.assertTrue(r.startswith(b"HTTP/1.1 403"), r)
        self.assertIn(b"IP-literal", r)


class Tunnel(unittest.TestCase):
    def test_blind_tunnel_no_injection(self):
        n = nreceived()
        p = curl("https://tunnel.test/echo", "-H", "Authorization: mine")
        self.assertEqual(p.returncode, 0, p.stderr)
        body = json.loads(p.stdout)
        self.assertEqual(body["host"], "tunnel.test")
        self.assertEqual(header_values(body["headers"], "Authorization"), ["mine"])
        self.assertNotIn("CANARY", p.stdout)
        self.assertEqual(len(received_since(n)), 1)


    def test_tunnel_bulk_both_ways_half_close(self):
        s = raw_connect("raw.test:9")
        head = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        sent = os.urandom(3 * 1024 * 1024)
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)  # half-close must reach the server
        got = read_all(s)
        self.assertEqual(got[:64], hashlib.sha256(sent).hexdigest().encode())
        self.assertEqual(got[64:], RAW_REPLY)
        rec = wait_audit(lambda a: a["host"] == "raw.test")
        self.assertTrue(rec)
        self.assertEqual(rec[-1]["bytes_in"], len(sent))
        self.assertEqual(rec[-1]["bytes_out"], 64 + len(RAW_REPLY))


class Inject(unittest.TestCase):
    def check_injected(self, out):
        body = json.loads(out)
        self.assertIn(body["host"], ("api.test", "api.test:443"))
        self.assertEqual(header_values(body["headers"], "Authorization"),
                         [f"Bearer {CANARY}"])
        self.assertEqual(header_values(body["headers"], "Proxy-Authorization"), [])

    def test_curl_injects_and_replaces(self):
        p = curl("https://api.test/echo?q=secretquery", "-H", "Authorization: client-value")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_injected(p.stdout)
        recs = wait_audit(lambda a: a["path"] == "/echo" and a["host"] == "api.test")
        self.assertTrue(recs)
        self.assertEqual(recs[-1]["secret"], "api_token")
        self.assertEqual(recs[-1]["status"], 200)
        self.assertNotIn("CANARY", open(f"{TMP}/audit.jsonl").read())
        self.assertNotIn("secretquery", open(f"{TMP}/audit.jsonl").read())

    def test_curl_keepalive_two_requests(self):
        p = curl("https://api.test/echo", "https://api.test/chunked")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("event 4", p.stdout)
        self.check_injected(p.stdout.split("event 0")[0])
        recs = wait_audit(lambda a: a["path"] == "/chunked")
        self.assertTrue(recs and recs[-1]["status"] == 200)

    def test_upstream_connection_reused(self):
        # separate client connections, dealt to the loops in turn: one
        # upstream connection per loop carries them all
        n = nreceived()
        for _ in range(3 * LOOPS):
            p = curl("https://api.test/echo")
            self.assertEqual(p.returncode, 0, p.stderr)
        got = received_since(n)
        self.assertEqual(len(got), 3 * LOOPS)
        self.assertLessEqual(len({g[3] for g in got}), LOOPS, got)

    def test_upstream_tls_session_resumed(self):
        # Each answer closes its upstream connection, so after at most the
        # pool's 8 idle ones are used up every request needs a fresh upstream
        # handshake; those after the first fresh one resume its session.
        n = nreceived()
        urls = [f"https://api.test/close-after-{i}" for i in range(12)]
        p = curl(*[a for u in urls for a in ("-o", "/dev/null", u)])
        self.assertEqual(p.returncode, 0, p.stderr)
        got = received_since(n)
        self.assertEqual(len(got), 12)
        with RECEIVED_LOCK:
            resumed = [RESUMED.get(g[3]) for g in got]
        self.assertIn(True, resumed[-4:], resumed)
        for g in got:  # resumed or not, the secret went to the rule's host
            self.assertEqual(header_values(g[2], "Authorization"), [f"Bearer {CANARY}"])
        # Attack: the same server would resume api.test's tickets for
        # wrong.test, skipping the certificate and name check; tickets are
        # kept per host, so wrong.test gets a full handshake and a 502.
        n = nreceived()
        p = curl("-i", "https://wrong.test/echo")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("verification failed", p.stdout)
        self.assertEqual(received_since(n), [])

    def test_stale_pooled_upstream_retried(self):
        p = curl("https://api.test/arm-drop")
        self.assertEqual(p.returncode, 0, p.stderr)
        n = nreceived()
        p = curl("https://api.test/echo")  # pooled upstream closes unanswered
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_injected(p.stdout)
        self.assertEqual(len(received_since(n)), 1)
        if os.environ.get("PROXY_TESTD_DEBUG"):
            self.assertIn("retrying", open(f"{TMP}/proxy.stderr").read())

    def test_post_body(self):
        with open(f"{TMP}/body", "w") as f:
            f.write("x" * 200000)
        with open(f"{TMP}/body2", "w") as f:
            f.write("y" * 70000)
        p = curl("https://api.test/echo", "--data-binary", f"@{TMP}/body")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["body_len"], 200000)
        p = curl("https://api.test/echo", "-H", "Transfer-Encoding: chunked",
                 "--data-binary", f"@{TMP}/body2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["body_len"], 70000)

    def test_big_response_to_a_slow_reader(self):
        # 24 MiB through the intercepting proxy to a client that stops
        # reading for a while: the proxy must stop reading the upstream
        # (bounded buffers), resume when the client drains, lose nothing
        n = 24 * 1024 * 1024
        s = tls_through("api.test")
        s.settimeout(30)
        s.sendall(b"GET /big?%d HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n" % n)
        got = s.recv(4096)
        time.sleep(1.5)  # everything in flight piles up against the watermarks
        got += read_all(s)
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(len(body), n)
        self.assertEqual(hashlib.sha256(body).hexdigest(),
                         hashlib.sha256(big_pattern(0, n)).hexdigest())

    def test_client_that_stops_reading_is_closed(self):
        # A client that asks for a big body and never reads it would hold
        # its socket, buffers and upstream connection forever: after the
        # idle timeout (4 s here) with no write progress, the proxy closes.
        n = 64 * 1024 * 1024
        s = tls_through("api.test")
        s.settimeout(30)
        s.sendall(b"GET /big?%d HTTP/1.1\r\nHost: api.test\r\n\r\n" % n)
        first = s.recv(4096)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        try:
            time.sleep(6)  # not reading: no progress for longer than the timeout
            # (the audit record is written when the proxy closes the connection;
            # reading what is still in flight would take TCP's zero-window
            # probes, so the test does not wait for the EOF)
            self.assertTrue(wait_audit(lambda r: r["path"] == "/big" and
                                       r.get("reason") == "client stopped reading"))
        finally:
            s.close()

    def test_big_upload(self):
        with open(f"{TMP}/upload", "wb") as f:
            f.write(big_pattern(0, 12 * 1024 * 1024))
        p = curl("https://api.test/echo", "--data-binary", f"@{TMP}/upload")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["body_len"], 12 * 1024 * 1024)

    def test_requests_in_separate_records_of_one_read(self):
        # two TLS records sent back to back usually arrive in one read(2):
        # the second must not wait in OpenSSL's read-ahead buffer for a
        # socket event that never comes (the client sends nothing more)
        s = tls_through("api.test")
        s.settimeout(20)
        s.sendall(b"GET /echo?a HTTP/1.1\r\nHost: api.test\r\n\r\n")
        s.sendall(b"GET /echo?b HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        r = read_all(s)
        self.assertEqual(r.count(b"HTTP/1.1 200"), 2, r)

    def test_python_urllib(self):
        env_proxy = urllib.request.ProxyHandler({"https": proxy_url()})
        ctx = ssl.create_default_context(cafile=f"{TMP}/bundle.pem")
        opener = urllib.request.build_opener(
            env_proxy, urllib.request.HTTPSHandler(context=ctx))
        with opener.open("https://api.test/echo", timeout=30) as r:
            self.check_injected(r.read().decode())

    def test_node(self):
        if shutil.which("node") is None:
            self.skipTest("node not installed")
        script = r"""
const http = require('http'), tls = require('tls'), https = require('https');
const fs = require('fs');
const [port, token, ca] = process.argv.slice(1);
const req = http.request({host: '127.0.0.1', port, method: 'CONNECT',
  path: 'api.test:443', headers: {'Proxy-Authorization':
  'Basic ' + Buffer.from('nono:' + token).toString('base64')}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(1); }
  const r = https.request({host: 'api.test', port: 443, path: '/echo',
    createConnection: () => tls.connect({socket, servername: 'api.test',
      ca: fs.readFileSync(ca)})}, (resp) => {
    let d = ''; resp.on('data', c => d += c); resp.on('end', () => process.stdout.write(d, () => process.exit(0)));
  });
  r.on('error', e => { console.error(e); process.exit(1); });
  r.end();
});
req.on('error', e => { console.error(e); process.exit(1); });
req.end();
"""
        p = subprocess.run(["node", "-e", script, str(PORTS[0]), TOKEN,
                            f"{TMP}/bundle.pem"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.strip().startswith("{"), f"node: {p.stdout!r} {p.stderr!r}")
        self.check_injected(p.stdout)

    def test_git_clone(self):
        n = nreceived()
        dst = f"{TMP}/clone"
        env = dict(os.environ, GIT_SSL_CAINFO=f"{TMP}/bundle.pem",
                   https_proxy=proxy_url(), HTTPS_PROXY=proxy_url())
        p = subprocess.run(["git", "clone", "-q",
                            "https://api.test/git/repo.git", dst], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(open(f"{dst}/README").read(), "hello from the test repo\n")
        got = received_since(n)
        self.assertTrue(got)
        for host, path, hdrs, _ in got:
            self.assertEqual(header_values(hdrs, "Authorization"), [f"Bearer {CANARY}"])

    def test_redirect_does_not_carry_secret(self):
        n = nreceived()
        p = curl("-L", "https://api.test/redirect")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = received_since(n)
        self.assertEqual([g[0] for g in got], ["api.test", "other.test"])
        self.assertEqual(header_values(got[0][2], "Authorization"), [f"Bearer {CANARY}"])
        self.assertEqual(header_values(got[1][2], "Authorization"), [])
        self.assertNotIn("CANARY", p.stdout)

    def test_render_failure_502(self):
        p = curl("-i", "https://missing.test/echo")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("X-Nono-Error: cannot render the injected header", p.stdout)

    def test_sse_streamed_unbuffered(self):
        SSE_GATE.clear()
        s = tls_through("api.test")
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: api.test\r\n\r\n")
        first = b""
        while b"data: one" not in first:
            d = s.recv(4096)
            self.assertTrue(d, first)
            first += d
        self.assertNotIn(b"data: two", first)
        SSE_GATE.set()
        rest = read_all(s)  # close-delimited: the proxy closes after it
        self.assertIn(b"data: two", rest)
        self.assertIn(b"Connection: close", first)

    def test_h2c_upgrade_not_forwarded(self):
        n = nreceived()
        s = tls_through("api.test")
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade, "
                  b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                  b"\r\n")
        head = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        got = received_since(n)
        self.assertEqual(header_values(got[0][2], "Upgrade"), [])
        self.assertEqual(header_values(got[0][2], "Connection"), [])
        self.assertEqual(header_values(got[0][2], "HTTP2-Settings"), [])

    def test_websocket_upgrade(self):
        s = tls_through("api.test")
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: api.test\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n")
        head = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        s.sendall(b"ping")
        self.assertEqual(read_all(s).split(b"\r\n\r\n")[-1], b"echo:ping")


class Upstream(unittest.TestCase):
    def test_invalid_cert_502(self):
        p = curl("-i", "https://bad.test/echo")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("X-Nono-Error: upstream certificate verification failed", p.stdout)

    def test_wrong_host_cert_502(self):
        p = curl("-i", "https://wrong.test/echo")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("hostname mismatch", p.stdout)

    def test_close_before_response_502(self):
        p = curl("-i", "https://api.test/close")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("X-Nono-Error: upstream closed the connection before responding",
                      p.stdout)

    def test_ambiguous_response_502(self):
        p = curl("-i", "https://api.test/badresp")
        self.assertIn("HTTP/1.1 502", p.stdout)
        self.assertIn("malformed response from upstream", p.stdout)

    def test_pipelined_requests(self):
        s = tls_through("api.test")
        s.sendall(b"GET /echo?1 HTTP/1.1\r\nHost: api.test\r\n\r\n"
                  b"GET /echo?2 HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        r = read_all(s)
        self.assertEqual(r.count(b"HTTP/1.1 200"), 2, r)
        self.assertEqual(r.count(CANARY.encode()), 2)

    def test_mid_stream_close(self):
        p = curl("https://api.test/truncate")
        # 18 = CURLE_PARTIAL_FILE: closed early, not hung (28 would be a timeout)
        self.assertEqual(p.returncode, 18, p.stderr)


class Hostile(unittest.TestCase):
    def proxy_syscalls(self):
        """read + write syscalls the proxy has made: a loop spinning on a
        socket shows as thousands per second, an idle proxy as none."""
        with open(f"/proc/{PROXY.pid}/io") as f:
            io = dict(line.split(": ") for line in f.read().splitlines())
        return int(io["syscr"]) + int(io["syscw"])

    def test_partial_tls_record_does_not_spin(self):
        # A TLS record header announcing 100 bytes, then 10 of them: OpenSSL
        # holds the fragment in its read-ahead buffer. The proxy must wait
        # for the socket, not poll the fragment in a loop. (During an
        # exchange, when no request timer would end it.)
        SSE_GATE.clear()
        s = tls_through("api.test")
        try:
            s.settimeout(20)
            s.sendall(b"GET /sse HTTP/1.1\r\nHost: api.test\r\n\r\n")
            got = b""
            while b"data: one" not in got:
                d = s.recv(4096)
                self.assertTrue(d, got)
                got += d
            os.write(s.fileno(), b"\x17\x03\x03\x00\x64" + b"A" * 10)
            time.sleep(0.3)
            before = self.proxy_syscalls()
            time.sleep(2)
            spent = self.proxy_syscalls() - before
            self.assertLess(spent, 200, f"{spent} read/write syscalls in 2 s with nothing to do")
        finally:
            SSE_GATE.set()
            s.close()

    def test_keyupdate_flood_does_not_freeze_the_proxy(self):
        # One client sends TLS 1.3 KeyUpdates as fast as it can (and reads
        # the answers): every one is work with no application bytes. The
        # proxy's loop must still serve another connection's request.
        if KEYUPDATE is None:
            self.skipTest("tls-keyupdate not built")
        SSE_GATE.clear()
        # (3 s: the exchange it holds open would meet the 4 s idle timeout)
        flood = subprocess.Popen([KEYUPDATE, str(PORTS[0]), TOKEN, "3"],
                                 stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            self.assertIsNone(flood.poll(), "the flood did not start")
            p = curl("https://api.test/echo", "--max-time", "6")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIsNone(flood.poll(), "the flood ended before the other request was served")
        finally:
            out, _ = flood.communicate(timeout=30)
            SSE_GATE.set()
        self.assertEqual(flood.returncode, 0)
        self.assertGreater(int(out.strip() or 0), 100, "the flood sent few KeyUpdates")

    def send_intercepted(self, payload):
        n = nreceived()
        s = tls_through("api.test")
        try:
            s.sendall(payload)
        except (ssl.SSLError, OSError):
            pass  # the proxy may refuse before reading everything
        r = read_all(s)
        return r, received_since(n)

    def test_smuggling_payloads_400(self):
        payloads = [
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo HTTP/1.1\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4\r\n"
            b"Content-Length: 40\r\n\r\nabcd",
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            b"GET /echo HTTP/1.1\r\nHost: api.test\nX: y\r\n\r\n",
            b"GET /echo HTTP/1.1\r\nHost: api.test\r\nX: a\rb\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"GET /echo HTTP/1.1\r\nHost: api.test\r\nBad Name: x\r\n\r\n",
            # dropping a framing header as "hop-by-hop" would desync upstream
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nConnection: Content-Length\r\n"
            b"Content-Length: 5\r\n\r\nhello",
            b"POST /echo HTTP/1.1\r\nHost: api.test\r\nConnection: close, transfer-encoding\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ]
        for pl in payloads:
            r, got = self.send_intercepted(pl)
            self.assertTrue(r.startswith(b"HTTP/1.1 400"), (pl, r))
            # except the chunk-size case (head was valid, sent before the body
            # was seen), nothing reached the upstream
            if b"zz\r\n" not in pl:
                self.assertEqual(got, [], pl)

    def test_too_many_headers(self):
        hdrs = b"".join(b"X-%d: v\r\n" % i for i in range(10000))
        r, got = self.send_intercepted(b"GET /echo HTTP/1.1\r\nHost: api.test\r\n" + hdrs + b"\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 431"), r[:200])
        self.assertEqual(got, [])

    def test_host_mismatch_400(self):
        r, got = self.send_intercepted(b"GET /echo HTTP/1.1\r\nHost: other.test\r\n\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 400"), r)
        self.assertIn(b"Host header does not match", r)
        self.assertEqual(got, [])

    def test_sni_mismatch(self):
        with self.assertRaises(ssl.SSLError):
            tls_through("api.test", sni="other.test").sendall(b"x")

    def test_slowloris_408(self):
        s = tls_through("api.test")
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: api")  # and never finish
        r = read_all(s)  # header timeout is 700 ms in this config
        self.assertTrue(r.startswith(b"HTTP/1.1 408"), r)
        s2 = socket.create_connection(("127.0.0.1", PORTS[0]), timeout=20)
        s2.sendall(b"CONNECT api.test:443 HTTP/1.1\r\n")
        self.assertTrue(read_all(s2).startswith(b"HTTP/1.1 408"))

    def test_plain_http_to_secret_host_refused(self):
        n = nreceived()
        p = subprocess.run(["curl", "-sS", "-i", "--proxy", proxy_url(),
                            "http://api.test/echo"], capture_output=True, text=True,
                           timeout=60)
        self.assertIn("HTTP/1.1 403", p.stdout)
        self.assertIn("refusing plain http", p.stdout)
        self.assertEqual(received_since(n), [])


class PlainHttp(unittest.TestCase):
    def test_plain_http_forwarded_without_secrets(self):
        n = nreceived()
        p = subprocess.run(["curl", "-sS", "--proxy", proxy_url(),
                            "-H", "Authorization: mine",
                            "http://plain.test/echo?a=b", "http://plain.test/echo"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = received_since(n)
        self.assertEqual(len(got), 2)
        self.assertEqual(got[0][1], "/echo?a=b")
        self.assertEqual(got[0][0], "plain.test")
        self.assertEqual(header_values(got[0][2], "Authorization"), ["mine"])
        self.assertEqual(header_values(got[0][2], "Proxy-Authorization"), [])
        self.assertNotIn("CANARY", p.stdout)

    def test_plain_http_needs_token(self):
        p = subprocess.run(["curl", "-sS", "-i", "--proxy",
                            f"http://127.0.0.1:{PORTS[0]}", "http://plain.test/echo"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("HTTP/1.1 407", p.stdout)


class Route(unittest.TestCase):
    def route(self, auth):
        req = urllib.request.Request(f"http://127.0.0.1:{PORTS[0]}/openai/v1/echo?x=1",
                                     headers={"Authorization": auth})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(req, timeout=30)

    def test_route_injects(self):
        n = nreceived()
        with self.route("Bearer PHANTOM-123") as r:
            body = json.loads(r.read())
        self.assertEqual(body["path"], "/v1/echo?x=1")
        self.assertEqual(body["host"], "api.test")
        self.assertEqual(header_values(body["headers"], "Authorization"),
                         [f"Bearer {CANARY_ROUTE}"])
        self.assertEqual(len(received_since(n)), 1)

    def test_route_wrong_phantom_403(self):
        n = nreceived()
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.route("Bearer WRONG")
        self.assertEqual(e.exception.code, 403)
        self.assertEqual(received_since(n), [])

    def test_unknown_route_404(self):
        s = socket.create_connection(("127.0.0.1", PORTS[0]), timeout=20)
        s.sendall(b"GET /nope/x HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(read_all(s).startswith(b"HTTP/1.1 404"))


if __name__ == "__main__":
    TESTD = os.path.abspath(sys.argv.pop(1))
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") and "." not in sys.argv[1]:
        KEYUPDATE = os.path.abspath(sys.argv.pop(1))
    for tool in ("openssl", "curl", "git"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} not installed")
            sys.exit(77)
    unittest.main(verbosity=2)
