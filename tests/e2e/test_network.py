#!/usr/bin/env python3
"""The whole path out of a session: a real worker (curl, python3) in a real
session of a real nonod, through the daemon's proxy, to a local HTTPS
server with its own CA. The secret comes from the vault and is injected on
the wire for the rule's host only; the worker never holds it."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import nonotest
from nonotest import Daemon, RpcError
from sessions import PATH_ENV, exit_code, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "proxy"))
import test_proxy as upstream  # noqa: E402  (its TLS server and test CA)

CANARY = "CANARY-net-" + base64.b16encode(os.urandom(8)).decode()


class NetworkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="nono-net-")
        upstream.TMP = cls.certs
        upstream.make_certs(cls.certs)
        # A bare repository the upstream serves through git http-backend.
        src = os.path.join(cls.certs, "src")
        subprocess.run(["git", "init", "-q", src], check=True)
        with open(os.path.join(src, "README"), "w") as f:
            f.write("hello from the test repo\n")
        subprocess.run(["git", "-C", src, "add", "README"], check=True)
        subprocess.run(["git", "-C", src, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "-m", "init"], check=True)
        os.makedirs(os.path.join(cls.certs, "git"))
        subprocess.run(["git", "clone", "-q", "--bare", src, os.path.join(cls.certs, "git", "repo.git")],
                       check=True)
        cls.srv = upstream.TLSServer(cls.certs)
        port = cls.srv.server_address[1]
        import threading
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()
        cfg = (f"proxy_extra_ca = {cls.certs}/ca.pem\n"
               f"resolve_override = api.test:443=127.0.0.1:{port}\n"
               f"resolve_override = other.test:443=127.0.0.1:{port}\n")
        cls.d = Daemon(config=cfg)
        cls.ws = os.path.join(cls.d.dir, "ws")
        os.makedirs(cls.ws)
        c = cls.d.client()
        c.call("secret.set", {"name": "tok", "value": CANARY})
        c.close()
        cls.policy = {"version": 1, "filesystem": {"read": ["$WORKSPACE"], "write": ["$WORKSPACE"]},
                      "network": {"allow": ["api.test:443", "other.test:443"], "allow_private": True,
                                  "inject": [{"host": "api.test", "header": "Authorization",
                                              "value": "Bearer ${secret:tok}"}]}}

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.d.close()
        subprocess.run(["rm", "-rf", cls.certs])

    def setUp(self):
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()

    def received(self, since):
        with upstream.RECEIVED_LOCK:
            return list(upstream.RECEIVED[since:])

    def mark(self):
        with upstream.RECEIVED_LOCK:
            return len(upstream.RECEIVED)

    def test_curl_gets_the_secret_injected_for_its_host_only(self):
        m = self.mark()
        # other.test has no rule: a blind tunnel, where curl checks the upstream's
        # own certificate (from the test CA), not one made by nonod.
        subprocess.run(["cp", f"{self.certs}/ca.pem", f"{self.ws}/upstream-ca.pem"], check=True)
        final, out, err = run(self.c, ["sh", "-c", "curl -sS -o /dev/null https://api.test/one && "
                                       "curl -sS -o /dev/null --cacert upstream-ca.pem https://other.test/two"],
                              self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        self.assertEqual(final["network"], "strict" if os.geteuid() == 0 else final["network"])
        got = {path: dict(h) for host, path, h, _ in self.received(m)}
        self.assertEqual(got["/one"].get("Authorization"), f"Bearer {CANARY}")
        self.assertNotIn("Authorization", got["/two"])
        self.assertNotIn(CANARY.encode(), out + err)

    def test_python_urllib_through_the_proxy(self):
        m = self.mark()
        code = "import urllib.request; print(urllib.request.urlopen('https://api.test/py').status)"
        final, out, err = run(self.c, ["python3", "-c", code], self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        self.assertEqual(out.strip(), b"200")
        self.assertEqual(dict(self.received(m)[0][2]).get("Authorization"), f"Bearer {CANARY}")

    def test_git_clone_through_the_proxy(self):
        m = self.mark()
        final, out, err = run(self.c, ["git", "clone", "-q", "https://api.test/git/repo.git", "clone"],
                              self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        with open(os.path.join(self.ws, "clone", "README")) as f:
            self.assertEqual(f.read(), "hello from the test repo\n")
        got = self.received(m)
        self.assertTrue(got)
        for _host, _path, hdrs, _ in got:
            self.assertEqual(dict(hdrs).get("Authorization"), f"Bearer {CANARY}")
        subprocess.run(["rm", "-rf", os.path.join(self.ws, "clone")])

    def test_node_https_through_the_proxy(self):
        if not os.path.exists("/usr/bin/node"):
            self.skipTest("node is not installed at /usr/bin/node")
        # Node 20 ignores HTTPS_PROXY: like a proxy agent, CONNECT by hand with
        # what nonod put in the environment (the token, the CA bundle).
        script = r"""
