"""A small HTTP client for tests of the bundled server: one request per
fresh connection, JSON helpers, logins that remember their tokens, raw
bytes for malformed requests, and JWTs signed here."""
import base64
import hashlib
import hmac
import http.client
import json
import socket


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_token(claims, secret, alg="HS256"):
    """A JWT signed here, to test what the server accepts and refuses."""
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig) if alg == 'HS256' else ''}"


def token_username(token):
    """The username claim of a JWT (unverified), or None."""
    try:
        body = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("username")
    except (IndexError, ValueError):
        return None


class Response:
    def __init__(self, status, headers, body, header_list=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.header_list = header_list or list(headers.items())

    def header(self, name):
        return self.headers.get(name.lower())

    def headers_all(self, name):
        """Every value of a header that may repeat (Set-Cookie)."""
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Http:
    """A minimal client: every call is one request on a fresh connection."""

    def __init__(self, port, passwords=None):
        self.port = port
        self.passwords = dict(passwords or {})
        self.tokens = {}

    def request(self, method, path, body=None, headers=None, token=None, user=None):
        headers = dict(headers or {})
        if user:
            token = self.token(user)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if token and path.split("?")[0] == "/api/rpc/logout" and r.status == 204:
                # logging out revokes every token of the user: forget ours
                gone = token_username(token)
                self.tokens = {u: t for u, t in self.tokens.items() if u != gone}
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.getheaders())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body if body is not None else {}, **kw)

    def login(self, user):
        r = self.post("/api/rpc/login", {"username": user, "password": self.passwords[user]})
        assert r.status == 200, r
        return r

    def token(self, user):
        if user not in self.tokens:
            self.tokens[user] = self.login(user).json()["token"]
        return self.tokens[user]

    def raw(self, data, timeout=10):
        """Send raw bytes; return everything the server answers before closing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except socket.timeout:
                pass
            return b"".join(chunks)
