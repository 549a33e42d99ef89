#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a real docker-registry, for the
failures a healthy registry never produces on demand (500s, 429, garbage,
oversized manifests).  Every request is logged to LOG ("METHOD PATH").

usage: regfault.py PORTFILE UPSTREAM_HOSTPORT RULES.json LOG
RULES is a JSON list, re-read on every request, of
  {"method": "GET", "path": "regex", "times": N,
   "status": 500, "headers": {...}, "body": "text", "body_repeat": N,
   "content_type": "..."}
The first N requests matching method+path get the canned answer; later
ones go to the registry unchanged.
"""
import http.client
import http.server
import json
import os
import re
import sys
import threading

portfile, upstream, rulesf, logf = sys.argv[1:5]
lock = threading.Lock()
hits = {}

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection",
       "te", "trailer", "upgrade"}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def rule(self):
        try:
            rules = json.load(open(rulesf))
        except Exception:
            rules = []
        with lock:
            for i, r in enumerate(rules):
                if r.get("method", self.command) != self.command:
                    continue
                if not re.search(r["path"], self.path):
                    continue
                key = json.dumps(r, sort_keys=True)
                n = hits.get(key, 0)
                if n >= r.get("times", 1):
                    continue
                hits[key] = n + 1
                return r
        return None

    def handle_any(self):
        with open(logf, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        r = self.rule()
        if r is not None:
            out = (r.get("body", "") * r.get("body_repeat", 1)).encode()
            self.send_response(r["status"])
            for k, v in r.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", r.get("content_type", "application/json"))
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)
            return
        c = http.client.HTTPConnection(upstream, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        c.request(self.command, self.path, body=body if n else None, headers=hdrs)
        resp = c.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
