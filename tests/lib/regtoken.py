#!/usr/bin/env python3
"""A small registry token service (distribution token auth, formats.md 6.1)
for tests: GET /token?service=S&scope=repository:NAME:pull,push with Basic
credentials answers {"token": JWT, "access_token": JWT, "expires_in": 300}.
JWTs are RS256, signed with `openssl dgst` (no third-party Python modules),
with the certificate in the x5c header so docker-registry's rootcertbundle
verifies them.  Anonymous requests are refused with 401.

POST /token307 redirects (307) to /token on another origin.
POST /token with an application/x-www-form-urlencoded body is the OAuth2
form (distribution's "oauth" token spec): grant_type=refresh_token with
refresh_token, client_id and service answers {"access_token": JWT, ...};
anything else is refused with 400 {"error": "invalid_grant"}.

usage: regtoken.py PORTFILE KEY.pem CERT.pem ISSUER SERVICE USERS_FILE LOG
USERS_FILE holds user:password lines and "@refresh TOKEN USER" lines.
"""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse

portfile, keyf, certf, issuer, service, usersf, logf = sys.argv[1:8]
users = {}
refresh = {}
for line in open(usersf):
    line = line.rstrip("\n")
    if line.startswith("@refresh "):
        _, tok, who = line.split(" ", 2)
        refresh[tok] = who
    elif ":" in line:
        u, p = line.split(":", 1)
        users[u] = p

der = subprocess.run(["openssl", "x509", "-in", certf, "-outform", "DER"],
                     check=True, capture_output=True).stdout


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(sub, access):
    now = int(time.time())
    hdr = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    claims = {"iss": issuer, "sub": sub, "aud": service, "exp": now + 300,
              "nbf": now - 10, "iat": now, "jti": str(time.time_ns()),
              "access": access}
    si = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyf],
                         input=si.encode(), check=True, capture_output=True).stdout
    return si + "." + b64url(sig)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def grant(self, user, scopes):
        access = []
        for s in scopes:
            for one in s.split(" "):
                typ, rest = one.split(":", 1)
                name, actions = rest.rsplit(":", 1)
                access.append({"type": typ, "name": name, "actions": actions.split(",")})
        return jwt(user, access)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        f = urllib.parse.parse_qs(body)
        one = lambda k: f.get(k, [""])[0]
        with open(logf, "a") as lf:
            lf.write("POST %s ctype=%s grant=%s client_id=%s\n" % (
                self.path, self.headers.get("Content-Type", ""),
                one("grant_type"), one("client_id")))
        path = urllib.parse.urlparse(self.path).path
        if path == "/token307":
            # to another origin (same server, other host name): a client
            # must not follow with the refresh token in the body
            return self.reply(307, {}, {"Location": "http://localhost:%d/token"
                                        % self.server.server_address[1]})
        if path != "/token":
            return self.reply(404, {"error": "not found"})
        if (self.headers.get("Content-Type", "") != "application/x-www-form-urlencoded"
                or one("grant_type") != "refresh_token" or not one("client_id")
                or one("service") != service
                or one("refresh_token") not in refresh):
            return self.reply(400, {"error": "invalid_grant"})
        tok = self.grant(refresh[one("refresh_token")], f.get("scope", []))
        self.reply(200, {"access_token": tok, "expires_in": 300,
                         "scope": one("scope")})

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        with open(logf, "a") as f:
            f.write("GET %s auth=%s\n" % (u.path, auth.split(" ")[0] if auth else "none"))
        if u.path not in ("/token", "/token307"):  # GET is not redirected
            return self.reply(404, {"error": "not found"})
        if q.get("service", [""])[0] != service:
            return self.reply(400, {"error": "bad service"})
        user = None
        if auth.startswith("Basic "):
            try:
                up = base64.b64decode(auth[6:]).decode()
                u_, p_ = up.split(":", 1)
                if users.get(u_) == p_:
                    user = u_
            except Exception:
                pass
        if user is None:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "token service: bad or missing credentials"}]},
                              {"WWW-Authenticate": 'Basic realm="token"'})
        tok = self.grant(user, q.get("scope", []))
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