const http = require('http'), tls = require('tls'), https = require('https'), fs = require('fs');
const u = new URL(process.env.HTTPS_PROXY);
const req = http.request({host: u.hostname, port: u.port, method: 'CONNECT', path: 'api.test:443',
  headers: {'Proxy-Authorization': 'Basic ' + Buffer.from(decodeURIComponent(u.username) + ':' +
  decodeURIComponent(u.password)).toString('base64')}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(1); }
  const r = https.request({host: 'api.test', port: 443, path: '/node',
    createConnection: () => tls.connect({socket, servername: 'api.test',
      ca: fs.readFileSync(process.env.SSL_CERT_FILE)})}, (resp) => {
    resp.resume(); resp.on('end', () => { console.log(resp.statusCode); process.exit(0); });
  });
  r.on('error', e => { console.error(e.message); process.exit(1); });
  r.end();
});
req.on('error', e => { console.error(e.message); process.exit(1); });
req.end();
"""
        m = self.mark()
        final, out, err = run(self.c, ["/usr/bin/node", "-e", script], self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        self.assertEqual(out.strip(), b"200")
        got = [h for _host, path, h, _ in self.received(m) if path == "/node"]
        self.assertEqual(dict(got[0]).get("Authorization"), f"Bearer {CANARY}")

    def npm_undici(self):
        """undici from the npm registry in a fixture dir the sandbox may read, or skip."""
        npm = shutil.which("npm")
        if npm is None or not os.path.exists("/usr/bin/node"):
            self.skipTest("node/npm are not installed")
        d = tempfile.mkdtemp(prefix="nono-undici-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        try:
            # undici 6 supports Node 20 (7+ needs newer Node); no install scripts run
            r = subprocess.run([npm, "install", "--prefix", d, "--no-audit", "--no-fund",
                                "--ignore-scripts", "--no-package-lock", "undici@6"],
                               capture_output=True, timeout=300,
                               env=dict(os.environ, npm_config_cache=os.path.join(d, ".npm"),
                                        npm_config_update_notifier="false"))
        except subprocess.TimeoutExpired:
            self.skipTest("npm install undici timed out (registry unreachable?)")
        mod = os.path.join(d, "node_modules", "undici")
        if r.returncode != 0 or not os.path.isdir(mod):
            self.skipTest("cannot npm install undici (registry unreachable?): " +
                          r.stderr.decode(errors="replace")[-300:])
        subprocess.run(["chmod", "-R", "a+rX", d], check=True)
        return mod

    def test_node_fetch_through_the_proxy(self):
        # Node 20's fetch ignores HTTPS_PROXY; what its users do is install
        # undici's EnvHttpProxyAgent as the global dispatcher, which reads the
        # proxy URL (with the session token) nonod put in the environment and
        # trusts NODE_EXTRA_CA_CERTS. The built-in fetch then goes through it.
        mod = self.npm_undici()
        subprocess.run(["cp", f"{self.certs}/ca.pem", f"{self.ws}/upstream-ca.pem"], check=True)
        script = r"""
