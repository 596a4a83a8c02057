#!/usr/bin/env python3
"""A local RFC 3161 time-stamping authority for the tests: `openssl ts -reply` behind HTTP on 127.0.0.1.

    tsa.py DIRECTORY [READY_FILE]

Makes, in DIRECTORY, a root CA (ca.pem) and a TSA certificate it issues (extendedKeyUsage critical
timeStamping, as RFC 3161 §2.3 requires), then serves POST requests of `application/timestamp-query`
(RFC 3161 §3.4) on a free loopback port, answering each with `openssl ts -reply`. Once it is listening
it prints `http://127.0.0.1:PORT/` and, with READY_FILE, writes that URL and its pid to it (two lines,
atomically: a caller that started it in the background waits for the file). Runs until killed.
"""
import http.server
import os
import signal
import subprocess
import sys
import tempfile

CONFIG = """
[tsa]
default_tsa = tsa_config1
[tsa_config1]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
"""


def setup(directory):
    if os.path.exists(os.path.join(directory, "tsa.pem")):
        return
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "openssl.cnf"), "w") as f:
        f.write(CONFIG.format(dir=directory))
    with open(os.path.join(directory, "serial"), "w") as f:
        f.write("01\n")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=directory, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "3650", "-subj", "/CN=coldarchive test root CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key",
        "-out", "tsa.csr", "-subj", "/CN=coldarchive test TSA")
    run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.pem",
        "-days", "3650", "-extfile", "openssl.cnf", "-extensions", "ext")


def main():
    # Descriptors inherited from whoever started us (a test runner starting other processes at the same
    # moment) would keep their pipes open, and their readers waiting, for as long as we run.
    os.closerange(3, 65536)
    # Nor a blocked signal mask (a dispatch thread's): SIGTERM must stop us.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    directory = os.path.abspath(sys.argv[1])
    setup(directory)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            query = self.rfile.read(length)
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415, "expected application/timestamp-query")
                return
            with tempfile.TemporaryDirectory() as scratch:
                path = os.path.join(scratch, "q.tsq")
                with open(path, "wb") as f:
                    f.write(query)
                reply = subprocess.run(["openssl", "ts", "-reply", "-config", os.path.join(directory, "openssl.cnf"),
                                        "-queryfile", path], capture_output=True)
            if reply.returncode != 0:
                self.send_error(400, reply.stderr.decode(errors="replace")[:200])
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply.stdout)))
            self.end_headers()
            self.wfile.write(reply.stdout)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(url, flush=True)
    if len(sys.argv) > 2:
        with open(sys.argv[2] + ".tmp", "w") as f:
            f.write(f"{url}\n{os.getpid()}\n")
        os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    server.serve_forever()


if __name__ == "__main__":
    main()
