#!/usr/bin/env python3
"""faultproxy.py --upstream HOST:PORT [--faults SPEC]: an HTTP/1.1 proxy on 127.0.0.1 that injects faults.

Between coldarchive and an S3 store (SeaweedFS in the tests), it forwards each request to the upstream
(one upstream connection per request) and answers it, except for the requests the SPEC names, which get a
fault instead. SPEC is a comma-separated list of RULE=N, N the number of matching requests to hit (in
order of arrival), RULE one of:
  reset-part      an UploadPart (PUT with partNumber): the connection is closed after half of its body
  500-part        an UploadPart answered 500 InternalError (not forwarded)
  503             any request answered 503 SlowDown (not forwarded)
  stall-get       a ranged GetObject: no answer for --stall seconds, then the connection is closed
  reset-get       a ranged GetObject: the upstream answer cut in the middle of its body, connection closed
  archived-get    a ranged GetObject answered 403 InvalidObjectState (an object in an archive tier)
  always-503-part every UploadPart answered 503 SlowDown (N is ignored)
  flip-get        a ranged GetObject forwarded, one byte of its body changed (a store returning bad bytes)
  no-retention    a GetObjectRetention answered 404 NoSuchObjectLockConfiguration (a store that drops locks)
  accept-delete   a DELETE of a version answered 204 without forwarding (a store that ignores locks)
It prints its port on the first line of stdout, and on SIGTERM (or stdin closing) writes how many faults
of each rule it injected, as JSON, to --stats.
"""
import argparse, json, os, signal, socket, sys, threading, time

lock = threading.Lock()
remaining, injected = {}, {}


def take(rule):
    with lock:
        if rule == "always-503-part" and rule in remaining:
            injected[rule] = injected.get(rule, 0) + 1
            return True
        if remaining.get(rule, 0) > 0:
            remaining[rule] -= 1
            injected[rule] = injected.get(rule, 0) + 1
            return True
    return False


def read_head(conn, buffered):
    while b"\r\n\r\n" not in buffered:
        data = conn.recv(65536)
        if not data:
            return None, buffered
        buffered += data
    head, rest = buffered.split(b"\r\n\r\n", 1)
    return head, rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def answer(conn, status, code, message):
    body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


def serve(conn, upstream, stall):
    buffered = b""
    try:
        while True:
            head, buffered = read_head(conn, buffered)
            if head is None:
                return
            length = content_length(head)
            request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            method, target = request_line.split(" ")[:2]
            is_part = method == "PUT" and "partNumber=" in target
            if os.environ.get("FAULTPROXY_DEBUG"):
                sys.stderr.write(f"faultproxy: {head!r}\n")
            is_get = method == "GET" and any(l.lower().startswith(b"range:") for l in head.split(b"\r\n")[1:])   # a ranged GetObject
            if is_part and take("reset-part"):
                got = buffered
                while len(got) < length // 2:
                    data = conn.recv(65536)
                    if not data:
                        break
                    got += data
                conn.close()
                return
            while len(buffered) < length:
                data = conn.recv(65536)
                if not data:
                    return
                buffered += data
            body, buffered = buffered[:length], buffered[length:]
            if is_part and (take("always-503-part") or take("500-part")):
                if "always-503-part" in remaining:
                    answer(conn, "503 Slow Down", "SlowDown", "Please reduce your request rate.")
                else:
                    answer(conn, "500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again.")
                continue
            if method == "GET" and "retention" in target and take("no-retention"):
                answer(conn, "404 Not Found", "NoSuchObjectLockConfiguration", "The specified object does not have a ObjectLock configuration")
                continue
            if method == "DELETE" and "versionId=" in target and take("accept-delete"):
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                continue
            if take("503"):
                answer(conn, "503 Slow Down", "SlowDown", "Please reduce your request rate.")
                continue
            if is_get and take("archived-get"):
                answer(conn, "403 Forbidden", "InvalidObjectState", "The operation is not valid for the object's storage class")
                continue
            if is_get and take("stall-get"):
                time.sleep(stall)
                conn.close()
                return
            up = socket.create_connection(upstream)
            lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
            up.sendall(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body)
            response = b""
            while True:
                data = up.recv(65536)
                if not data:
                    break
                response += data
            up.close()
            if is_get and take("reset-get"):
                conn.sendall(response[:len(response) // 2])
                conn.close()
                return
            rhead, _, rbody = response.partition(b"\r\n\r\n")
            if is_get and rbody and take("flip-get"):
                rbody = bytes([rbody[0] ^ 0x01]) + rbody[1:]
            rlines = [l for l in rhead.split(b"\r\n") if not l.lower().startswith(b"connection:")]
            conn.sendall(b"\r\n".join(rlines) + b"\r\n\r\n" + rbody)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--faults", default="")
    ap.add_argument("--stall", type=float, default=5.0)
    ap.add_argument("--stats")
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    upstream = (host, int(port))
    for rule in filter(None, args.faults.split(",")):
        name, _, n = rule.partition("=")
        remaining[name] = int(n or 1)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)

    def finish(*_):
        if args.stats:
            with open(args.stats, "w") as f:
                json.dump(injected, f)
        os._exit(0)
    signal.signal(signal.SIGTERM, finish)
    threading.Thread(target=lambda: (sys.stdin.read(), finish()), daemon=True).start()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, upstream, args.stall), daemon=True).start()


if __name__ == "__main__":
    main()