const fs = require('fs');
const { EnvHttpProxyAgent, setGlobalDispatcher } = require(process.argv[1]);
setGlobalDispatcher(new EnvHttpProxyAgent());
(async () => {
  const a = await fetch('https://api.test/fetch-one', {method: 'POST', body: 'x'.repeat(1000),
    headers: {Authorization: 'Bearer sandbox-guess'}});
  const body = await a.text();
  // other.test has no rule: a blind tunnel, so its own CA must be trusted here
  const other = new EnvHttpProxyAgent({requestTls: {ca: fs.readFileSync('upstream-ca.pem')}});
  const b = await fetch('https://other.test/fetch-two', {dispatcher: other});
  await b.text();
  console.log(a.status, b.status, body.length);
})().catch(e => { console.error(String(e && (e.cause || e))); process.exit(1); });
"""
        policy = json.loads(json.dumps(self.policy))
        policy["filesystem"]["read"].append(os.path.dirname(os.path.dirname(mod)))
        m = self.mark()
        final, out, err = run(self.c, ["/usr/bin/node", "-e", script, mod], self.ws, policy=policy)
        self.assertEqual(exit_code(final), 0, err)
        self.assertTrue(out.startswith(b"200 200 "), out + err)
        got = {path: dict(h) for _host, path, h, _ in self.received(m)}
        # injected for the rule's host, replacing what the sandbox sent
        self.assertEqual(got["/fetch-one"].get("Authorization"), f"Bearer {CANARY}")
        self.assertNotIn("sandbox-guess", repr(got["/fetch-one"]))
        self.assertNotIn("authorization", repr(got["/fetch-two"]).lower())
        self.assertNotIn(CANARY.encode(), out + err)
        recs = self.c.call("audit.list", {"session": final["id"]})["records"]
        self.assertTrue(any(r["path"] == "/fetch-one" and r["secret"] == "tok" for r in recs), recs)

    def test_the_secret_is_nowhere_in_the_sandbox(self):
        probe = ("env; cat /proc/self/environ | tr '\\0' '\\n'; "
                 "grep -r . $TMPDIR 2>/dev/null | head -c 2000000; ls -la $TMPDIR")
        final, out, err = run(self.c, ["sh", "-c", probe], self.ws, policy=self.policy)
        blob = out + err
        for form in (CANARY.encode(), base64.b64encode(CANARY.encode()), CANARY.encode().hex().encode()):
            self.assertNotIn(form, blob)
        self.assertIn(b"HTTPS_PROXY=http://nono:", blob)  # it is wired, though
        self.assertIn(b"SSL_CERT_FILE=", blob)

    def test_secret_changed_while_requests_run(self):
        # The proxy renders on its loop threads while secret.set runs on the
        # daemon's: every request carries one whole value, never a torn or
        # stale-after-commit one, and the next request after a set has it.
        import threading
        values = [f"ROT-{i}-" + base64.b16encode(os.urandom(6)).decode() for i in range(30)]
        setter = self.d.client()
        setter.call("secret.set", {"name": "rot", "value": values[0]})
        policy = json.loads(json.dumps(self.policy))
        policy["network"]["inject"].append({"host": "api.test", "header": "X-Rot",
                                            "value": "v=${secret:rot}"})
        code = ("import threading, urllib.request\n"
                "def go(t):\n"
                "    for i in range(15):\n"
                "        urllib.request.urlopen(f'https://api.test/rot-{t}-{i}').read()\n"
                "ts = [threading.Thread(target=go, args=(t,)) for t in range(3)]\n"
                "[t.start() for t in ts]; [t.join() for t in ts]\n")
        stop = threading.Event()

        def rotate():
            i = 0
            while not stop.wait(0.005):
                i = i % (len(values) - 1) + 1
                setter.call("secret.set", {"name": "rot", "value": values[i]})
        m = self.mark()
        th = threading.Thread(target=rotate)
        th.start()
        waiter = self.d.client(timeout=120)
        try:
            final, out, err = run(waiter, ["python3", "-c", code], self.ws, policy=policy,
                                  wait_ms=110000)
        finally:
            stop.set()
            th.join()
            waiter.close()
        self.assertEqual(exit_code(final), 0, err)
        got = [dict(h) for _host, path, h, _ in self.received(m) if path.startswith("/rot-")]
        self.assertEqual(len(got), 45)
        for h in got:
            self.assertIn(h.get("X-Rot"), [f"v={v}" for v in values])
            self.assertEqual(h.get("Authorization"), f"Bearer {CANARY}")
        self.assertGreater(len({h["X-Rot"] for h in got}), 1)  # it did change under them
        last = "ROT-last-" + base64.b16encode(os.urandom(6)).decode()
        setter.call("secret.set", {"name": "rot", "value": last})
        setter.close()
        m = self.mark()
        final, out, err = run(self.c, ["curl", "-sS", "-o", "/dev/null", "https://api.test/rot-after"],
                              self.ws, policy=policy)
        self.assertEqual(exit_code(final), 0, err)
        self.assertEqual(dict(self.received(m)[0][2]).get("X-Rot"), f"v={last}")

    def test_denied_host_gets_403_and_an_audit_record(self):
        final, out, err = run(self.c, ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                       "https://denied.test/"], self.ws, policy=self.policy)
        self.assertNotEqual(exit_code(final), 0)
        recs = self.c.call("audit.list", {"session": final["id"]})["records"]
        self.assertTrue(any(r["host"] == "denied.test" and r["status"] == 403 for r in recs), recs)

    def test_no_other_way_out(self):
        # Bypassing the proxy must fail: the session's namespace has only loopback.
        final, out, err = run(self.c, ["curl", "-sS", "--noproxy", "*", "--max-time", "5",
                                       "https://api.test/direct"], self.ws, policy=self.policy)
        self.assertNotEqual(exit_code(final), 0)

    def test_audit_names_the_secret_never_its_value(self):
        final, _, err = run(self.c, ["curl", "-sS", "https://api.test/audited"], self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        recs = self.c.call("audit.list", {"session": final["id"]})["records"]
        hit = [r for r in recs if r["path"] == "/audited"]
        self.assertEqual(hit[0]["secret"], "tok")
        self.assertNotIn(CANARY, repr(recs))
        self.assertNotIn(CANARY, self.d.logtext())
        if nonotest.NONOCTL:
            out = subprocess.run([nonotest.NONOCTL, "--socket", self.d.socket, "audit", "--session",
                                  final["id"]], capture_output=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(b"api.test:443 /audited 200", out.stdout)
            self.assertIn(b"secret=tok", out.stdout)
            self.assertNotIn(CANARY.encode(), out.stdout + out.stderr)

    def test_zz_canary_nowhere_after_a_full_lifecycle(self):
        # Run last: after sessions, injections, audits and listings, the canary
        # is in no response, no log line, and no file of the state directory
        # (the database and its WAL hold only sealed rows), in any encoding.
        final, _, err = run(self.c, ["curl", "-sS", "-o", "/dev/null", "https://api.test/last"],
                            self.ws, policy=self.policy)
        self.assertEqual(exit_code(final), 0, err)
        responses = [self.c.call("secret.list"), self.c.call("secret.info", {"name": "tok"}),
                     self.c.call("session.list", {"history": True}), self.c.call("audit.list"),
                     self.c.call("daemon.status"), final]
        forms = [CANARY.encode(), base64.b64encode(CANARY.encode()), CANARY.encode().hex().encode()]
        blobs = {"responses": repr(responses).encode(), "log": self.d.logtext().encode()}
        for root, _, files in os.walk(self.d.state):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    blobs[os.path.join(root, f)] = fh.read()
        self.assertGreater(len(blobs), 3)
        for where, blob in blobs.items():
            for form in forms:
                self.assertNotIn(form, blob, f"the canary ({form[:12]!r}...) leaked into {where}")

    def test_without_network_rules_there_is_no_network(self):
        final, out, err = run(self.c, ["curl", "-sS", "--max-time", "5", "https://api.test/"], self.ws)
        self.assertNotEqual(exit_code(final), 0)
        self.assertEqual(final["network"], "none")


if __name__ == "__main__":
    nonotest.main()
